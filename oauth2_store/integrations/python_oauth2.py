"""python-oauth2 (1.1.x) on oauth2-store's stores: the one seam between the two libraries.

Migrating a python-oauth2 server is a change of imports::

    # from oauth2.store.memory import ClientStore, TokenStore
    from oauth2_store.integrations.python_oauth2 import ClientStore, TokenStore

    token_store = TokenStore()                                  # in memory, one process
    token_store = TokenStore(MemcacheTokenStore(servers=[...]))  # shared by every process

:class:`TokenStore` and :class:`ClientStore` take and return python-oauth2's own records
(``oauth2.datatype``) and raise its own ``oauth2.error`` classes for misses, so its ``Provider``
and grants work unchanged. Records are converted to ours here, and only here; conversions that
cannot be exact are these:

- an integer ``user_id`` (python-oauth2's examples use ``1``) is stored as its decimal string and
  comes back as that string; any other type than str, int or None is a
  :class:`~oauth2_store.error.RecordTypeError` naming ``user_id``;
- ``data`` must be JSON-compatible: anything else (a ``datetime``, a set) is a
  :class:`~oauth2_store.error.RecordTypeError` naming the field, e.g. ``data['when']``;
- python-oauth2 reads a ``refresh_expires_at`` of 0 as "never expires"; it is stored as None and
  handed back as 0;
- lists come back as new lists: records read from the store are fresh objects, never shared
  between requests (python-oauth2 assigns ``client.redirect_uri`` on the client it fetched).

What this adds to python-oauth2's own stores:

- **Codes are redeemed once.** python-oauth2's authorization-code grant reads the code
  (``fetch_by_code``), issues the token, then deletes the code: two concurrent requests with one
  code both got tokens. Here ``fetch_by_code`` *consumes* the code atomically
  (:meth:`~oauth2_store.protocols.ExtendedAuthCodeStoreProtocol.consume_code`), so of any number
  of callers, in any number of processes sharing the store, exactly one gets it. A code read once
  is gone, even if the token request then fails.
- **Grants are families.** Every token issued from a code carries the code's ``grant_id``, and
  every token issued by a refresh the old token's, so that the store can end them together. On a
  :class:`~oauth2_store.protocols.LifecycleTokenStoreProtocol` store (``LocalTokenStore``,
  ``MemcacheTokenStore``):

  - a code presented again (a replay, RFC 6749 §4.1.2; a concurrent loser included) is answered
    ``invalid_grant``, and the grant is revoked: the token issued from the code and every token
    refreshed from it stop working;
  - a refresh token retired by rotation and presented again (RFC 9700 §4.14.2) is answered
    ``invalid_grant``, and the grant is revoked, the newest tokens included;
  - a token saved into a revoked grant (the replay came first) is ``invalid_grant``, not issued.

  On a store without the lifecycle, a replayed code is a miss (``invalid_request``) and revokes
  nothing.

  python-oauth2's grants build the new ``oauth2.datatype.AccessToken`` from the fields of the
  code or old token they read, and hand on its ``data`` dict itself (``data=self.data``), never
  the record. So the grant travels in ``data``: records read from the store carry a ``dict``
  subclass (:class:`GrantData`) whose ``grant_id`` attribute :class:`TokenStore` reads when it
  saves a token. Plain dicts (a site adapter's ``data``) start a grant of their own; a copy
  (``dict(token.data)``) does too, so pass the dict on to keep a token in its grant.
- **The lifecycle's refusals are python-oauth2 errors** answered ``invalid_grant``
  (:class:`InvalidGrant`, an ``oauth2.error.OAuthInvalidError``). It is deliberately *not* an
  ``AuthCodeNotFound`` or ``AccessTokenNotFound``: python-oauth2's grants catch those and answer
  ``invalid_request``.
- **A refresh token already used** (``delete_refresh_token`` finds it gone) is an
  ``invalid_grant`` answer instead of an uncaught error.
- **Client secrets are compared in constant time**, through
  :meth:`~oauth2_store.Client.check_secret`: a client whose secret is kept hashed authenticates
  as any other, and an empty secret (a public client) never authenticates.
- Store failures (:class:`~oauth2_store.error.StoreUnavailableError`) propagate: python-oauth2's
  ``Provider`` answers them with its ``server_error`` response, never with "not found".
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Protocol

from oauth2_store.error import (
    AccessTokenNotFound,
    AuthCodeNotFound,
    ClientNotFoundError,
    CodeReplayError,
    GrantRevokedError,
    RecordError,
    RecordTypeError,
    RefreshTokenReuseError,
)
from oauth2_store.json_data import thaw
from oauth2_store.models import AccessToken, AuthorizationCode, Client, TokenEndpointAuthMethod
from oauth2_store.protocols import ClientStoreProtocol, TokenStoreProtocol
from oauth2_store.store.memory import LocalClientStore, LocalTokenStore

try:
    import oauth2.error
    import oauth2.store
    from oauth2 import datatype
except ImportError as missing:  # pragma: no cover - depends on the environment
    raise ImportError("python-oauth2 is not installed: pip install 'oauth2-store[python-oauth2]'") from missing

__all__ = ["ClientStore", "GrantData", "InvalidGrant", "RefreshTokenAlreadyUsed", "TokenStore"]


class RefreshTokenAlreadyUsed(oauth2.error.AccessTokenNotFound, oauth2.error.OAuthInvalidError):
    """A refresh token was revoked between python-oauth2 reading it and replacing it.

    Both python-oauth2's ``AccessTokenNotFound`` (what ``delete_refresh_token`` documents) and an
    ``OAuthInvalidError`` with error ``invalid_grant``, so the ``Provider`` answers the client
    with that error instead of ``server_error``.
    """

    def __init__(self) -> None:
        oauth2.error.OAuthInvalidError.__init__(self, error="invalid_grant", explanation="Invalid refresh token")


class InvalidGrant(oauth2.error.OAuthInvalidError):
    """The store refused the grant: a code replayed, a rotated refresh token presented again, or a
    token saved into a grant that was revoked meanwhile (see the module docstring).

    An ``OAuthInvalidError`` with error ``invalid_grant``, which python-oauth2's ``Provider``
    answers as such wherever a grant raises it. Not a not-found error: python-oauth2's grants
    would answer that ``invalid_request``.
    """

    def __init__(self, explanation: str) -> None:
        super().__init__(error="invalid_grant", explanation=explanation)


class GrantData(dict[str, object]):
    """The ``data`` of a python-oauth2 record read from the store: a plain ``dict`` of it that also
    knows the grant the record belongs to (``grant_id``).

    python-oauth2's grants hand this very object on to the token they issue from a code or a
    refresh, so :class:`TokenStore` saves that token into the same grant. Build one yourself to
    issue a token into an existing grant; any other mapping starts a new grant.

    Args:
        data: The items (copied, as ``dict(data)`` does).
        grant_id: The grant's id (``AccessToken.grant_id``, ``AuthorizationCode.grant_id``).
    """

    __slots__ = ("grant_id",)

    def __init__(self, data: Mapping[str, object], grant_id: str) -> None:
        super().__init__(data)
        self.grant_id = grant_id


class TokenStore(oauth2.store.AccessTokenStore, oauth2.store.AuthCodeStore):
    """python-oauth2's access-token and auth-code store, over any oauth2-store token store.

    Args:
        store: The token store that keeps the records (any
            :class:`~oauth2_store.protocols.TokenStoreProtocol`; a
            :class:`~oauth2_store.protocols.LifecycleTokenStoreProtocol` one revokes a grant on
            code replay and refresh-token reuse); None makes a new
            :class:`~oauth2_store.store.LocalTokenStore`.

    Every method may also raise :class:`~oauth2_store.error.StoreUnavailableError` (the store
    failed) and :class:`~oauth2_store.error.CodecError` (it held a corrupt record).
    """

    def __init__(self, store: TokenStoreProtocol | None = None) -> None:
        self.store: TokenStoreProtocol = LocalTokenStore() if store is None else store

    def save_token(self, access_token: datatype.AccessToken) -> bool:
        """Store python-oauth2's ``access_token``; return True, as python-oauth2's stores do.

        The token joins the grant its ``data`` names (a :class:`GrantData`), else starts its own.

        Raises:
            RecordTypeError: not a python-oauth2 ``AccessToken``, or a field oauth2-store cannot
                keep (see the module docstring).
            RecordValueError: a field with a forbidden value (an empty token, a negative time).
            InvalidGrant: its grant was revoked (a replay or reuse came first); nothing is stored.
        """
        record = to_access_token(access_token)
        with _python_oauth2_errors():
            self.store.save_token(record)
        return True

    def fetch_by_token(self, token: str) -> datatype.AccessToken:
        """Return the live access token ``token``.

        Raises:
            oauth2.error.AccessTokenNotFound: no such token, it was revoked, or it expired.
        """
        with _python_oauth2_errors():
            return from_access_token(self.store.fetch_by_token(token))

    def fetch_by_refresh_token(self, refresh_token: str) -> datatype.AccessToken:
        """Return the access token issued with ``refresh_token`` (its ``data`` a :class:`GrantData`).

        Raises:
            InvalidGrant: ``refresh_token`` was retired by rotation; its grant is now revoked.
            oauth2.error.AccessTokenNotFound: no such refresh token, it was revoked, or it expired.
        """
        with _python_oauth2_errors():
            return from_access_token(self.store.fetch_by_refresh_token(refresh_token))

    def fetch_existing_token_of_user(self, client_id: str, grant_type: str, user_id: object) -> datatype.AccessToken:
        """Return the live token last saved for this client, grant and user (``unique_token``).

        Raises:
            oauth2.error.AccessTokenNotFound: none is live.
            RecordTypeError: ``user_id`` is not a str, an int or None.
        """
        with _python_oauth2_errors():
            return from_access_token(self.store.fetch_existing_token_of_user(client_id, grant_type, _user_id(user_id)))

    def delete_refresh_token(self, refresh_token: str) -> None:
        """Retire ``refresh_token`` and revoke the access token issued with it (rotation).

        Raises:
            RefreshTokenAlreadyUsed: no such refresh token (already used or revoked, or expired;
                one already retired revokes its grant too); an ``oauth2.error.AccessTokenNotFound``
                that python-oauth2 answers ``invalid_grant``.
        """
        try:
            self.store.delete_refresh_token(refresh_token)
        except AccessTokenNotFound:
            raise RefreshTokenAlreadyUsed() from None

    def save_code(self, authorization_code: datatype.AuthorizationCode) -> bool:
        """Store python-oauth2's ``authorization_code`` until it expires; return True.

        Raises:
            RecordTypeError: not a python-oauth2 ``AuthorizationCode``, or a field oauth2-store
                cannot keep.
            RecordValueError: a field with a forbidden value.
            InvalidGrant: the code's grant was revoked; nothing is stored.
        """
        record = to_authorization_code(authorization_code)
        with _python_oauth2_errors():
            self.store.save_code(record)
        return True

    def fetch_by_code(self, code: str) -> datatype.AuthorizationCode:
        """Redeem ``code``: return it and remove it, atomically. Exactly one caller ever gets a code.

        Its ``data`` is a :class:`GrantData`, which python-oauth2 hands on to the token it issues.

        Raises:
            InvalidGrant: ``code`` was already redeemed (a replay); its grant is now revoked.
            oauth2.error.AuthCodeNotFound: no such code, it was deleted, or it expired.
        """
        with _python_oauth2_errors():
            return from_authorization_code(self.store.consume_code(code))

    def delete_code(self, code: str) -> None:
        """Delete ``code`` (after :meth:`fetch_by_code` it is already gone); a missing code is fine."""
        self.store.delete_code(code)


class ClientRegistry(ClientStoreProtocol, Protocol):
    """A client store that registers clients too: :class:`~oauth2_store.store.LocalClientStore`,
    :class:`~oauth2_store.store.redis.RedisClientStore`."""

    def add_client(
        self,
        client_id: str,
        client_secret: str,
        redirect_uris: Iterable[str],
        *,
        authorized_grants: Iterable[str] | None = None,
        authorized_response_types: Iterable[str] | None = None,
        scopes: Iterable[str] | None = None,
        token_endpoint_auth_method: TokenEndpointAuthMethod | None = None,
    ) -> Client:
        """Register a client (replacing one with the same identifier) and return its record.

        Raises:
            RecordTypeError, RecordValueError: as :class:`~oauth2_store.Client` does.
            StoreUnavailableError: the backend failed.
        """
        ...


class ClientStore(oauth2.store.ClientStore):
    """python-oauth2's client store, over an oauth2-store client store.

    Args:
        store: The client store that keeps the clients (:class:`ClientRegistry`); None makes a
            new :class:`~oauth2_store.store.LocalClientStore`.
    """

    def __init__(self, store: ClientRegistry | None = None) -> None:
        self.store: ClientRegistry = LocalClientStore() if store is None else store

    def add_client(
        self,
        client_id: str,
        client_secret: str,
        redirect_uris: Iterable[str],
        authorized_grants: Iterable[str] | None = None,
        authorized_response_types: Iterable[str] | None = None,
    ) -> bool:
        """Register a client (replacing one with the same identifier); return True.

        ``client_secret`` ``""`` makes a public client, which can never authenticate with a secret.

        Raises:
            RecordTypeError, RecordValueError: as :class:`~oauth2_store.Client` does (for example a
                relative redirect URI, or a bare string for ``redirect_uris``).
        """
        self.store.add_client(
            client_id,
            client_secret,
            redirect_uris,
            authorized_grants=authorized_grants,
            authorized_response_types=authorized_response_types,
        )
        return True

    def fetch_by_client_id(self, client_id: str) -> datatype.Client:
        """Return a new python-oauth2 ``Client`` for ``client_id`` (a fresh object every call).

        Raises:
            oauth2.error.ClientNotFoundError: no client has that identifier.
        """
        with _python_oauth2_errors():
            client = self.store.fetch_by_client_id(client_id)
        return datatype.Client(
            identifier=client.identifier,
            secret=_ClientSecret.of(client),
            authorized_grants=_optional_list(client.authorized_grants),
            authorized_response_types=_optional_list(client.authorized_response_types),
            redirect_uris=list(client.redirect_uris),
        )


def to_access_token(access_token: datatype.AccessToken) -> AccessToken:
    """Convert python-oauth2's ``AccessToken`` into an oauth2-store record, in the grant its
    ``data`` names if that is a :class:`GrantData` (else a grant of its own).

    Raises:
        RecordTypeError: not a python-oauth2 ``AccessToken``, or a field of the wrong type.
        RecordValueError: a field with a forbidden value.
    """
    _require(access_token, datatype.AccessToken)
    refresh_token = access_token.refresh_token
    refresh_expires_at = access_token.refresh_expires_at if refresh_token is not None else None
    return AccessToken(
        access_token.client_id,
        access_token.grant_type,
        access_token.token,
        access_token.data,
        access_token.expires_at,
        refresh_token,
        access_token.scopes,
        # python-oauth2's refresh grant reads 0 as "never expires" (and a None as an error).
        refresh_expires_at=None if refresh_expires_at == 0 else refresh_expires_at,
        user_id=_user_id(access_token.user_id),
        grant_id=_grant_id(access_token.data),
    )


def from_access_token(access_token: AccessToken) -> datatype.AccessToken:
    """Convert an oauth2-store record into a new python-oauth2 ``AccessToken`` (``data`` a :class:`GrantData`)."""
    refresh_expires_at = access_token.refresh_expires_at
    if access_token.refresh_token is not None and refresh_expires_at is None:
        refresh_expires_at = 0
    return _AccessToken(
        client_id=access_token.client_id,
        grant_type=access_token.grant_type,
        token=access_token.token,
        data=GrantData(thaw(access_token.data), access_token.grant_id),
        expires_at=access_token.expires_at,
        refresh_token=access_token.refresh_token,
        refresh_expires_at=refresh_expires_at,
        scopes=list(access_token.scopes),
        user_id=access_token.user_id,
    )


def to_authorization_code(authorization_code: datatype.AuthorizationCode) -> AuthorizationCode:
    """Convert python-oauth2's ``AuthorizationCode`` into an oauth2-store record, in the grant its
    ``data`` names if that is a :class:`GrantData` (else the code starts one).

    Raises:
        RecordTypeError: not a python-oauth2 ``AuthorizationCode``, or a field of the wrong type.
        RecordValueError: a field with a forbidden value.
    """
    _require(authorization_code, datatype.AuthorizationCode)
    return AuthorizationCode(
        authorization_code.client_id,
        authorization_code.code,
        authorization_code.expires_at,
        authorization_code.redirect_uri,
        authorization_code.scopes,
        authorization_code.data,
        user_id=_user_id(authorization_code.user_id),
        grant_id=_grant_id(authorization_code.data),
    )


def from_authorization_code(authorization_code: AuthorizationCode) -> datatype.AuthorizationCode:
    """Convert an oauth2-store record into a new python-oauth2 ``AuthorizationCode`` (``data`` a :class:`GrantData`)."""
    return _AuthorizationCode(
        client_id=authorization_code.client_id,
        code=authorization_code.code,
        expires_at=authorization_code.expires_at,
        redirect_uri=authorization_code.redirect_uri,
        scopes=list(authorization_code.scopes),
        data=GrantData(thaw(authorization_code.data), authorization_code.grant_id),
        user_id=authorization_code.user_id,
    )


class _AccessToken(datatype.AccessToken):
    """python-oauth2's ``AccessToken`` as read from a store: equal to any that stores the same."""

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, datatype.AccessToken):
            return NotImplemented
        try:
            return to_access_token(self) == to_access_token(other)
        except RecordError:
            return False


class _AuthorizationCode(datatype.AuthorizationCode):
    """python-oauth2's ``AuthorizationCode`` as read from a store, equal by value."""

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, datatype.AuthorizationCode):
            return NotImplemented
        try:
            return to_authorization_code(self) == to_authorization_code(other)
        except RecordError:
            return False


class _ClientSecret(str):
    """A client secret that python-oauth2 compares with ``!=``: compared by the record's
    :meth:`~oauth2_store.Client.check_secret`, so in constant time, against the hash of a hashed
    client, and never equal for a public client or to ``""``.

    The string itself is the record's ``secret`` (``""`` for a hashed client); python-oauth2
    only ever compares it. Build one with :meth:`of`.
    """

    _client: Client

    @classmethod
    def of(cls, client: Client) -> _ClientSecret:
        """The secret of ``client``, comparing through its ``check_secret``."""
        secret = cls(client.secret)
        secret._client = client  # an attribute, not in __slots__: str subclasses cannot have slots
        return secret

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, str):
            return NotImplemented
        return self._client.check_secret(other)

    def __ne__(self, other: object) -> bool:
        if not isinstance(other, str):
            return NotImplemented
        return not self.__eq__(other)

    __hash__ = str.__hash__

    def __repr__(self) -> str:
        return "<client secret>"


def _user_id(user_id: object) -> str | None:
    if user_id is None or type(user_id) is str:
        return user_id
    if isinstance(user_id, int) and not isinstance(user_id, bool):
        return str(int(user_id))
    raise RecordTypeError(f"user_id must be a str, an int or None, not {type(user_id).__name__}")


def _grant_id(data: object) -> str | None:
    """The grant ``data`` carries (a :class:`GrantData`'s), None for any other data."""
    return data.grant_id if isinstance(data, GrantData) else None


def _require(record: object, expected: type) -> None:
    if not isinstance(record, expected):
        raise RecordTypeError(f"expected python-oauth2's {expected.__module__}.{expected.__name__}, not {type(record).__qualname__}")


def _optional_list(values: tuple[str, ...] | None) -> list[str] | None:
    return None if values is None else list(values)


@contextlib.contextmanager
def _python_oauth2_errors() -> Iterator[None]:
    """Our not-found errors become python-oauth2's, the ones its grants catch; the lifecycle's
    refusals become :class:`InvalidGrant`, which they do not catch (``invalid_grant``)."""
    try:
        yield
    except CodeReplayError:
        raise InvalidGrant("Authorization code already used") from None
    except RefreshTokenReuseError:
        raise InvalidGrant("Refresh token already used") from None
    except GrantRevokedError:
        raise InvalidGrant("The grant was revoked") from None
    except AccessTokenNotFound as error:
        raise oauth2.error.AccessTokenNotFound(str(error)) from None
    except AuthCodeNotFound as error:
        raise oauth2.error.AuthCodeNotFound(str(error)) from None
    except ClientNotFoundError as error:
        raise oauth2.error.ClientNotFoundError(str(error)) from None
