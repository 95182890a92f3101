"""oauthlib's OAuth 2.0 provider on oauth2-store's stores: the one seam between the two libraries.

:class:`StoreRequestValidator` is an ``oauthlib.oauth2.RequestValidator`` over a token store and
a client store; any of oauthlib's pre-configured servers runs on it::

    from oauthlib.oauth2 import FatalClientError, OAuth2Error, Server
    from oauth2_store import open_store
    from oauth2_store.integrations.oauthlib import StoreRequestValidator
    from oauth2_store.store import LocalClientStore

    clients = LocalClientStore()
    clients.add_client("app", "s3cret", ["https://app.example/cb"])
    validator = StoreRequestValidator(open_store("memcache://127.0.0.1:11211"), clients)
    server = Server(validator, token_expires_in=3600)

    try:  # in the view of each endpoint
        headers, body, status = server.create_token_response(uri, "POST", body, headers)
    except OAuth2Error as error:  # what oauthlib does not answer itself: see below
        headers, body, status = error.headers, error.json, error.status_code

The authorization endpoint's view names the user who approved (None: nobody did, which is
``access_denied``), and sends back to the client what oauthlib lets escape once the redirect URI
is validated (RFC 6749 §4.1.2.1: ``access_denied``, a store failure)::

    try:
        headers, body, status = server.create_authorization_response(uri, credentials={"user": user_id})
    except OAuth2Error as error:
        if isinstance(error, FatalClientError) or not error.redirect_uri:
            raise  # a bad client or redirect URI: answer it to the user agent, never redirect
        headers, body, status = {"Location": error.in_uri(error.redirect_uri)}, None, 302

What it serves: the authorization-code grant with PKCE (required of public clients), the
refresh-token grant with rotation, client credentials (confidential clients only), bearer tokens
for resource servers, revocation (RFC 7009) and introspection (RFC 7662). The implicit,
password and device grants of oauthlib's ``Server`` are refused (``unauthorized_client``,
``unsupported_grant_type``): this validator keeps no passwords and issues no tokens from the
authorization endpoint.

- **Codes are redeemed once.** :meth:`~StoreRequestValidator.validate_code` *consumes* the code
  (:meth:`~oauth2_store.protocols.ExtendedAuthCodeStoreProtocol.consume_code`), so of any number
  of concurrent token requests, in any number of processes sharing the store, exactly one gets
  it. oauthlib's order (validate, issue, then invalidate) would let two of them through
  (oauthlib#618); ``invalidate_authorization_code`` is therefore a no-op. A code is used up even
  if the token request then fails (a wrong PKCE verifier): a stolen code is not retried.
- **Refresh tokens rotate.** Each refresh issues a new refresh token and revokes the old one
  together with its access token; a refresh token already used is ``invalid_grant``.
- **Grants are families** (RFC 6749 §4.1.2, RFC 9700 §4.14.2). :meth:`~StoreRequestValidator.save_bearer_token`
  saves the token issued from a code with the code's ``grant_id``, and a token issued by a refresh
  with the old token's (both kept on the request by :meth:`~StoreRequestValidator.validate_code`
  and :meth:`~StoreRequestValidator.validate_refresh_token`). On a
  :class:`~oauth2_store.protocols.LifecycleTokenStoreProtocol` store (what
  :func:`~oauth2_store.open_store` opens), a code presented again or a rotated refresh token
  presented again is ``invalid_grant`` and revokes the grant: the token first issued from the code
  and the newest one refreshed from it stop working. Of concurrent requests with one code or one
  refresh token, the losers count as such a replay, so the winner's tokens end too. A token saved
  into a grant revoked meanwhile is ``invalid_grant`` (raised from ``save_bearer_token``), never
  issued. Revoking a refresh token (RFC 7009) revokes its grant.
- **PKCE is S256 only** (RFC 9700 §2.1.1): ``plain``, a challenge without a method (RFC 7636
  reads it as ``plain``) or a malformed challenge is ``invalid_request``, redirected to the client.
- **Bearer tokens come from the ``Authorization`` header only**: oauthlib would also take an
  ``access_token`` query or form parameter, which ends up in logs and browser history (RFC 9700
  §4.3.2, OAuth 2.1 forbids the query).
- **Clients authenticate** by ``client_secret_basic`` (the ``Authorization`` header, RFC 6749
  §2.3.1) or ``client_secret_post`` (the form body), with the method their record names, or
  either one with ``any_secret_method=True``; never with both at once. A public client
  (empty secret, method ``"none"``) sends only its ``client_id`` and must use PKCE.
- **Records are adapted here.** ``request.client`` is an :class:`OAuthlibClient` (oauthlib reads
  ``request.client.client_id``) wrapping our :class:`~oauth2_store.Client`; ``request.user`` is
  the user's identifier, a str (or None), as the authorization request's ``credentials`` gave it.
- **A failing store is never "invalid" or "not found".** Every hook translates our errors in one
  place: :class:`~oauth2_store.error.StoreUnavailableError` becomes :class:`StoreUnavailable`
  (503 ``temporarily_unavailable``), :class:`~oauth2_store.error.GrantRevokedError` becomes
  oauthlib's ``InvalidGrantError`` (400 ``invalid_grant``), any other
  :class:`~oauth2_store.error.StoreError` becomes :class:`StoreFailure` (500 ``server_error``). Both subclass oauthlib's ``FatalClientError``,
  so the authorization endpoint never redirects them (a store may fail before the redirect URI
  is validated); :meth:`~StoreRequestValidator.save_authorization_code`, which runs once it is
  validated, raises oauthlib's redirectable ``TemporarilyUnavailableError`` (503) and
  ``ServerError`` (500) instead. oauthlib's endpoints answer an ``OAuth2Error`` raised while *validating* a request themselves,
  but let one raised while *saving or revoking* escape (``save_bearer_token``,
  ``save_authorization_code``, ``revoke_token``, ``introspect_token``, and
  ``validate_bearer_token`` in ``verify_request``): the view answers it from ``error.json``,
  ``error.status_code`` and ``error.headers``, as in the wiring above. So a store that is down
  is a 503 at ``/api/me`` too, never a 401.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import unquote_plus

import attrs

from oauth2_store import _fields
from oauth2_store.clock import Clock, system_clock
from oauth2_store.error import (
    AccessTokenNotFound,
    AuthCodeNotFound,
    ClientNotFoundError,
    GrantRevokedError,
    RecordError,
    RecordTypeError,
    RecordValueError,
    StoreError,
    StoreUnavailableError,
)
from oauth2_store.models import AccessToken, AuthorizationCode, Client, TokenEndpointAuthMethod
from oauth2_store.protocols import ClientStoreProtocol, TokenStoreProtocol, TokenTypeHint

try:
    from oauthlib.common import Request
    from oauthlib.oauth2 import RequestValidator
    from oauthlib.oauth2.rfc6749 import errors
except ImportError as missing:  # pragma: no cover - depends on the environment
    raise ImportError("oauthlib is not installed: pip install 'oauth2-store[oauthlib]'") from missing

if TYPE_CHECKING:  # types-oauthlib's TypedDicts exist for type checkers only
    from oauthlib.oauth2.rfc6749.request_validator import _AuthorizationCode, _BearerToken

__all__ = [
    "CODE_SECONDS",
    "GRANT_TYPES",
    "REFRESH_TOKEN_SECONDS",
    "OAuthlibClient",
    "StoreFailure",
    "StoreRequestValidator",
    "StoreUnavailable",
    "access_token_of",
]

CODE_SECONDS = 600
"""How long an authorization code lives by default (RFC 6749 §4.1.2 recommends 10 minutes at most)."""

REFRESH_TOKEN_SECONDS = 30 * 24 * 3600
"""How long a refresh token lives by default: 30 days from its issue."""

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
"""The grant types the validator serves; every other grant oauthlib offers is refused."""

log = logging.getLogger(__name__)

_Record = TypeVar("_Record", AccessToken, AuthorizationCode)
_STASH = "_oauth2_store_record"
"""The attribute of an oauthlib ``Request`` that keeps the code or refresh token it consumed."""
_BEARER = "_oauth2_store_access_token"
"""The attribute of an oauthlib ``Request`` that keeps the access token it was authorized with."""


class StoreUnavailable(errors.FatalClientError):
    """The store could not be reached or timed out: HTTP 503 ``temporarily_unavailable``.

    A ``FatalClientError``, so the authorization endpoint raises it instead of redirecting it.
    """

    error = "temporarily_unavailable"
    status_code = 503
    description = "the token store is unavailable; try again later"


class StoreFailure(errors.FatalClientError):
    """The store failed otherwise (a corrupt record, a record it cannot keep): HTTP 500 ``server_error``."""

    error = "server_error"
    status_code = 500
    description = "the server failed; try again later"


@attrs.frozen
class OAuthlibClient:
    """Our :class:`~oauth2_store.Client` as oauthlib sees it on ``request.client``.

    oauthlib reads ``request.client.client_id``; ``record`` is the client record itself.
    """

    record: Client

    @property
    def client_id(self) -> str:
        """The client identifier (``record.identifier``)."""
        return self.record.identifier


class StoreRequestValidator(RequestValidator):
    """oauthlib's request validator over an oauth2-store token store and client store.

    Args:
        tokens: Keeps access tokens, refresh tokens and authorization codes (any
            :class:`~oauth2_store.protocols.TokenStoreProtocol`, e.g. what
            :func:`~oauth2_store.open_store` returns).
        clients: Finds the registered clients (any
            :class:`~oauth2_store.protocols.ClientStoreProtocol`).
        code_expires_in: Lifetime of an authorization code, in seconds.
        refresh_token_expires_in: Lifetime of a refresh token, in seconds; None: it never expires.
            (The access token's lifetime is oauthlib's: ``Server(token_expires_in=...)``.)
        any_secret_method: Let a confidential client send its secret by ``client_secret_basic``
            or ``client_secret_post``, whichever its record names; by default it must use the
            method its record names (``token_endpoint_auth_method``).
        clock: Where the time is read (``issued_at``, expiries), for tests.

    Every hook may raise :class:`StoreUnavailable` or :class:`StoreFailure` (see the module
    documentation for where oauthlib lets them escape).
    """

    def __init__(
        self,
        tokens: TokenStoreProtocol,
        clients: ClientStoreProtocol,
        *,
        code_expires_in: int = CODE_SECONDS,
        refresh_token_expires_in: int | None = REFRESH_TOKEN_SECONDS,
        any_secret_method: bool = False,
        clock: Clock = system_clock,
    ) -> None:
        self.tokens = tokens
        self.clients = clients
        self.code_expires_in = code_expires_in
        self.refresh_token_expires_in = refresh_token_expires_in
        self.any_secret_method = any_secret_method
        self.clock = clock

    # -- clients ------------------------------------------------------------------------------

    def validate_client_id(self, client_id: str, request: Request, *args: object, **kwargs: object) -> bool:
        """Whether ``client_id`` is a registered client; if so, set ``request.client``."""
        return self._identify(client_id, request) is not None

    def client_authentication_required(self, request: Request, *args: object, **kwargs: object) -> bool:
        """Whether the token request must authenticate the client: False only for a known public
        client that sends no credentials (it then goes through :meth:`authenticate_client_id`)."""
        if _credentials(request) != ("none", None, None):
            return True
        client = self._fetch_client(request.client_id)
        return client is None or not client.is_public

    def authenticate_client(self, request: Request, *args: object, **kwargs: object) -> bool:
        """Authenticate a confidential client by its secret (RFC 6749 §2.3.1); set ``request.client``.

        The secret comes from the ``Authorization: Basic`` header (form-urlencoded id and secret)
        or from the form body's ``client_id`` and ``client_secret``, never from both. False for
        an unknown client, a public client, a wrong secret, or (without ``any_secret_method``) a
        method other than the client's ``token_endpoint_auth_method``.
        """
        method, client_id, secret = _credentials(request)
        if method == "none" or client_id is None or secret is None:
            return False
        client = self._fetch_client(client_id)
        if client is None or client.is_public or not client.check_secret(secret):
            return False
        if not self.any_secret_method and method != client.token_endpoint_auth_method:
            return False
        request.client = OAuthlibClient(client)
        return True

    def authenticate_client_id(self, client_id: str | None, request: Request, *args: object, **kwargs: object) -> bool:
        """Identify a public client (method ``"none"``) by ``client_id``; set ``request.client``.

        False for an unknown or a confidential client: a confidential client must authenticate.
        """
        client = self._fetch_client(client_id)
        if client is None or client.token_endpoint_auth_method != "none":
            return False
        request.client = OAuthlibClient(client)
        return True

    # -- the authorization request ------------------------------------------------------------

    def validate_redirect_uri(self, client_id: str, redirect_uri: str, request: Request, *args: object, **kwargs: object) -> bool:
        """Whether ``redirect_uri`` is registered for the client, as an exact string (RFC 6749 §3.1.2.3)."""
        client = self._identify(client_id, request)
        return client is not None and client.has_redirect_uri(redirect_uri)

    def get_default_redirect_uri(self, client_id: str, request: Request, *args: object, **kwargs: object) -> str:
        """The client's only registered redirect URI; ``""`` when it has none or several (oauthlib
        then answers that the request must name one)."""
        client = self._identify(client_id, request)
        default = None if client is None else client.default_redirect_uri
        return default or ""

    def validate_response_type(
        self, client_id: str, response_type: str, client: object, request: Request, *args: object, **kwargs: object
    ) -> bool:
        """Whether the client may use ``response_type``: only ``code`` is served."""
        record = self._identify(client_id, request)
        return response_type == "code" and record is not None and record.response_type_supported("code")

    def validate_scopes(self, client_id: str, scopes: list[str], client: object, request: Request, *args: object, **kwargs: object) -> bool:
        """Whether every scope is an RFC 6749 §3.3 scope token the client may be granted."""
        record = self._identify(client_id, request)
        try:
            _fields.scopes(scopes)
        except RecordError:
            return False
        return record is not None and record.allows_scopes(scopes)

    def get_default_scopes(self, client_id: str, request: Request, *args: object, **kwargs: object) -> list[str]:
        """The scopes granted when a request names none: none (as Authlib's seam grants)."""
        return []

    def is_pkce_required(self, client_id: str, request: Request) -> bool:
        """True for a public client (RFC 7636; OAuth 2.1): it cannot keep a secret, so PKCE binds its code.

        At the authorization endpoint it also checks the request's challenge, because this is
        oauthlib's last hook before it accepts one and it redirects what the hook raises: only
        ``S256``, and a challenge of 43 to 128 unreserved characters (RFC 7636 §4.2).

        Raises:
            errors.InvalidRequestError: a ``plain`` or missing method, a malformed or missing challenge.
        """
        if request.code_challenge is not None or request.code_challenge_method is not None:
            if request.code_challenge_method != "S256":
                raise errors.InvalidRequestError(description="only the S256 code challenge method is supported", request=request)
            try:
                if _fields.code_challenge(request.code_challenge) is None:
                    raise RecordValueError("a code_challenge_method needs a code_challenge")
            except RecordError:
                raise errors.InvalidRequestError(description="code_challenge must be 43 to 128 unreserved characters (RFC 7636 §4.2)", request=request) from None
        record = self._identify(client_id, request)
        return record is not None and record.is_public

    def save_authorization_code(self, client_id: str, code: _AuthorizationCode, request: Request, *args: object, **kwargs: object) -> None:
        """Store the code for ``request.user`` with the request's scopes, redirect URI and PKCE challenge.

        The redirect URI is kept only if the request named one (then the token request must name
        the same, RFC 6749 §4.1.3). oauthlib has validated the client and redirect URI by now,
        so every error raised here carries the request (``error.redirect_uri``): the view
        redirects it to the client (see the module documentation).

        Raises:
            errors.AccessDeniedError: ``request.user`` is None (nobody approved the request).
            errors.InvalidRequestError: a challenge that is malformed or not ``S256``.
            errors.TemporarilyUnavailableError: the store could not be reached (status 503).
            errors.ServerError: the store failed otherwise (status 500).
            RecordTypeError: ``request.user`` is not a str (pass the user's identifier).
        """
        user_id = _user_id(request.user)
        if user_id is None:
            raise errors.AccessDeniedError(description="no user approved the request", request=request)
        if request.code_challenge is not None and request.code_challenge_method != "S256":
            raise errors.InvalidRequestError(description="only the S256 code challenge method is supported", request=request)
        try:
            record = AuthorizationCode(
                client_id,
                code["code"],
                int(self.clock()) + self.code_expires_in,
                None if getattr(request, "using_default_redirect_uri", False) else request.redirect_uri,
                request.scopes or (),
                user_id=user_id,
                code_challenge=request.code_challenge,
                code_challenge_method="S256" if request.code_challenge is not None else None,
            )
        except RecordError:
            raise errors.InvalidRequestError(description="the authorization request holds a value the server cannot keep", request=request) from None
        try:
            with _oauthlib_errors():
                self.tokens.save_code(record)
        except StoreUnavailable:
            raise errors.TemporarilyUnavailableError(description=StoreUnavailable.description, status_code=503, request=request) from None
        except StoreFailure:
            raise errors.ServerError(description=StoreFailure.description, status_code=500, request=request) from None

    # -- the token request: authorization code ------------------------------------------------

    def validate_grant_type(
        self, client_id: str, grant_type: str, client: object, request: Request, *args: object, **kwargs: object
    ) -> bool:
        """Whether the client may use ``grant_type``: one of :data:`GRANT_TYPES`, allowed by its
        record, and ``client_credentials`` only for a confidential client."""
        record = _record(client)
        if record is None or grant_type not in GRANT_TYPES or not record.grant_type_supported(grant_type):
            return False
        return not (grant_type == "client_credentials" and record.is_public)

    def validate_code(self, client_id: str, code: str, client: object, request: Request, *args: object, **kwargs: object) -> bool:
        """Redeem ``code``: consume it (exactly once, across processes) and check it is the client's.

        False (``invalid_grant``) for a code that is unknown, expired, another client's, or
        already redeemed (a replay: on a lifecycle store its grant is revoked, the tokens issued
        from it included).

        Sets ``request.user``, ``request.scopes``, ``request.code_challenge`` and
        ``request.code_challenge_method`` from it, and keeps it on the request for the hooks
        oauthlib calls next (:meth:`get_code_challenge`, :meth:`get_code_challenge_method`,
        :meth:`confirm_redirect_uri`). The code is gone afterwards even if the request then fails.
        """
        try:
            with _oauthlib_errors():
                record = self.tokens.consume_code(code)
        except AuthCodeNotFound:
            return False
        if record.client_id != client_id or record.is_expired(self.clock()):
            return False
        setattr(request, _STASH, record)
        request.user = record.user_id
        request.scopes = list(record.scopes)
        request.code_challenge = record.code_challenge
        request.code_challenge_method = self.get_code_challenge_method(code, request)
        return True

    def get_code_challenge(self, code: str, request: Request) -> str | None:  # type: ignore[override]  # None: no challenge (oauthlib reads it so; the stubs say str)
        """The PKCE challenge stored with the code :meth:`validate_code` redeemed, None if it had none."""
        record = _stashed(request, AuthorizationCode, code)
        return None if record is None else record.code_challenge

    def get_code_challenge_method(self, code: str, request: Request) -> str | None:  # type: ignore[override]  # as get_code_challenge
        """``"S256"`` or ``"plain"`` for a code with a challenge (``"plain"`` when none was named,
        RFC 7636 §4.3); None for a code without one."""
        record = _stashed(request, AuthorizationCode, code)
        if record is None or record.code_challenge is None:
            return None
        return record.code_challenge_method or "plain"

    def confirm_redirect_uri(
        self, client_id: str, code: str, redirect_uri: str, client: object, request: Request, *args: object, **kwargs: object
    ) -> bool:
        """Whether the token request's redirect URI is the authorization request's (RFC 6749 §4.1.3).

        If the authorization request named one, the token request must name the same; if it
        named none, the client's default (the only registered one) is the one that counts.

        Raises:
            errors.InvalidGrantError: the redirect URI does not match: RFC 6749 §5.2's error for
                it (oauthlib's own answer to False is ``invalid_request``).
        """
        record = _stashed(request, AuthorizationCode, code)
        if record is None:
            return False
        if record.redirect_uri is None:
            client_record = _record(client)
            matches = client_record is not None and redirect_uri == client_record.default_redirect_uri
        else:
            matches = not request.using_default_redirect_uri and redirect_uri == record.redirect_uri
        if not matches:
            raise errors.InvalidGrantError(description="the redirect URI is not the authorization request's", request=request)
        return True

    def invalidate_authorization_code(self, client_id: str, code: str, request: Request, *args: object, **kwargs: object) -> None:
        """Nothing to do: :meth:`validate_code` consumed the code atomically before any token was
        issued. Deleting it only now, as oauthlib's order suggests, would let a concurrent request
        with the same code get a second token in between."""

    # -- the token request: refresh token -----------------------------------------------------

    def validate_refresh_token(self, refresh_token: str, client: object, request: Request, *args: object, **kwargs: object) -> bool:
        """Whether ``refresh_token`` is live and was issued to the client; sets ``request.user`` and
        keeps the token on the request (it is revoked when the new one is saved, which joins its
        grant). False (``invalid_grant``) for one already rotated: reuse, which on a lifecycle
        store revokes its grant."""
        record = _record(client)
        try:
            with _oauthlib_errors():
                previous = self.tokens.fetch_by_refresh_token(refresh_token)
        except AccessTokenNotFound:
            return False
        if record is None or previous.client_id != record.identifier or previous.is_refresh_expired(self.clock()):
            return False
        setattr(request, _STASH, previous)
        request.user = previous.user_id
        return True

    def get_original_scopes(self, refresh_token: str, request: Request, *args: object, **kwargs: object) -> list[str]:
        """The scopes granted with ``refresh_token`` (a refresh may narrow them, never widen)."""
        previous = _stashed(request, AccessToken, refresh_token)
        return [] if previous is None else list(previous.scopes)

    def rotate_refresh_token(self, request: Request) -> bool:
        """True: every refresh issues a new refresh token (the old one is revoked on save)."""
        return True

    # -- issuing tokens -----------------------------------------------------------------------

    def save_bearer_token(self, token: _BearerToken, request: Request, *args: object, **kwargs: object) -> None:
        """Store the issued token: client, user, scopes, ``issued_at``, expiries, refresh token,
        and its grant: the redeemed code's, or the refreshed token's (a client-credentials token
        starts its own).

        On a refresh, the old refresh token and its access token are revoked first; if another
        request revoked them meanwhile, nothing is saved: ``delete_refresh_token`` succeeds for
        exactly one caller, so of refreshes racing with one refresh token, in any number of
        processes, at most one is issued tokens (on a lifecycle store the others are reuse, which
        revokes the grant, the winner's tokens included).

        Raises:
            errors.InvalidGrantError: the refresh token was used by a concurrent request, or the
                grant was revoked meanwhile (a code replay, a refresh-token reuse); nothing is
                saved. oauthlib lets this escape: answer it as any ``OAuth2Error``.
            StoreUnavailable, StoreFailure: the store failed.
        """
        client = _record(request.client)
        if client is None:  # oauthlib authenticates the client before issuing anything
            raise StoreFailure(description="the client was not authenticated")
        now = int(self.clock())
        user_id = _user_id(request.user)
        previous = getattr(request, _STASH, None)  # the code or the old token: the grant to join
        old_refresh_token = previous.refresh_token if isinstance(previous, AccessToken) else None
        refresh_token = token.get("refresh_token")
        refresh_expires_at = None
        if refresh_token is not None and self.refresh_token_expires_in is not None:
            refresh_expires_at = now + self.refresh_token_expires_in
        with _oauthlib_errors():
            record = AccessToken(
                client.identifier,
                previous.grant_type if isinstance(previous, AccessToken) else str(request.grant_type),
                token["access_token"],
                expires_at=now + int(token["expires_in"]),
                refresh_token=refresh_token,
                scopes=request.scopes or (),
                refresh_expires_at=refresh_expires_at,
                user_id=user_id,
                issued_at=now,
                token_type="Bearer",
                grant_id=previous.grant_id if isinstance(previous, (AccessToken, AuthorizationCode)) else None,
            )
            if old_refresh_token is not None and old_refresh_token != refresh_token:
                try:
                    self.tokens.delete_refresh_token(old_refresh_token)
                except AccessTokenNotFound:
                    raise errors.InvalidGrantError(description="the refresh token was already used") from None
            self.tokens.save_token(record)

    def validate_user(
        self, username: str, password: str, client: object, request: Request, *args: object, **kwargs: object
    ) -> bool:
        """Never: the password grant is not served (this validator keeps no passwords).

        Raises:
            errors.UnsupportedGrantTypeError: always (oauthlib answers it).
        """
        raise errors.UnsupportedGrantTypeError(description="the password grant is not offered")

    # -- resource servers, revocation, introspection ------------------------------------------

    def validate_bearer_token(self, token: str | None, scopes: list[str] | None, request: Request) -> bool:
        """Whether ``token`` is a live access token of a registered client with every scope of ``scopes``.

        Sets ``request.user``, ``request.scopes`` and ``request.client``, and keeps the record
        for :func:`access_token_of`. A missing, unknown, expired or revoked token is False, and
        so is one not sent in the ``Authorization: Bearer`` header (a query or form
        ``access_token``); a failing store raises (never False).

        Raises:
            StoreUnavailable, StoreFailure: the store failed (oauthlib's ``verify_request`` lets
                it escape: answer it, it is not a 401).
        """
        if not token or token != _bearer_header_token(request):
            return False
        try:
            with _oauthlib_errors():
                record = self.tokens.fetch_by_token(token)
        except AccessTokenNotFound:
            return False
        client = self._fetch_client(record.client_id)
        if client is None or record.is_expired(self.clock()) or not set(scopes or ()) <= set(record.scopes):
            return False
        setattr(request, _BEARER, record)
        request.user = record.user_id
        request.scopes = list(record.scopes)
        request.client = OAuthlibClient(client)
        return True

    def revoke_token(self, token: str, token_type_hint: str | None, request: Request, *args: object, **kwargs: object) -> None:
        """Revoke ``token`` if it was issued to the requesting client (RFC 7009): an access token
        alone, a refresh token with its access token (and, on a lifecycle store, its whole grant).
        An unknown token is not an error (200).

        Raises:
            errors.InvalidGrantError: the token was issued to another client; it is left as it is
                (RFC 7009 §2.1: the request is refused). oauthlib lets this escape: answer it.
            StoreUnavailable, StoreFailure: the store failed; the token may still be live.
        """
        hint = _hint(token_type_hint)
        caller = _record(request.client)
        if caller is None:
            return
        found = [record for record, _ in self._find(token, hint, every=True)]
        if not found:
            return
        if any(record.client_id != caller.identifier for record in found):
            raise errors.InvalidGrantError(description="the token was not issued to this client", request=request)
        with _oauthlib_errors():
            self.tokens.revoke_token(token, hint)

    def introspect_token(
        self, token: str, token_type_hint: str | None, request: Request, *args: object, **kwargs: object
    ) -> dict[str, int | str | list[str]] | None:
        """The claims of a live token (RFC 7662 §2.2), or None (``"active": false``).

        Claims: ``scope``, ``client_id``, ``token_type``, ``exp`` and ``iat`` (when known),
        ``sub`` and ``username`` (the user id, when there is one). For a refresh token ``exp``
        is the refresh token's expiry. A client introspects its own tokens only: another
        client's is ``"active": false``, as with Authlib's seam (override for a resource server
        that introspects every client's tokens).

        Raises:
            errors.InvalidClientError: the caller is a public client, which cannot authenticate
                (oauthlib lets this escape: answer it, 401).
            StoreUnavailable, StoreFailure: the store failed.
        """
        caller = _record(request.client)
        if caller is None:
            return None
        if caller.is_public:
            raise errors.InvalidClientError(description="a public client cannot introspect tokens", request=request)
        for record, is_refresh in self._find(token, _hint(token_type_hint), every=False):
            if record.client_id != caller.identifier:
                return None
            expires_at = record.refresh_expires_at if is_refresh else record.expires_at
            claims: dict[str, int | str | list[str]] = {
                "scope": " ".join(record.scopes),
                "client_id": record.client_id,
                "token_type": record.token_type,
            }
            if expires_at is not None:
                claims["exp"] = expires_at
            if record.issued_at is not None:
                claims["iat"] = record.issued_at
            if record.user_id is not None:
                claims["sub"] = claims["username"] = record.user_id
            return claims
        return None

    # -- helpers ------------------------------------------------------------------------------

    def _fetch_client(self, client_id: str | None) -> Client | None:
        if not client_id:
            return None
        try:
            with _oauthlib_errors():
                return self.clients.fetch_by_client_id(client_id)
        except ClientNotFoundError:
            return None

    def _identify(self, client_id: str, request: Request) -> Client | None:
        """The client ``client_id``, from ``request.client`` if it is already there; sets it."""
        known = _record(request.client)
        if known is not None and known.identifier == client_id:
            return known
        client = self._fetch_client(client_id)
        if client is not None:
            request.client = OAuthlibClient(client)
        return client

    def _find(self, token: str, hint: TokenTypeHint | None, *, every: bool) -> Iterator[tuple[AccessToken, bool]]:
        """The records ``token`` names, as (record, is_refresh_token), the hinted kind first."""
        kinds = (True, False) if hint == "refresh_token" else (False, True)
        for is_refresh in kinds:
            try:
                with _oauthlib_errors():
                    record = self.tokens.fetch_by_refresh_token(token) if is_refresh else self.tokens.fetch_by_token(token)
            except AccessTokenNotFound:
                continue
            yield record, is_refresh
            if not every:
                return


def access_token_of(request: Request) -> AccessToken | None:
    """The access token :meth:`StoreRequestValidator.validate_bearer_token` accepted for
    ``request`` (what ``verify_request`` returns with True), typed; None if it accepted none."""
    record = getattr(request, _BEARER, None)
    return record if isinstance(record, AccessToken) else None


def _credentials(request: Request) -> tuple[TokenEndpointAuthMethod, str | None, str | None]:
    """How the request authenticates its client: the method, client id and secret.

    ``("none", None, None)`` when it sends no secret; an unreadable or conflicting set of
    credentials is a secret method with a None part, which never authenticates.
    """
    authorization = request.headers.get("Authorization") or ""
    scheme, _, encoded = str(authorization).strip().partition(" ")
    body_secret = request.client_secret or None
    if scheme.lower() != "basic":
        return ("client_secret_post", request.client_id, body_secret) if body_secret else ("none", None, None)
    try:
        client_id, colon, secret = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return "client_secret_basic", None, None
    client_id, secret = unquote_plus(client_id), unquote_plus(secret)
    if not colon or body_secret is not None or request.client_id not in (None, client_id):
        return "client_secret_basic", None, None  # RFC 6749 §2.3: one method per request
    return "client_secret_basic", client_id, secret


def _bearer_header_token(request: Request) -> str | None:
    """The token of the request's ``Authorization: Bearer`` header (RFC 6750 §2.1), or None."""
    scheme, _, token = str(request.headers.get("Authorization") or "").strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _record(client: object) -> Client | None:
    """Our client record behind oauthlib's ``request.client``, if it is ours."""
    return client.record if isinstance(client, OAuthlibClient) else None


def _stashed(request: Request, kind: type[_Record], secret: str) -> _Record | None:
    """The code or token this request consumed in an earlier hook, if it is ``secret``."""
    record = getattr(request, _STASH, None)
    if not isinstance(record, kind):
        return None
    if isinstance(record, AuthorizationCode):
        return record if record.code == secret else None
    return record if record.refresh_token == secret else None


def _user_id(user: object) -> str | None:
    if user is None or isinstance(user, str):
        return user
    raise RecordTypeError(f"request.user must be the user's identifier (a str) or None, not {type(user).__name__}")


def _hint(token_type_hint: str | None) -> TokenTypeHint | None:
    """RFC 7009's hints; another value is ignored, as RFC 7009 §2.1 allows."""
    if token_type_hint == "access_token":
        return "access_token"
    if token_type_hint == "refresh_token":
        return "refresh_token"
    return None


@contextlib.contextmanager
def _oauthlib_errors() -> Iterator[None]:
    """Our store failures become oauthlib errors with the right status, a revoked grant
    ``invalid_grant``; misses (a replay or reuse included) pass through."""
    try:
        yield
    except (AccessTokenNotFound, AuthCodeNotFound, ClientNotFoundError):
        raise
    except GrantRevokedError:
        raise errors.InvalidGrantError(description="the grant was revoked") from None
    except StoreUnavailableError as error:
        log.warning("token store unavailable: %s", error)
        raise StoreUnavailable() from error
    except StoreError as error:
        log.warning("token store failed: %s", type(error).__name__)
        raise StoreFailure() from error
