"""Authlib (1.6+) on oauth2-store's stores: the one seam between the two libraries.

What an Authlib authorization server and resource server need from storage, for any framework
Authlib integrates with (Flask's ``AuthorizationServer`` and ``ResourceProtector`` from
``authlib.integrations.flask_oauth2`` shown; nothing here imports a framework)::

    storage = AuthlibStorage(open_store("memcache://127.0.0.1:11211"), clients)
    server = AuthorizationServer(app, query_client=storage.query_client, save_token=storage.save_token)
    storage.register(server)  # code grant + PKCE, rotating refresh, client credentials, RFC 7009, RFC 7662
    require_oauth = ResourceProtector()
    require_oauth.register_token_validator(storage.bearer_token_validator())

``clients`` is any client store (:class:`~oauth2_store.store.LocalClientStore`, ...) and the token
store any :class:`~oauth2_store.protocols.TokenStoreProtocol`; a
:class:`~oauth2_store.protocols.LifecycleTokenStoreProtocol` one (what :func:`~oauth2_store.open_store`
opens) adds the token lifecycle below. :meth:`AuthlibStorage.register` is
these five lines, to pick from or to change::

    server.register_grant(storage.authorization_code_grant, [S256CodeChallenge(required=True)])
    server.register_grant(storage.refresh_token_grant)
    server.register_grant(ClientCredentialsGrant)
    server.register_endpoint(storage.revocation_endpoint())
    server.register_endpoint(storage.introspection_endpoint())

and two client authentication methods, ``client_secret_basic`` and ``client_secret_post``, that
refuse a request sending its secret both ways (:func:`one_secret_method`).

Our records reach Authlib wrapped in its mixins (:class:`AuthlibClient`,
:class:`AuthlibAuthorizationCode`, :class:`AuthlibToken`), and our errors become its errors
here, and only here:

- a miss (:class:`~oauth2_store.error.NotFoundError`) is Authlib's "not found": None, which it
  answers ``invalid_client``, ``invalid_grant``, ``invalid_token`` (401) or ``active: false``; a
  replayed code (:class:`~oauth2_store.error.CodeReplayError`) and a reused refresh token
  (:class:`~oauth2_store.error.RefreshTokenReuseError`) are misses too, so ``invalid_grant``;
- :class:`~oauth2_store.error.GrantRevokedError` (a token saved into a revoked grant) is
  Authlib's ``InvalidGrantError`` (``invalid_grant``): the token is not issued;
- :class:`~oauth2_store.error.StoreUnavailableError` is :class:`TemporarilyUnavailableError`
  (``temporarily_unavailable``, HTTP 503), and every other store error (a corrupt record, a record
  too large) is :class:`ServerError` (``server_error``, HTTP 500): Authlib answers both with their
  JSON body at every endpoint, the resource server's included. A failing store is never "not
  found", never "invalid token" and never "allowed".

What this adds to writing the models by hand:

- **A code is redeemed once**, even across processes sharing memcached: the grant *consumes* it
  (:meth:`~oauth2_store.protocols.ExtendedAuthCodeStoreProtocol.consume_code`) when Authlib looks
  it up, so of concurrent token requests with one code exactly one gets it, and
  ``delete_authorization_code`` has nothing left to do. A code looked up once is gone even if the
  request then fails (another client, another redirect URI, a wrong PKCE verifier).
- **Refresh tokens rotate**: each refresh issues a new refresh token and revokes the old one
  with its access token, before the new token is issued: of concurrent refreshes with one
  refresh token, in any number of processes sharing the store, exactly one wins.
- **Grants are families** (RFC 6749 §4.1.2, RFC 9700 §4.14.2): the token issued from a code is
  saved with the code's ``grant_id`` (``request.authorization_code``), and a token issued by a
  refresh with the old token's (``request.refresh_token``), so that on a lifecycle store a code
  presented again, or a rotated refresh token presented again, revokes the whole grant: the token
  first issued from the code and the newest one refreshed from it stop working. Of concurrent
  requests with one code or one refresh token, the losers count as such a replay, so the winner's
  tokens end too. Revoking a refresh token (RFC 7009) revokes its grant.
- **Expiry is the store's**: a token or code past its time is never found, so Authlib never sees
  one (Authlib #318: a bearer validator that forgot expiry).
- Client secrets are compared in constant time, and a public client (empty secret) authenticates
  only with ``token_endpoint_auth_method`` ``"none"``, never with a secret. A request sending a
  secret both in the ``Authorization`` header and in the body is refused (RFC 6749 §2.3).
- PKCE is ``S256`` only (RFC 9700 §2.1.1): ``plain``, or a challenge without a method (which
  RFC 7636 reads as ``plain``), is ``invalid_request``.
- A code issued without a redirect URI (the client has one) is redeemed only by a token
  request naming that URI or none; Authlib alone would accept any.
- Where Authlib departs from the RFCs, this seam follows them: an unknown client at the
  authorization endpoint is ``invalid_request`` (RFC 6749 §4.1.2.1 has no ``invalid_client``
  there), and an unknown ``token_type_hint`` is ignored at revocation and introspection
  (RFC 7009 §2.1), not ``unsupported_token_type``.
- At the authorization endpoint, once the client and redirect URI are validated, every error is
  redirected to the client (RFC 6749 §4.1.2.1), a store failure included.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import ClassVar, Protocol, TypeVar, runtime_checkable

from oauth2_store import _fields
from oauth2_store.clock import Clock, system_clock
from oauth2_store.error import (
    AccessTokenNotFound,
    GrantRevokedError,
    NotFoundError,
    RecordError,
    RecordTypeError,
    StoreError,
    StoreUnavailableError,
)
from oauth2_store.models import AccessToken, AuthorizationCode, Client
from oauth2_store.protocols import ClientStoreProtocol, TokenStoreProtocol, TokenTypeHint

try:
    from authlib.oauth2.rfc6749 import (
        AuthorizationCodeMixin,
        AuthorizationServer,
        ClientMixin,
        InvalidClientError,
        InvalidGrantError,
        InvalidRequestError,
        OAuth2Error,
        OAuth2Request,
        TokenEndpoint,
        TokenMixin,
        grants,
    )
    from authlib.oauth2.rfc6749.authenticate_client import authenticate_client_secret_basic, authenticate_client_secret_post
    from authlib.oauth2.rfc6750 import BearerTokenValidator as _BearerTokenValidator
    from authlib.oauth2.rfc7009 import RevocationEndpoint as _RevocationEndpoint
    from authlib.oauth2.rfc7636 import CodeChallenge
    from authlib.oauth2.rfc7662 import IntrospectionEndpoint as _IntrospectionEndpoint
except ImportError as missing:  # pragma: no cover - depends on the environment
    raise ImportError("Authlib is not installed: pip install 'oauth2-store[authlib]'") from missing

__all__ = [
    "AUTHORIZATION_CODE_SECONDS",
    "REFRESH_TOKEN_SECONDS",
    "AuthlibAuthorizationCode",
    "AuthlibClient",
    "AuthlibStorage",
    "AuthlibToken",
    "AuthlibUser",
    "AuthorizationCodeGrant",
    "BearerTokenValidator",
    "ClientCredentialsGrant",
    "IntrospectionEndpoint",
    "RefreshTokenGrant",
    "RevocationEndpoint",
    "S256CodeChallenge",
    "ServerError",
    "TemporarilyUnavailableError",
    "one_secret_method",
]

log = logging.getLogger(__name__)

_R = TypeVar("_R")
_ClientAuthentication = Callable[[Callable[[str], ClientMixin | None], OAuth2Request], ClientMixin | None]
"""An Authlib client authentication method: (query_client, request) -> the client, or None."""
_T = TypeVar("_T")

AUTHORIZATION_CODE_SECONDS = 600
"""How long a code lives by default: the 10 minutes RFC 6749 §4.1.2 recommends at most."""

REFRESH_TOKEN_SECONDS = 30 * 24 * 3600
"""How long a refresh token lives by default: 30 days."""


class ServerError(OAuth2Error):
    """The token store failed (a corrupt record, a record too large): ``server_error``, HTTP 500.

    An Authlib ``OAuth2Error``, so every Authlib endpoint answers it with its JSON body (and the
    authorization endpoint by redirecting to the client, RFC 6749 §4.1.2.1). The description is
    fixed: it never holds what the store said.
    """

    error = "server_error"
    description = "the server failed; try again later"
    status_code = 500


class TemporarilyUnavailableError(ServerError):
    """The token store could not be reached or timed out: ``temporarily_unavailable``, HTTP 503.

    A :class:`ServerError`, so one ``except ServerError`` catches every store failure.
    """

    error = "temporarily_unavailable"
    description = "the token store is unavailable; try again later"
    status_code = 503


@runtime_checkable
class AuthlibUser(Protocol):
    """A user object as Authlib's own models have them: its ``get_user_id()`` is stored as a str.

    Wherever Authlib hands over a user (``grant_user`` at the authorization endpoint, what
    ``authenticate_user`` returns), the seam takes either such an object or the user id itself,
    a non-empty str.
    """

    def get_user_id(self) -> object:
        """The user's identifier (a str, or an int stored as its decimal string)."""
        ...


class AuthlibClient(ClientMixin):
    """Authlib's ``ClientMixin`` over an oauth2-store :class:`~oauth2_store.Client`.

    Args:
        client: The client record.
        any_secret_method: Let a confidential client authenticate with either
            ``client_secret_basic`` or ``client_secret_post`` (both send the same secret), not only
            with its record's ``token_endpoint_auth_method``.

    A public client (empty secret) authenticates with ``"none"`` only and may not use
    ``client_credentials``; a confidential client never with ``"none"``.
    """

    def __init__(self, client: Client, *, any_secret_method: bool = False) -> None:
        self.client = client
        self.any_secret_method = any_secret_method

    @property
    def client_id(self) -> str:
        """The client identifier (Authlib's examples read ``client.client_id``)."""
        return self.client.identifier

    def get_client_id(self) -> str:
        """The client identifier."""
        return self.client.identifier

    def get_default_redirect_uri(self) -> str | None:
        """The only registered redirect URI, or None when there are several (the request must name one)."""
        return self.client.default_redirect_uri

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """The scope to grant for a requested ``scope``: all of it, or None (``invalid_scope``).

        No scope requested grants none (``""``). None when a requested scope is not an RFC 6749
        §3.3 scope token or not among the client's ``scopes``; repeated scopes are granted once.
        """
        if not scope:
            return ""
        requested = list(dict.fromkeys(scope.split()))
        try:
            _fields.scopes(requested)
        except RecordError:
            return None
        return " ".join(requested) if self.client.allows_scopes(requested) else None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        """Whether ``redirect_uri`` is registered, compared as exact strings (RFC 6749 §3.1.2.3)."""
        return self.client.has_redirect_uri(redirect_uri)

    def check_client_secret(self, client_secret: str) -> bool:
        """Whether ``client_secret`` is the client's, in constant time; always False for a public client."""
        return self.client.check_secret(client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        """Whether the client may authenticate with ``method`` at ``endpoint`` (the same rule at every endpoint).

        A public client: ``"none"`` only. A confidential client: its record's method, or either
        secret method with ``any_secret_method``.
        """
        if self.client.is_public or method == "none":
            return self.client.is_public and method == "none"
        if self.any_secret_method:
            return method in ("client_secret_basic", "client_secret_post")
        return method == self.client.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        """Whether the client may request ``response_type`` (its ``authorized_response_types``)."""
        return self.client.response_type_supported(response_type)

    def check_grant_type(self, grant_type: str) -> bool:
        """Whether the client may use ``grant_type``; never ``client_credentials`` for a public client."""
        if grant_type == "client_credentials" and self.client.is_public:
            return False
        return self.client.grant_type_supported(grant_type)


class AuthlibAuthorizationCode(AuthorizationCodeMixin):
    """Authlib's ``AuthorizationCodeMixin`` over an oauth2-store :class:`~oauth2_store.AuthorizationCode`.

    ``code_challenge`` and ``code_challenge_method`` are what Authlib's ``CodeChallenge``
    extension (RFC 7636) reads; ``user_id`` is who authorized the client.
    """

    def __init__(self, code: AuthorizationCode) -> None:
        self.record = code

    @property
    def client_id(self) -> str:
        """Identifier of the client the code was issued to."""
        return self.record.client_id

    @property
    def user_id(self) -> str | None:
        """Identifier of the user who authorized the client."""
        return self.record.user_id

    @property
    def code_challenge(self) -> str | None:
        """The PKCE challenge of the authorization request, if it had one."""
        return self.record.code_challenge

    @property
    def code_challenge_method(self) -> str | None:
        """``"S256"`` or ``"plain"``; None with a challenge means ``"plain"`` (as Authlib reads it)."""
        return self.record.code_challenge_method

    def get_redirect_uri(self) -> str | None:
        """The redirect URI the authorization request named (the token request must repeat it), or None."""
        return self.record.redirect_uri

    def get_scope(self) -> str:
        """The granted scopes, space-separated."""
        return " ".join(self.record.scopes)


class AuthlibToken(TokenMixin):
    """Authlib's ``TokenMixin`` over an oauth2-store :class:`~oauth2_store.AccessToken`.

    Args:
        record: The token record.
        found_as: Which of its tokens was looked up: ``"access_token"``, or ``"refresh_token"``
            (then expiry is the refresh token's, which outlives the access token).
        clock: Where "now" comes from for :meth:`is_expired`.

    Tokens come from the store, which never returns a revoked or expired one; ``is_expired``
    still checks, for a token held across its expiry. ``get_client`` is Authlib's (not
    implemented): the record keeps the client's id only, :attr:`client_id`.

    Raises:
        ValueError: ``found_as`` is ``"refresh_token"`` but the record has none.
    """

    def __init__(self, record: AccessToken, found_as: TokenTypeHint = "access_token", clock: Clock = system_clock) -> None:
        if found_as == "refresh_token" and record.refresh_token is None:
            raise ValueError("found as a refresh token, but the record has no refresh token")
        self.record = record
        self.found_as: TokenTypeHint = found_as
        self._clock = clock

    @property
    def value(self) -> str:
        """The token that was looked up: the access token, or the refresh token."""
        if self.found_as == "refresh_token" and self.record.refresh_token is not None:
            return self.record.refresh_token
        return self.record.token

    @property
    def client_id(self) -> str:
        """Identifier of the client the token was issued to."""
        return self.record.client_id

    @property
    def user_id(self) -> str | None:
        """Identifier of the user the token was issued for; None for ``client_credentials``."""
        return self.record.user_id

    @property
    def expires_at(self) -> int | None:
        """Unix time at which the looked-up token expires (the refresh token's, if found as one); None: never."""
        return self.record.refresh_expires_at if self.found_as == "refresh_token" else self.record.expires_at

    def check_client(self, client: ClientMixin) -> bool:
        """Whether the token was issued to ``client``."""
        return self.record.client_id == client.get_client_id()

    def get_scope(self) -> str:
        """The granted scopes, space-separated."""
        return " ".join(self.record.scopes)

    def get_expires_in(self) -> int:
        """The token's lifetime in seconds, from issue to expiry; 0 when it never expires (Authlib's convention).

        For a record without ``issued_at`` (written by an older release), the seconds left.
        """
        expires_at = self.expires_at
        if expires_at is None:
            return 0
        start = self.record.issued_at if self.record.issued_at is not None else int(self._clock())
        return max(0, expires_at - start)

    def is_expired(self) -> bool:
        """Whether the looked-up token has expired."""
        now = self._clock()
        if self.found_as == "refresh_token":
            return self.record.is_refresh_expired(now)
        return self.record.is_expired(now)

    def is_revoked(self) -> bool:
        """Always False: the store never returns a revoked token."""
        return False

    def get_user(self) -> str | None:
        """The user id (load your user object from it: the store keeps only the id)."""
        return self.record.user_id


class S256CodeChallenge(CodeChallenge):
    """Authlib's PKCE extension (RFC 7636) with ``S256`` as its only method (RFC 9700 §2.1.1).

    ``code_challenge_method=plain``, or a ``code_challenge`` without a method (RFC 7636 §4.3 reads
    it as ``plain``), is ``invalid_request``, redirected to the client. With ``required=True``
    (the default) a public client must send a challenge with its authorization request.
    """

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: grants.BaseGrant, redirect_uri: object) -> None:
        """Authlib's checks; a challenge must name its method, and with ``required`` a public
        client must send one (Authlib alone asks it for a verifier only at the token endpoint,
        after a code was issued).

        Raises:
            InvalidRequestError: a malformed or repeated challenge, a method other than ``S256``,
                or no challenge from a public client.
        """
        super().validate_code_challenge(grant, redirect_uri)
        data = grant.request.payload.data
        if data.get("code_challenge") and not data.get("code_challenge_method"):
            raise InvalidRequestError("Missing 'code_challenge_method': only S256 is supported.")
        client = grant.request.client
        if self.required and not data.get("code_challenge") and client is not None and client.check_endpoint_auth_method("none", "token"):
            raise InvalidRequestError("Missing 'code_challenge': a public client must use PKCE.")


def one_secret_method(authenticate: _ClientAuthentication) -> _ClientAuthentication:
    """Wrap an Authlib client authentication method so that it refuses (returns None) a request
    that sends a client secret both in an ``Authorization: Basic`` header and in its body: RFC
    6749 §2.3 allows one method per request. Authlib alone takes whichever it tries first."""

    def only_one(query_client: Callable[[str], ClientMixin | None], request: OAuth2Request) -> ClientMixin | None:
        scheme = (request.headers.get("Authorization") or "").strip().partition(" ")[0]
        if scheme.lower() == "basic" and request.form.get("client_secret"):
            return None
        return authenticate(query_client, request)

    return only_one


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    """Authlib's authorization-code grant on :attr:`storage`'s token store.

    Use :attr:`AuthlibStorage.authorization_code_grant`, this class bound to a storage, or a
    subclass that sets :attr:`storage` (for example to override :meth:`load_user` and return your
    own user object). Register it with :class:`S256CodeChallenge` for PKCE.

    Clients authenticate with ``client_secret_basic``, ``client_secret_post`` or, for public
    clients, ``none``. A code lives :attr:`AuthlibStorage.code_expires_in` seconds.
    """

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
    storage: ClassVar[AuthlibStorage]
    """The storage the grant keeps its codes in."""

    def __init__(self, request: OAuth2Request, server: AuthorizationServer) -> None:
        _require_storage(type(self), "authorization_code_grant")
        super().__init__(request, server)

    def validate_authorization_request(self) -> str:
        """Authlib's validation of the authorization request; return the redirect URI.

        Raises:
            InvalidRequestError: no ``client_id``, or an unknown one (RFC 6749 §4.1.2.1; Authlib
                says ``invalid_client``), not redirected; or a bad redirect URI.
            OAuth2Error: the other errors Authlib raises, redirected once the redirect URI is known.
        """
        try:
            return super().validate_authorization_request()
        except InvalidClientError as error:
            raise InvalidRequestError(error.description, state=self.request.payload.state) from None

    def create_authorization_response(self, redirect_uri: str, grant_user: object) -> tuple[int, str, list[tuple[str, str]]]:
        """Save a code for ``grant_user`` and redirect to the client with it.

        Authlib's own, except that every error is redirected to the client (RFC 6749 §4.1.2.1:
        ``redirect_uri`` is validated by then), a store failure included (``server_error``,
        ``temporarily_unavailable``), not only ``access_denied``.

        Raises:
            AccessDeniedError: no ``grant_user``.
            InvalidRequestError: the request holds a value a code cannot keep.
            ServerError, TemporarilyUnavailableError: the store failed.
        """
        try:
            return super().create_authorization_response(redirect_uri, grant_user)
        except OAuth2Error as error:
            if error.redirect_uri is None:
                error.redirect_uri = redirect_uri
            raise

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        """Store ``code`` for ``request``'s client, resolved scope, user, redirect URI and PKCE challenge.

        Raises:
            InvalidRequestError: the request holds a value a code cannot keep: a malformed PKCE
                challenge, or one whose method is not ``S256`` (when the grant was registered
                with Authlib's own ``CodeChallenge``, which lets ``plain`` through).
            ServerError, TemporarilyUnavailableError: the store failed.
        """
        storage = self.storage
        payload = request.payload
        with _oauth2_errors():
            user_id = _user_id(request.user)  # what the server passed as grant_user: not the client's mistake
        challenge = payload.data.get("code_challenge") or None
        if (challenge or payload.data.get("code_challenge_method")) and payload.data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("Only the S256 code challenge method is supported.")
        try:
            record = AuthorizationCode(
                _client_id(request),
                code,
                int(storage.clock()) + storage.code_expires_in,
                payload.redirect_uri,
                (request.scope or "").split(),
                user_id=user_id,
                code_challenge=challenge,
                code_challenge_method="S256" if challenge else None,
            )
        except RecordError:
            raise InvalidRequestError("The authorization request holds a value the server cannot keep.") from None
        with _oauth2_errors():
            storage.tokens.save_code(record)

    def query_authorization_code(self, code: str, client: ClientMixin) -> AuthlibAuthorizationCode | None:
        """Redeem ``code``: consume it from the store (atomic) and return it if it was issued to ``client``.

        None (Authlib answers ``invalid_grant``) for a code that is unknown, expired, already
        redeemed (a replay: on a lifecycle store its grant is revoked, the tokens issued from it
        included), or issued to another client, or, for a code issued without a redirect URI, a
        token request naming a URI other than the client's only one (RFC 6749 §4.1.3; Authlib
        checks the redirect URI only when the code has one). The code is used up in every case
        but the first.

        Raises:
            ServerError, TemporarilyUnavailableError: the store failed; the code may be used up.
        """
        record = _or_none(self.storage.tokens.consume_code, code)
        if record is None or record.client_id != client.get_client_id():
            return None
        named = self.request.payload.redirect_uri
        if record.redirect_uri is None and named is not None and named != client.get_default_redirect_uri():
            return None
        return AuthlibAuthorizationCode(record)

    def delete_authorization_code(self, authorization_code: AuthorizationCodeMixin) -> None:
        """Nothing to do: :meth:`query_authorization_code` consumed the code already."""

    def authenticate_user(self, authorization_code: AuthorizationCodeMixin) -> object:
        """The user who authorized the client: :meth:`load_user` of the code's ``user_id``.

        Authlib answers a false user (a code without a user) ``invalid_grant``.
        """
        return self.load_user(_ours(authorization_code, AuthlibAuthorizationCode).user_id)

    def load_user(self, user_id: str | None) -> object:
        """The user a token is issued for, as ``request.user``: the user id itself.

        Override it to return your own user object (with ``get_user_id()``, see :class:`AuthlibUser`).
        """
        return user_id


class RefreshTokenGrant(grants.RefreshTokenGrant):
    """Authlib's refresh-token grant on :attr:`storage`'s token store, rotating refresh tokens.

    Every refresh issues a new refresh token (``INCLUDE_NEW_REFRESH_TOKEN``) and revokes the old
    one together with its access token. The revocation happens in :meth:`authenticate_user`,
    Authlib's last step before it issues the new token, so a refresh token someone has just used
    is refused there (``invalid_grant``) rather than after a second token was issued.

    Of concurrent refreshes with one refresh token at most one is issued tokens, in any number of
    processes sharing the store: the store's ``delete_refresh_token`` succeeds for exactly one
    caller. On a lifecycle store every other one is reuse (``invalid_grant``), which revokes the
    grant, so the winner's new tokens end too; so does a refresh token presented again later. The
    new token joins the old one's grant.
    """

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
    INCLUDE_NEW_REFRESH_TOKEN = True
    storage: ClassVar[AuthlibStorage]
    """The storage the grant finds and revokes its tokens in."""

    def __init__(self, request: OAuth2Request, server: AuthorizationServer) -> None:
        _require_storage(type(self), "refresh_token_grant")
        super().__init__(request, server)

    def authenticate_refresh_token(self, refresh_token: str) -> AuthlibToken | None:
        """The token issued with ``refresh_token``; None (``invalid_grant``) if unknown, revoked or
        expired, or already rotated (reuse: the store has revoked its grant).

        Raises:
            ServerError, TemporarilyUnavailableError: the store failed.
        """
        record = _or_none(self.storage.tokens.fetch_by_refresh_token, refresh_token)
        return None if record is None else AuthlibToken(record, "refresh_token", self.storage.clock)

    def authenticate_user(self, refresh_token: TokenMixin) -> object:
        """:meth:`load_user` of the token's ``user_id``, once the old refresh token and its access
        token are revoked.

        Authlib answers a false user (a token without a user) ``invalid_request``; the tokens are
        then left alone.

        Raises:
            InvalidGrantError: the refresh token was revoked since it was looked up (used by a
                concurrent request: on a lifecycle store that is reuse, and the grant is revoked).
            ServerError, TemporarilyUnavailableError: the store failed; the refresh token may be
                revoked.
        """
        token = _ours(refresh_token, AuthlibToken)
        user = self.load_user(token.user_id)
        if not user:
            return user
        with _oauth2_errors():
            try:
                self.storage.tokens.delete_refresh_token(token.value)
            except AccessTokenNotFound:
                raise InvalidGrantError("The refresh token was already used.") from None
        return user

    def load_user(self, user_id: str | None) -> object:
        """The user the new token is issued for, as ``request.user``: the user id itself.

        Override it to return your own user object (with ``get_user_id()``, see :class:`AuthlibUser`).
        """
        return user_id

    def revoke_old_credential(self, refresh_token: TokenMixin) -> None:
        """Nothing to do: :meth:`authenticate_user` revoked the old tokens already."""


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    """Authlib's client-credentials grant, for confidential clients with ``client_secret_basic`` or ``client_secret_post``.

    It stores nothing beyond the token (through ``save_token``), so it needs no storage. Public
    clients cannot authenticate here, and :class:`AuthlibClient` refuses them the grant type.
    """

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


class BearerTokenValidator(_BearerTokenValidator):
    """Authlib's bearer-token validator (RFC 6750) over a token store, for a ``ResourceProtector``.

    Args:
        tokens: The token store.
        clock: Where "now" comes from (the tokens' ``is_expired``).
        realm, extra_attributes: Authlib's, for the ``WWW-Authenticate`` header.

    An unknown, revoked or expired token is Authlib's 401 ``invalid_token``; a failing store is
    :class:`TemporarilyUnavailableError` (503) or :class:`ServerError` (500), never 401.
    """

    def __init__(self, tokens: TokenStoreProtocol, *, clock: Clock = system_clock, realm: str | None = None, **extra_attributes: str) -> None:
        super().__init__(realm, **extra_attributes)
        self.tokens = tokens
        self.clock = clock

    def authenticate_token(self, token_string: str) -> AuthlibToken | None:
        """The live access token ``token_string``, or None.

        Raises:
            ServerError, TemporarilyUnavailableError: the store failed.
        """
        record = _or_none(self.tokens.fetch_by_token, token_string)
        return None if record is None else AuthlibToken(record, "access_token", self.clock)


class _StoredTokenEndpoint(TokenEndpoint):
    """What the revocation and introspection endpoints share: the token store, and finding a token in it."""

    def __init__(self, tokens: TokenStoreProtocol, *, clock: Clock = system_clock, server: AuthorizationServer | None = None) -> None:
        super().__init__(server)
        self.tokens = tokens
        self.clock = clock

    def check_params(self, request: OAuth2Request, client: ClientMixin) -> None:
        """The request must name a ``token``; any ``token_type_hint`` is only a hint.

        Raises:
            InvalidRequestError: no ``token``.
        """
        _require_token_param(request)

    def query_token(self, token_string: str, token_type_hint: str | None) -> AuthlibToken | None:
        """The token ``token_string``, looked up first as ``token_type_hint`` says, then as the other kind.

        Raises:
            ServerError, TemporarilyUnavailableError: the store failed.
        """
        return _query_token(self.tokens, token_string, token_type_hint, self.clock)


class RevocationEndpoint(_StoredTokenEndpoint, _RevocationEndpoint):
    """Authlib's RFC 7009 revocation endpoint over a token store.

    Args:
        tokens: The token store.
        clock: Where "now" comes from.

    Any client may revoke its own tokens: confidential clients authenticate with
    ``client_secret_basic`` or ``client_secret_post``, public ones with ``none``. Revoking an access
    token revokes it alone; revoking a refresh token revokes its access token too, and on a
    lifecycle store its whole grant (RFC 7009 §2.1). An unknown
    token is answered 200; a token of another client ``invalid_grant`` (RFC 7009 §2.1: the request
    is refused), unrevoked. An unknown ``token_type_hint`` is ignored (RFC 7009 §2.1).
    """

    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def revoke_token(self, token: TokenMixin, request: OAuth2Request) -> None:
        """Revoke ``token`` as the kind it was found as.

        Raises:
            ServerError, TemporarilyUnavailableError: the store failed; the token may still be live.
        """
        found = _ours(token, AuthlibToken)
        with _oauth2_errors():
            self.tokens.revoke_token(found.value, found.found_as)


class IntrospectionEndpoint(_StoredTokenEndpoint, _IntrospectionEndpoint):
    """Authlib's RFC 7662 introspection endpoint over a token store.

    Args:
        tokens: The token store.
        clock: Where "now" comes from.

    Confidential clients authenticate (``client_secret_basic`` or ``client_secret_post``) and may
    introspect their own tokens only: another client's token is ``{"active": false}``, as an
    unknown, expired or revoked one is. Override :meth:`check_permission` for a resource server
    that introspects every client's tokens. An unknown ``token_type_hint`` is ignored.
    """

    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def check_permission(self, token: TokenMixin, client: ClientMixin, request: OAuth2Request) -> bool:
        """Whether ``client`` may introspect ``token``: only if it was issued to it."""
        return token.check_client(client)

    def introspect_token(self, token: TokenMixin) -> dict[str, object]:
        """RFC 7662 §2.2 for a live token: ``active``, ``scope``, ``client_id``, ``token_type``, and
        ``exp``, ``iat``, ``sub`` (the user id) when known."""
        found = _ours(token, AuthlibToken)
        record = found.record
        payload: dict[str, object] = {"active": True, "scope": found.get_scope(), "client_id": record.client_id, "token_type": record.token_type}
        if found.expires_at is not None:
            payload["exp"] = found.expires_at
        if record.issued_at is not None:
            payload["iat"] = record.issued_at
        if record.user_id is not None:
            payload["sub"] = record.user_id
        return payload


class AuthlibStorage:
    """What an Authlib ``AuthorizationServer`` and ``ResourceProtector`` take, over two stores.

    Args:
        tokens: The token store: tokens and codes.
        clients: The client store (:meth:`query_client` reads it).
        clock: Where "now" comes from: tokens' ``issued_at`` and expiry, codes' expiry.
        code_expires_in: Seconds an authorization code lives.
        refresh_token_expires_in: Seconds a refresh token lives; None: until used or revoked.
        any_secret_method: Let confidential clients authenticate with either
            ``client_secret_basic`` or ``client_secret_post`` (see :class:`AuthlibClient`).

    Attributes:
        authorization_code_grant: :class:`AuthorizationCodeGrant` bound to this storage.
        refresh_token_grant: :class:`RefreshTokenGrant` bound to this storage.
    """

    def __init__(
        self,
        tokens: TokenStoreProtocol,
        clients: ClientStoreProtocol,
        *,
        clock: Clock = system_clock,
        code_expires_in: int = AUTHORIZATION_CODE_SECONDS,
        refresh_token_expires_in: int | None = REFRESH_TOKEN_SECONDS,
        any_secret_method: bool = False,
    ) -> None:
        self.clients = clients
        self.tokens = tokens
        self.clock = clock
        self.code_expires_in = code_expires_in
        self.refresh_token_expires_in = refresh_token_expires_in
        self.any_secret_method = any_secret_method
        bound = self

        class BoundAuthorizationCodeGrant(AuthorizationCodeGrant):
            storage = bound

        class BoundRefreshTokenGrant(RefreshTokenGrant):
            storage = bound

        self.authorization_code_grant: type[AuthorizationCodeGrant] = BoundAuthorizationCodeGrant
        self.refresh_token_grant: type[RefreshTokenGrant] = BoundRefreshTokenGrant

    def query_client(self, client_id: str) -> AuthlibClient | None:
        """The client ``client_id``, or None (Authlib answers ``invalid_client``): ``query_client=``.

        Raises:
            ServerError, TemporarilyUnavailableError: the client store failed.
        """
        client = _or_none(self.clients.fetch_by_client_id, client_id)
        return None if client is None else AuthlibClient(client, any_secret_method=self.any_secret_method)

    def save_token(self, token: Mapping[str, object], request: OAuth2Request) -> None:
        """Store the token Authlib issued for ``request``: ``save_token=``.

        The record gets the response's access token, token type, refresh token and scope, the
        request's client, grant type and user, ``issued_at`` now (the clock), ``expires_at`` from
        ``expires_in`` and ``refresh_expires_at`` from :attr:`refresh_token_expires_in`, and the
        grant of the code redeemed (``request.authorization_code``) or of the token refreshed
        (``request.refresh_token``); any other token starts a grant of its own.

        Raises:
            InvalidGrantError: the grant was revoked meanwhile (a replay of its code, a reuse of
                its refresh token); nothing is stored.
            ServerError: the token response or request holds what a record cannot (a bug
                upstream), or the store failed otherwise.
            TemporarilyUnavailableError: the store could not be reached; the token may not be stored.
        """
        with _oauth2_errors():
            now = int(self.clock())
            expires_in = _optional_int(token.get("expires_in"), "expires_in")
            refresh_token = _optional_str(token.get("refresh_token"), "refresh_token")
            lifetime = self.refresh_token_expires_in
            record = AccessToken(
                _client_id(request),
                # only the implicit grant issues tokens where there is no grant_type (at /authorize)
                request.payload.grant_type or "implicit",
                _optional_str(token.get("access_token"), "access_token") or "",
                expires_at=None if not expires_in else now + expires_in,
                refresh_token=refresh_token,
                scopes=(_optional_str(token.get("scope"), "scope") or "").split(),
                refresh_expires_at=None if refresh_token is None or lifetime is None else now + lifetime,
                user_id=_user_id(request.user),
                issued_at=now,
                token_type=_optional_str(token.get("token_type"), "token_type") or "Bearer",
                grant_id=_grant_of(request),
            )
            self.tokens.save_token(record)

    def bearer_token_validator(self, realm: str | None = None, **extra_attributes: str) -> BearerTokenValidator:
        """A :class:`BearerTokenValidator` on the token store, for ``ResourceProtector.register_token_validator``."""
        return BearerTokenValidator(self.tokens, clock=self.clock, realm=realm, **extra_attributes)

    def revocation_endpoint(self) -> RevocationEndpoint:
        """A :class:`RevocationEndpoint` on the token store, for ``AuthorizationServer.register_endpoint``."""
        return RevocationEndpoint(self.tokens, clock=self.clock)

    def introspection_endpoint(self) -> IntrospectionEndpoint:
        """An :class:`IntrospectionEndpoint` on the token store, for ``AuthorizationServer.register_endpoint``."""
        return IntrospectionEndpoint(self.tokens, clock=self.clock)

    def register(self, server: AuthorizationServer) -> None:
        """Register on ``server`` the authorization-code grant with PKCE (:class:`S256CodeChallenge`,
        required of public clients), the rotating refresh-token grant, the client-credentials grant,
        the revocation and introspection endpoints, and the secret methods wrapped in
        :func:`one_secret_method` (see the module documentation)."""
        server.register_client_auth_method("client_secret_basic", one_secret_method(authenticate_client_secret_basic))
        server.register_client_auth_method("client_secret_post", one_secret_method(authenticate_client_secret_post))
        server.register_grant(self.authorization_code_grant, [S256CodeChallenge(required=True)])
        server.register_grant(self.refresh_token_grant)
        server.register_grant(ClientCredentialsGrant)
        server.register_endpoint(self.revocation_endpoint())
        server.register_endpoint(self.introspection_endpoint())


def _require_storage(grant: type, attribute: str) -> None:
    if not isinstance(getattr(grant, "storage", None), AuthlibStorage):
        raise TypeError(f"{grant.__qualname__} has no storage: register an AuthlibStorage's {attribute}, or a subclass that sets storage")


def _require_token_param(request: OAuth2Request) -> None:
    if not request.form.get("token"):
        raise InvalidRequestError("Missing 'token' parameter.")


def _query_token(tokens: TokenStoreProtocol, token: str, hint: str | None, clock: Clock) -> AuthlibToken | None:
    """Look ``token`` up as the kind ``hint`` names first, then as the other (RFC 7009 §2.1)."""
    kinds: tuple[TokenTypeHint, TokenTypeHint] = ("refresh_token", "access_token") if hint == "refresh_token" else ("access_token", "refresh_token")
    for kind in kinds:
        record = _or_none(tokens.fetch_by_token if kind == "access_token" else tokens.fetch_by_refresh_token, token)
        if record is not None:
            return AuthlibToken(record, kind, clock)
    return None


def _grant_of(request: OAuth2Request) -> str | None:
    """The grant a token issued for ``request`` joins: the redeemed code's or the refreshed
    token's (what the grants put on the request); None (a new grant) for any other request."""
    code = request.authorization_code
    if isinstance(code, AuthlibAuthorizationCode):
        return code.record.grant_id
    refreshed = request.refresh_token
    if isinstance(refreshed, AuthlibToken):
        return refreshed.record.grant_id
    return None


def _or_none(lookup: Callable[[str], _R], key: str) -> _R | None:
    """``lookup(key)``, None for a miss; a store failure raised as Authlib's error."""
    with _oauth2_errors():
        try:
            return lookup(key)
        except NotFoundError:
            return None


@contextlib.contextmanager
def _oauth2_errors() -> Iterator[None]:
    """Store failures become Authlib errors, which every Authlib endpoint answers as JSON; a
    revoked grant is ``invalid_grant``."""
    try:
        yield
    except GrantRevokedError:
        raise InvalidGrantError("The grant was revoked.") from None
    except StoreUnavailableError as error:
        log.warning("token store unavailable: %s", error)
        raise TemporarilyUnavailableError() from error
    except StoreError as error:  # a corrupt or oversized record, or one the request could not build
        log.error("token store failed: %s: %s", type(error).__name__, error)
        raise ServerError() from error


def _ours(value: object, kind: type[_T]) -> _T:
    if not isinstance(value, kind):
        raise TypeError(f"expected the seam's {kind.__name__}, not {type(value).__qualname__}: the grant and endpoint classes must come from one storage")
    return value


def _client_id(request: OAuth2Request) -> str:
    client = request.client
    if client is None:
        raise TypeError("the request has no client: Authlib authenticates one before a code or token is issued")
    return client.get_client_id()


def _user_id(user: object) -> str | None:
    """A user as Authlib hands it over: None, the user id (a str), or an :class:`AuthlibUser`."""
    if user is None or isinstance(user, str):
        return user
    if isinstance(user, AuthlibUser):
        user_id = user.get_user_id()
        if isinstance(user_id, int) and not isinstance(user_id, bool):
            return str(user_id)
        if isinstance(user_id, str):
            return user_id
        raise RecordTypeError(f"get_user_id() must return a str or an int, not {type(user_id).__name__}")
    raise RecordTypeError(f"a user must be a user id (str), None or have get_user_id(), not {type(user).__name__}")


def _optional_str(value: object, field: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise RecordTypeError(f"the token response's {field} must be a str, not {type(value).__name__}")


def _optional_int(value: object, field: str) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise RecordTypeError(f"the token response's {field} must be an int, not {type(value).__name__}")
