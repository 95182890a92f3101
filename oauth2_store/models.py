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
  nothing of a client secret or of its hash.

A client secret can be kept as a hash only (:func:`hash_secret`, ``Client(..., secret_hash=...)``,
:meth:`Client.with_hashed_secret`): what a store holds then cannot authenticate anyone.

Times are unix seconds. A record expires *at* ``expires_at``: it is expired when
``now >= expires_at``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import time
from collections.abc import Iterable, Mapping
from typing import Literal
from urllib.parse import urlsplit

import attrs

from oauth2_store import _fields
from oauth2_store.error import RecordTypeError, RecordValueError
from oauth2_store.json_data import EMPTY, FrozenJSON, freeze_data
from oauth2_store.redaction import fingerprint_repr, redacted_repr

__all__ = ["AccessToken", "AuthorizationCode", "Client", "CodeChallengeMethod", "TokenEndpointAuthMethod", "derive_grant_id", "hash_secret"]

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


def _hash_repr(secret_hash: str | None) -> str:
    """``repr`` for a client's ``secret_hash``: nothing of it, only whether there is one."""
    return "None" if secret_hash is None else "<redacted>"


@attrs.frozen(init=False)
class Client:
    """A registered client application.

    Args:
        identifier: The client identifier.
        secret: The client secret; ``""`` for a public client, which cannot authenticate with one,
            and for a client whose secret is kept only as ``secret_hash``.
        redirect_uris: The registered redirect URIs: absolute, without fragment (RFC 6749 §3.1.2).
        authorized_grants: Grant types the client may use; None allows all.
        authorized_response_types: Response types the client may request; None allows all.
        scopes: The scopes the client may be granted (RFC 6749 §3.3 scope tokens); None allows any.
        token_endpoint_auth_method: How the client authenticates at the token endpoint. None
            means ``"none"`` for a public client (no secret and no hash) and
            ``"client_secret_basic"`` otherwise.
        secret_hash: The client secret as :func:`hash_secret` hashed it, with ``secret`` ``""``:
            the record then holds nothing that authenticates, and :meth:`check_secret` verifies
            against the hash. A string is a hash only when passed here: a ``secret`` that looks
            like one is a plaintext secret like any other. Two hashes of one secret differ (each
            has its own salt), so records hashed apart are not equal.

    A hashed client's ``secret`` is ``""``: authenticate with :meth:`check_secret` and tell public
    clients by :attr:`is_public`, never by comparing or testing ``secret``.

    Raises:
        RecordTypeError: a field has the wrong type (for example a bare string for
            ``redirect_uris``).
        RecordValueError: a field has a forbidden value (an empty identifier, a relative redirect
            URI or one with a fragment, an unknown authentication method, ``"none"`` for a client
            with a secret or a secret method for a public client, a ``secret_hash`` that is not
            one :func:`hash_secret` could have made, or both ``secret`` and ``secret_hash``).
    """

    identifier: str
    secret: str = attrs.field(repr=redacted_repr)
    redirect_uris: tuple[str, ...]
    authorized_grants: tuple[str, ...] | None
    authorized_response_types: tuple[str, ...] | None
    scopes: tuple[str, ...] | None
    token_endpoint_auth_method: TokenEndpointAuthMethod
    secret_hash: str | None = attrs.field(repr=_hash_repr)

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
        secret_hash: str | None = None,
    ) -> None:
        if not isinstance(secret, str):
            raise RecordTypeError(f"secret must be a str, not {type(secret).__name__}")
        if secret_hash is not None:
            secret_hash = _secret_hash(secret_hash)
            if secret:
                raise RecordValueError("a client has a secret or a secret_hash, not both (pass secret '' with a secret_hash)")
        self.__attrs_init__(
            _fields.text(identifier, "identifier"),
            _fields.plain_str(secret, "secret"),
            _redirect_uris(redirect_uris),
            _fields.optional_text_tuple(authorized_grants, "authorized_grants"),
            _fields.optional_text_tuple(authorized_response_types, "authorized_response_types"),
            None if scopes is None else _fields.scopes(scopes),
            _auth_method(token_endpoint_auth_method, public=not secret and secret_hash is None),
            secret_hash,
        )

    @property
    def is_public(self) -> bool:
        """Whether the client is public (RFC 6749 §2.1): it has no secret, plain or hashed, and cannot authenticate."""
        return not self.secret and self.secret_hash is None

    def with_hashed_secret(self) -> Client:
        """This client with its secret kept only as a hash (:func:`hash_secret`), ``secret`` ``""``.

        A public client, or one already hashed, is returned as it is. Costs one hash (tens of
        milliseconds, see :data:`SCRYPT_N`).
        """
        if not self.secret:
            return self
        return attrs.evolve(self, secret="", secret_hash=hash_secret(self.secret))

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

        Against a ``secret_hash``, ``secret`` is hashed with the hash's salt and parameters and
        the results compared (one scrypt: tens of milliseconds). Always False for a public client
        and for an empty ``secret``, so an empty password never authenticates.
        """
        if self.secret_hash is not None:
            return bool(secret) and _verify_secret(self.secret_hash, secret)
        if not self.secret:
            return False
        return hmac.compare_digest(secret.encode("utf-8", "surrogatepass"), self.secret.encode("utf-8"))


# Client secrets are hashed with scrypt (memory-hard, in the standard library). They may be chosen by
# people, so a fast hash would let a stolen store be searched for them; but the token endpoint
# verifies the secret on every request, so the cost must stay well under a request's budget.
# n=2**14, r=8, p=1 is scrypt's "interactive" setting (Percival, 2009): 16 MiB and about 30 ms of
# one core per verification (measured on CPython 3.11). Stronger settings (OWASP's n=2**17) would
# cost 8 times that on every token request; weaker ones make a stolen hash cheap to guess at.
SCRYPT_N = 2**14
"""scrypt's CPU/memory cost of the hashes :func:`hash_secret` makes."""
SCRYPT_R = 8
"""scrypt's block size of the hashes :func:`hash_secret` makes."""
SCRYPT_P = 1
"""scrypt's parallelism of the hashes :func:`hash_secret` makes."""

_SALT_SIZE = 16
_HASH_SIZE = 32
# A hash read from a shared store names its own parameters: they are bounded, so that one written
# there by someone else cannot make each verification take seconds or gigabytes. The lower bound
# refuses parameters too weak to slow guessing down.
_MIN_N, _MAX_N = 2**10, 2**20
_MAX_MEMORY = 64 * 1024 * 1024  # scrypt needs 128 * n * r bytes
_MAX_WORK = 2**20  # n * r * p: 8 times the default
_SECRET_HASH = re.compile(r"scrypt\$([1-9][0-9]{0,7})\$([1-9][0-9]?)\$([1-9][0-9]?)\$([A-Za-z0-9_-]{22,86})\$([A-Za-z0-9_-]{43})")


def hash_secret(secret: str) -> str:
    """Hash a client secret for a :class:`Client`'s ``secret_hash``: a self-describing string
    ``scrypt$<n>$<r>$<p>$<salt>$<hash>`` (salt and hash unpadded URL-safe base64), with a new
    random 16-byte salt and :data:`SCRYPT_N`, :data:`SCRYPT_R`, :data:`SCRYPT_P`.

    Raises:
        RecordTypeError: ``secret`` is not a str.
        RecordValueError: ``secret`` is empty (a public client has nothing to hash) or not valid
            Unicode.
    """
    checked = _fields.text(secret, "secret")
    salt = os.urandom(_SALT_SIZE)
    digest = _scrypt(checked.encode("utf-8"), salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def _secret_hash(value: object) -> str:
    """Check a ``secret_hash``: a string :func:`hash_secret` could have made, within the bounds.

    Raises:
        RecordTypeError: not a str.
        RecordValueError: not of the form, parameters out of bounds, or base64 not canonical.
    """
    if not isinstance(value, str):
        raise RecordTypeError(f"secret_hash must be a str, not {type(value).__name__}")
    _parse_secret_hash(value)
    return str.__str__(value)


def _parse_secret_hash(value: str) -> tuple[int, int, int, bytes, bytes]:
    match = _SECRET_HASH.fullmatch(value)
    if match is None:
        raise RecordValueError("secret_hash must be of the form scrypt$<n>$<r>$<p>$<salt>$<hash>")
    n, r, p = int(match[1]), int(match[2]), int(match[3])
    if not (_MIN_N <= n <= _MAX_N and n & (n - 1) == 0) or 128 * n * r > _MAX_MEMORY or n * r * p > _MAX_WORK:
        raise RecordValueError("secret_hash has scrypt parameters out of bounds")
    salt, digest = _unb64(match[4]), _unb64(match[5])
    if salt is None or digest is None or len(salt) < _SALT_SIZE or len(digest) != _HASH_SIZE:
        raise RecordValueError("secret_hash has an invalid salt or hash")
    return n, r, p, salt, digest


def _verify_secret(secret_hash: str, secret: str) -> bool:
    """Whether ``secret`` hashes to ``secret_hash`` (already checked by the record), in constant time."""
    n, r, p, salt, expected = _parse_secret_hash(secret_hash)
    # A candidate with a lone surrogate is hashed too (surrogatepass): it never matches, since no
    # stored secret has one, and it takes as long as any other.
    return hmac.compare_digest(_scrypt(secret.encode("utf-8", "surrogatepass"), salt, n, r, p), expected)


def _scrypt(secret: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, maxmem=_MAX_MEMORY + 1024 * 1024, dklen=_HASH_SIZE)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes | None:
    """Decode unpadded URL-safe base64; None unless ``text`` is the canonical encoding of some bytes."""
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:  # binascii.Error: a length no encoding has
        return None
    return data if _b64(data) == text else None


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
