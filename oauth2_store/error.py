"""Errors raised by oauth2-store.

Every exception the package raises derives from :class:`StoreError`, so a server can catch the
package's failures in one place. The documented names of python-oauth2's ``oauth2.error``
(``AccessTokenNotFound``, ``AuthCodeNotFound``, ``ClientNotFoundError``) are kept.

Messages never contain a token, refresh token, authorization code or client secret: they end up
in logs.
"""

from __future__ import annotations

__all__ = [
    "AccessTokenNotFound",
    "AuthCodeNotFound",
    "ClientNotFoundError",
    "CodeReplayError",
    "CodecError",
    "GrantRevokedError",
    "NotFoundError",
    "RecordError",
    "RecordTooLargeError",
    "RecordTypeError",
    "RecordValueError",
    "RefreshTokenReuseError",
    "StoreError",
    "StoreUnavailableError",
]


class StoreError(Exception):
    """Base class of every error raised by oauth2-store."""


class NotFoundError(StoreError):
    """A record does not exist in the store, or has expired (an expired record is never returned)."""


class AccessTokenNotFound(NotFoundError):
    """No live access token matches the token, refresh token or user that was asked for."""


class AuthCodeNotFound(NotFoundError):
    """No live authorization code matches the code that was asked for (or it was already used)."""


class CodeReplayError(AuthCodeNotFound):
    """A code that was already consumed was presented again (RFC 6749 §4.1.2): it is refused, and
    the grant issued from it has been revoked. An :class:`AuthCodeNotFound`, so callers that only
    know "not found" refuse it too."""


class RefreshTokenReuseError(AccessTokenNotFound):
    """A refresh token retired by rotation was presented again (RFC 9700 §4.14.2): it is refused,
    and its grant has been revoked, the tokens refreshed from it included. An
    :class:`AccessTokenNotFound`, so callers that only know "not found" refuse it too."""


class GrantRevokedError(StoreError):
    """A record was saved into a grant that has been revoked, or whose state the store cannot
    confirm (its entry was lost to eviction or a restart): nothing of it is usable. A token
    endpoint answers ``invalid_grant``."""


class ClientNotFoundError(NotFoundError):
    """No client is registered under the identifier that was asked for."""


class RecordError(StoreError):
    """A record was built from invalid input; the message names the field that is wrong."""


class RecordTypeError(RecordError, TypeError):
    """A record field was given a value of the wrong type (for example a bare string for scopes)."""


class RecordValueError(RecordError, ValueError):
    """A record field was given a value of the right type that is not allowed (for example "")."""


class CodecError(StoreError, ValueError):
    """Stored bytes could not be decoded into a record.

    Raised for corrupt or truncated payloads, a payload of another record kind, an unknown format
    version, invalid JSON, and fields of the wrong type or missing. The message says what was
    wrong, never what the payload contained.
    """


class RecordTooLargeError(StoreError, ValueError):
    """A record's encoded value is larger than the backend accepts; nothing of it was stored."""


class StoreUnavailableError(StoreError):
    """The backend could not be reached, did not answer in time, or answered with an error.

    This is never turned into a "not found": a caller that sees it knows the store failed.
    ``server`` names the backend (for example ``"127.0.0.1:11211"``) when it is known.
    """

    def __init__(self, message: str, server: str | None = None) -> None:
        super().__init__(message)
        self.server = server
