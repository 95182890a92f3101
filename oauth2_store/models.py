"""The records a provider stores: :class:`AccessToken`, :class:`AuthorizationCode`, :class:`Client`.

They keep the positional signatures of python-oauth2's ``oauth2.AccessToken``,
``oauth2.AuthorizationCode`` and ``oauth2.Client`` (v0.4.0), with the later fields as keyword-only
arguments. Unlike those classes they are frozen and validated:

- assigning a field raises ``attrs.exceptions.FrozenInstanceError``; change a record with
  ``attrs.evolve(record, field=value)``, which builds and validates a new one;
- lists become tuples and ``data`` becomes a read-only :class:`~oauth2_store.json_data.FrozenJSON`,
  copied from what the caller passed;
- wrong input raises :class:`~oauth2_store.error.RecordTypeError` (a ``TypeError``) or
  :class:`~oauth2_store.error.RecordValueError` (a ``ValueError``) naming the field;
- equality and hashing are by value, and ``repr`` shows only fingerprints of tokens and codes and
  nothing of a client secret.

Times are unix seconds. A record expires *at* ``expires_at``: it is expired when
``now >= expires_at``.
"""

from __future__ import annotations

import hmac
import hashlib
import base64
import time
from collections.abc import Iterable, Mapping
from typing import Literal
from urllib.parse import urlsplit

import attrs

from oauth2_store import _fields
from oauth2_store.error import RecordTypeError, RecordValueError
from oauth2_store.json_data import EMPTY, FrozenJSON, freeze_data
from oauth2_store.redaction import fingerprint_repr, redacted_repr

__all__ = ["AccessToken", "AuthorizationCode", "Client", "CodeChallengeMethod", "TokenEndpointAuthMethod", "derive_grant_id"]

CodeChallengeMethod = Literal["plain", "S256"]
"""The PKCE transformations of RFC 7636 §4.2."""

TokenEndpointAuthMethod = Literal["client_secret_basic", "client_secret_post", "none"]
"""How a client authenticates at the token endpoint (RFC 7591 §2): HTTP Basic with its secret,
its secret in the form body, or not at all (a public client)."""

_AUTH_METHODS: tuple[TokenEndpointAuthMethod, ...] = ("client_secret_basic", "client_secret_post", "none")


@attrs.frozen(init=False)
class AccessToken:
    """An access token, its optional refresh token and associated data.

    Args:
        client_id: Identifier of the client the token was issued to.
        grant_type: The grant that issued it (``"authorization_code"``, ``"password"``, ...).
        token: The access token itself (a secret).
        data: JSON-compatible data stored with the token (copied and frozen).
        expires_at: Unix time at which the token expires, or None if it never does.
        refresh_token: The refresh token issued with it (a secret), if any.
        scopes: The granted scopes (RFC 6749 §3.3 scope tokens).
        refresh_expires_at: Unix time at which the refresh token expires; None means never.
            Only allowed together with ``refresh_token``.
        user_id: Identifier of the user the token was issued for, if any.
        issued_at: Unix time at which the token was issued (introspection's ``iat``), or None when
            unknown (tokens stored by releases before format version 2).
        token_type: The token type of RFC 6749 §7.1, as the token response named it.
        grant_id: The grant (one authorization) the token belongs to: pass the code's
            ``grant_id`` for a token issued from a code, and the old token's for a refreshed one,
            so that revoking the grant ends them all. None derives it from the refresh token
            (or, without one, the token): a token issued on its own starts its own grant.

    Raises:
        RecordTypeError: a field has the wrong type (for example ``scopes="read"`` or a float
            ``expires_at``).
        RecordValueError: a field has a forbidden value (an empty token, a negative time, data JSON
            cannot carry, ``refresh_expires_at`` without ``refresh_token``).
    """

    client_id: str
    grant_type: str
    token: str = attrs.field(repr=fingerprint_repr)
    data: FrozenJSON
    expires_at: int | None
    refresh_token: str | None = attrs.field(repr=fingerprint_repr)
    scopes: tuple[str, ...]
    refresh_expires_at: int | None
    user_id: str | None
    issued_at: int | None
    token_type: str
    grant_id: str

    def __init__(
        self,
        client_id: str,
        grant_type: str,
        token: str,
        data: Mapping[str, object] | None = EMPTY,
        expires_at: int | None = None,
        refresh_token: str | None = None,
        scopes: Iterable[str] = (),
        *,
        refresh_expires_at: int | None = None,
        user_id: str | None = None,
        issued_at: int | None = None,
        token_type: str = "Bearer",
        grant_id: str | None = None,
    ) -> None:
        token = _fields.text(token, "token")
        refresh_token = _fields.optional_text(refresh_token, "refresh_token")
        refresh_expires_at = _fields.optional_timestamp(refresh_expires_at, "refresh_expires_at")
        if refresh_expires_at is not None and refresh_token is None:
            raise RecordValueError("refresh_expires_at is set but there is no refresh_token")
        self.__attrs_init__(
            _fields.text(client_id, "client_id"),
            _fields.text(grant_type, "grant_type"),
            token,
            freeze_data(data),
            _fields.optional_timestamp(expires_at, "expires_at"),
            refresh_token,
            _fields.scopes(scopes),
            refresh_expires_at,
            _fields.optional_text(user_id, "user_id"),
            _fields.optional_timestamp(issued_at, "issued_at"),
            "Bearer" if token_type == "Bearer" else _fields.text(token_type, "token_type"),
            (derive_grant_id("token", token) if refresh_token is None else derive_grant_id("refresh_token", refresh_token)) if grant_id is None else _fields.grant_id(grant_id),
        )

    def is_expired(self, now: float | None = None) -> bool:
        """Whether the access token has expired at ``now`` (unix seconds; default: the clock).

        A token without ``expires_at`` never expires.
        """
        if self.expires_at is None:
            return False
        return (time.time() if now is None else now) >= self.expires_at

    def is_refresh_expired(self, now: float | None = None) -> bool:
        """Whether the refresh token can no longer be used at ``now`` (default: the clock).

        True when there is no refresh token; False while ``refresh_expires_at`` is None or later
        than ``now``. The refresh token outlives the access token: this ignores ``expires_at``.
        """
        if self.refresh_token is None:
            return True
        if self.refresh_expires_at is None:
            return False
        return (time.time() if now is None else now) >= self.refresh_expires_at

    @property
    def expires_in(self) -> int | None:
        """Whole seconds until the access token expires, never negative (0 once expired).

        None for a token that never expires (python-oauth2 raised ``TypeError`` there).
        """
        if self.expires_at is None:
            return None
        return max(0, self.expires_at - int(time.time()))


@attrs.frozen(init=False)
class AuthorizationCode:
    """An authorization code (RFC 6749 §4.1) and what the token request must match.

    Args:
        client_id: Identifier of the client the code was issued to.
        code: The authorization code itself (a secret).
        expires_at: Unix time at which the code expires (RFC 6749 recommends 10 minutes at most).
        redirect_uri: The redirect URI of the authorization request, or None if the request named
            none (then the token request must not name one either, RFC 6749 §4.1.3).
        scopes: The granted scopes (RFC 6749 §3.3 scope tokens).
        data: JSON-compatible data stored with the code (copied and frozen); None means empty.
        user_id: Identifier of the user who authorized the client, if any.
        code_challenge: The PKCE code challenge (RFC 7636), if the client sent one.
        code_challenge_method: ``"plain"`` or ``"S256"``; None with a challenge means ``"plain"``
            (RFC 7636 §4.3). Not allowed without ``code_challenge``.
        grant_id: The grant the code starts, which every token issued from it joins. None
            derives it from the code.

    Raises:
        RecordTypeError: a field has the wrong type.
        RecordValueError: a field has a forbidden value (an empty code, a malformed PKCE
            challenge, an unknown challenge method, a method without a challenge).
    """

    client_id: str
    code: str = attrs.field(repr=fingerprint_repr)
    expires_at: int
    redirect_uri: str | None
    scopes: tuple[str, ...]
    data: FrozenJSON
    user_id: str | None
    code_challenge: str | None = attrs.field(repr=fingerprint_repr)  # with "plain" it is the verifier
    code_challenge_method: CodeChallengeMethod | None
    grant_id: str

    def __init__(
        self,
        client_id: str,
        code: str,
        expires_at: int,
        redirect_uri: str | None,
        scopes: Iterable[str],
        data: Mapping[str, object] | None = None,
        *,
        user_id: str | None = None,
        code_challenge: str | None = None,
        code_challenge_method: CodeChallengeMethod | None = None,
        grant_id: str | None = None,
    ) -> None:
        code = _fields.text(code, "code")
        code_challenge = _fields.optional_text(code_challenge, "code_challenge")
        code_challenge = _fields.code_challenge(code_challenge)
        if code_challenge_method is not None:
            if code_challenge_method not in ("plain", "S256"):
                raise RecordValueError('code_challenge_method must be "plain" or "S256"')
            code_challenge_method = "S256" if code_challenge_method == "S256" else "plain"  # a plain str, not a str subclass
            if code_challenge is None:
                raise RecordValueError("code_challenge_method is set but there is no code_challenge")
        self.__attrs_init__(
            _fields.text(client_id, "client_id"),
            code,
            _fields.timestamp(expires_at, "expires_at"),
            _fields.optional_text(redirect_uri, "redirect_uri"),
            _fields.scopes(scopes),
            freeze_data(data),
            _fields.optional_text(user_id, "user_id"),
            code_challenge,
            code_challenge_method,
            derive_grant_id("code", code) if grant_id is None else _fields.grant_id(grant_id),
        )

    def is_expired(self, now: float | None = None) -> bool:
        """Whether the code has expired at ``now`` (unix seconds; default: the clock)."""
        return (time.time() if now is None else now) >= self.expires_at

    def verify_code_verifier(self, code_verifier: str) -> bool:
        """Check a PKCE ``code_verifier`` against the stored challenge (RFC 7636 §4.6).

        Returns False when the code has no challenge, the verifier is malformed, or it does not
        match. The comparison is constant-time.
        """
        if self.code_challenge is None or _fields.PKCE_VALUE.fullmatch(code_verifier) is None:
            return False
        if self.code_challenge_method == "S256":
            digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
            expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
        else:
            expected = code_verifier
        return hmac.compare_digest(expected.encode("ascii"), self.code_challenge.encode("ascii"))


def derive_grant_id(kind: Literal["code", "refresh_token", "token"], secret: str) -> str:
    """The grant id a record gets when none is given: ``g-`` and 32 hex digits of a SHA-256 of
    ``kind`` and ``secret`` (the code, refresh token or token), so equal records get equal ids, a
    code and a token with the same string get different ones, and the id reveals nothing usable
    of the secret."""
    digest = hashlib.sha256(f"oauth2-store grant\x00{kind}\x00".encode() + secret.encode("utf-8", "surrogatepass")).hexdigest()
    return f"g-{digest[:32]}"


def _redirect_uris(value: object) -> tuple[str, ...]:
    uris = _fields.text_tuple(value, "redirect_uris")
    for index, uri in enumerate(uris):
        if any(char.isspace() or not char.isprintable() for char in uri):
            raise RecordValueError(f"redirect_uris[{index}] must not contain spaces or control characters")
        try:
            parts = urlsplit(uri)
        except ValueError:
            raise RecordValueError(f"redirect_uris[{index}] is not a valid URI") from None
        if not parts.scheme:
            raise RecordValueError(f"redirect_uris[{index}] must be an absolute URI (RFC 6749 §3.1.2)")
        if parts.fragment or uri.endswith("#"):
            raise RecordValueError(f"redirect_uris[{index}] must not have a fragment (RFC 6749 §3.1.2)")
    return uris


@attrs.frozen(init=False)
class Client:
    """A registered client application.

    Args:
        identifier: The client identifier.
        secret: The client secret; ``""`` for a public client, which cannot authenticate with one.
        redirect_uris: The registered redirect URIs: absolute, without fragment (RFC 6749 §3.1.2).
        authorized_grants: Grant types the client may use; None allows all.
        authorized_response_types: Response types the client may request; None allows all.
        scopes: The scopes the client may be granted (RFC 6749 §3.3 scope tokens); None allows any.
        token_endpoint_auth_method: How the client authenticates at the token endpoint. None
            means ``"none"`` for a public client (empty secret) and ``"client_secret_basic"``
            otherwise.

    Raises:
        RecordTypeError: a field has the wrong type (for example a bare string for
            ``redirect_uris``).
        RecordValueError: a field has a forbidden value (an empty identifier, a relative redirect
            URI or one with a fragment, an unknown authentication method, ``"none"`` for a client
            with a secret or a secret method for a public client).
    """

    identifier: str
    secret: str = attrs.field(repr=redacted_repr)
    redirect_uris: tuple[str, ...]
    authorized_grants: tuple[str, ...] | None
    authorized_response_types: tuple[str, ...] | None
    scopes: tuple[str, ...] | None
    token_endpoint_auth_method: TokenEndpointAuthMethod

    def __init__(
        self,
        identifier: str,
        secret: str,
        redirect_uris: Iterable[str] = (),
        *,
        authorized_grants: Iterable[str] | None = None,
        authorized_response_types: Iterable[str] | None = None,
        scopes: Iterable[str] | None = None,
        token_endpoint_auth_method: TokenEndpointAuthMethod | None = None,
    ) -> None:
        if not isinstance(secret, str):
            raise RecordTypeError(f"secret must be a str, not {type(secret).__name__}")
        self.__attrs_init__(
            _fields.text(identifier, "identifier"),
            _fields.plain_str(secret, "secret"),
            _redirect_uris(redirect_uris),
            _fields.optional_text_tuple(authorized_grants, "authorized_grants"),
            _fields.optional_text_tuple(authorized_response_types, "authorized_response_types"),
            None if scopes is None else _fields.scopes(scopes),
            _auth_method(token_endpoint_auth_method, public=not secret),
        )

    @property
    def is_public(self) -> bool:
        """Whether the client is public (RFC 6749 §2.1): it has no secret and cannot authenticate."""
        return not self.secret

    def allows_scopes(self, scopes: Iterable[str]) -> bool:
        """Whether the client may be granted every scope of ``scopes`` (always, when ``self.scopes`` is None)."""
        return self.scopes is None or all(scope in self.scopes for scope in scopes)

    def grant_type_supported(self, grant_type: str) -> bool:
        """Whether the client may obtain tokens through ``grant_type``."""
        return self.authorized_grants is None or grant_type in self.authorized_grants

    def response_type_supported(self, response_type: str) -> bool:
        """Whether the client may request ``response_type`` at the authorization endpoint."""
        return self.authorized_response_types is None or response_type in self.authorized_response_types

    def has_redirect_uri(self, uri: str) -> bool:
        """Whether ``uri`` is registered, compared as exact strings (RFC 6749 §3.1.2.3).

        No prefix, pattern or normalised matching: ``https://a.example/cb/`` does not match
        ``https://a.example/cb``.
        """
        return uri in self.redirect_uris

    @property
    def default_redirect_uri(self) -> str | None:
        """The redirect URI to use when a request names none: the only registered one, if exactly one.

        With several registered URIs, RFC 6749 §3.1.2.3 requires the request to name one, so
        this is None.
        """
        return self.redirect_uris[0] if len(self.redirect_uris) == 1 else None

    def check_secret(self, secret: str) -> bool:
        """Whether ``secret`` is the client's secret, compared in constant time.

        Always False for a public client (empty secret), so an empty password never
        authenticates.
        """
        if not self.secret:
            return False
        return hmac.compare_digest(secret.encode("utf-8", "surrogatepass"), self.secret.encode("utf-8"))


def _auth_method(value: object, public: bool) -> TokenEndpointAuthMethod:
    if value is None:
        return "none" if public else "client_secret_basic"
    for method in _AUTH_METHODS:  # the literal itself, never a str subclass the caller passed
        if value == method and isinstance(value, str):
            if public != (method == "none"):
                raise RecordValueError(
                    "token_endpoint_auth_method must be 'none' for a public client (empty secret), and not 'none' for a client with a secret"
                )
            return method
    if not isinstance(value, str):
        raise RecordTypeError(f"token_endpoint_auth_method must be a str, not {type(value).__name__}")
    raise RecordValueError("token_endpoint_auth_method must be 'client_secret_basic', 'client_secret_post' or 'none'")


def require_record(value: object, expected: type, operation: str) -> None:
    """Check that a store was handed one of our records, before anything deep inside it fails.

    Stores call it where ``type(value) is expected`` is false (the common case costs one
    comparison in the store itself).

    Raises:
        RecordTypeError: ``value`` is not an ``expected`` (for example python-oauth2's own
            ``oauth2.datatype.AccessToken``: convert it with
            :mod:`oauth2_store.integrations.python_oauth2`).
    """
    if not isinstance(value, expected):
        kind = type(value)
        raise RecordTypeError(f"{operation} takes an oauth2_store.{expected.__name__}, not {kind.__module__}.{kind.__qualname__}")
