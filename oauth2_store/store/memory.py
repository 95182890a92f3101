"""In-memory stores: the embedded default, for one process.

Thread-safe: saves and revocations take a lock; reads are single dictionary lookups of immutable
records (a record saved again is replaced in one assignment, so a read never finds it missing), and
:meth:`LocalTokenStore.consume_code` and ``delete_code`` a single ``dict.pop``; both are atomic in
CPython, with or without the GIL, so exactly one caller gets a code. Expired records are purged as
writes happen, so memory stays bounded by the live records.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Iterable
from typing import Literal

from oauth2_store.clock import Clock, system_clock
from oauth2_store.error import AccessTokenNotFound, AuthCodeNotFound, ClientNotFoundError
from oauth2_store.models import AccessToken, AuthorizationCode, Client, TokenEndpointAuthMethod, require_record
from oauth2_store.protocols import TokenTypeHint
from oauth2_store.store.base import AccessTokenStore, AuthCodeStore, ClientStore, check_token_type_hint

__all__ = ["LocalClientStore", "LocalTokenStore"]

_UserKey = tuple[str, str, str | None]
_Kind = Literal["token", "refresh", "code"]
_MIN_COMPACTION = 1024
"""Below this many expiry entries, the heap is never compacted."""


class LocalClientStore(ClientStore):
    """Stores clients in memory."""

    def __init__(self) -> None:
        self._clients: dict[str, Client] = {}
        self._lock = threading.Lock()

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
        """Register a client app (replacing one with the same identifier) and return it.

        Args:
            client_id: Identifier of the client app.
            client_secret: Secret the client app uses to authenticate; ``""`` for a public client.
            redirect_uris: The URIs it may redirect to (absolute, no fragment).
            authorized_grants: Grant types it may use; None allows all.
            authorized_response_types: Response types it may request; None allows all.
            scopes: Scopes it may be granted; None allows any.
            token_endpoint_auth_method: How it authenticates at the token endpoint; None: ``none``
                for a public client, ``client_secret_basic`` otherwise.

        Raises:
            RecordTypeError, RecordValueError: as :class:`~oauth2_store.Client` does.
        """
        client = Client(
            client_id,
            client_secret,
            redirect_uris,
            authorized_grants=authorized_grants,
            authorized_response_types=authorized_response_types,
            scopes=scopes,
            token_endpoint_auth_method=token_endpoint_auth_method,
        )
        with self._lock:
            self._clients[client.identifier] = client
        return client

    def fetch_by_client_id(self, client_id: str) -> Client:
        """Retrieve a client by its identifier.

        Raises:
            ClientNotFoundError: no client has that identifier.
        """
        client = self._clients.get(client_id)
        if client is None:
            raise ClientNotFoundError("no client with that identifier")
        return client


class LocalTokenStore(AccessTokenStore, AuthCodeStore):
    """Stores access tokens, refresh tokens and authorization codes in memory.

    Useful for testing or APIs with a very limited set of clients; use memcached to share tokens
    between processes or hosts. Implements every operation of
    :class:`~oauth2_store.protocols.TokenStoreProtocol`.

    Args:
        clock: Where the store reads the time to decide expiry (default :func:`time.time`).
    """

    def __init__(self, clock: Clock = system_clock) -> None:
        self._clock = clock
        self._tokens: dict[str, AccessToken] = {}
        self._refresh_tokens: dict[str, AccessToken] = {}
        self._latest_of_user: dict[_UserKey, str] = {}
        self._codes: dict[str, AuthorizationCode] = {}
        self._lock = threading.Lock()
        # (expires_at, kind, key) of every expiring entry, soonest first: purging is popping.
        # Entries whose record was replaced or deleted stay until they come up or a compaction.
        self._expiries: list[tuple[int, _Kind, str]] = []
        # The heap is looked at when it has doubled since the last look: pushes stay O(log n)
        # amortized, and it is rebuilt only when most of it is stale.
        self._compact_above = _MIN_COMPACTION

    def save_token(self, access_token: AccessToken) -> None:
        """Store ``access_token``: findable by token until ``expires_at``, by refresh token until
        ``refresh_expires_at``, and as its user's latest token. An expired part is not stored, and
        removes what was stored under the same token or refresh token (so re-saving a token with an
        earlier expiry ends it early).

        Raises:
            RecordTypeError: ``access_token`` is not an :class:`~oauth2_store.AccessToken`.
        """
        if type(access_token) is not AccessToken:
            require_record(access_token, AccessToken, "save_token")
        # Expiry checks are inlined here and in the fetches: this is the hot path of a token server.
        now = self._clock()
        token, expires_at = access_token.token, access_token.expires_at
        self._lock.acquire()  # not `with`: on CPython 3.11 its exit call costs as much again
        try:
            expiries = self._expiries
            if expiries and expiries[0][0] <= now:
                self._purge(now)
            previous = self._tokens.get(token)
            if expires_at is None or now < expires_at:
                # Replaced by one assignment each, never removed first: readers take no lock, and
                # a token (or user entry) saved again must not read as a miss in between.
                self._tokens[token] = access_token
                user_key = (access_token.client_id, access_token.grant_type, access_token.user_id)
                if previous is not None and _user_key(previous) != user_key:
                    self._forget_latest_of_user(previous)
                self._latest_of_user[user_key] = token
                if expires_at is not None:
                    heapq.heappush(expiries, (expires_at, "token", token))
            elif previous is not None:
                del self._tokens[token]
                self._forget_latest_of_user(previous)
            refresh_token = access_token.refresh_token
            if refresh_token is not None:
                refresh_expires_at = access_token.refresh_expires_at
                if refresh_expires_at is None or now < refresh_expires_at:
                    self._refresh_tokens[refresh_token] = access_token
                    if refresh_expires_at is not None:
                        heapq.heappush(expiries, (refresh_expires_at, "refresh", refresh_token))
                else:
                    self._refresh_tokens.pop(refresh_token, None)
            if len(expiries) > self._compact_above:
                self._compact_if_stale()
        finally:
            self._lock.release()

    def fetch_by_token(self, token: str) -> AccessToken:
        """Return the live access token ``token``.

        Raises:
            AccessTokenNotFound: no such token, it was revoked, or it expired.
        """
        access_token = self._tokens.get(token)
        if access_token is not None:
            expires_at = access_token.expires_at
            if expires_at is None or self._clock() < expires_at:
                return access_token
        raise AccessTokenNotFound("no live access token matches")

    def fetch_by_refresh_token(self, refresh_token: str) -> AccessToken:
        """Return the access token issued with ``refresh_token`` (even if the access token expired).

        Raises:
            AccessTokenNotFound: no such refresh token, it was revoked, or it expired.
        """
        access_token = self._refresh_tokens.get(refresh_token)
        if access_token is not None:
            expires_at = access_token.refresh_expires_at
            if expires_at is None or self._clock() < expires_at:
                return access_token
        raise AccessTokenNotFound("no live refresh token matches")

    def fetch_existing_token_of_user(self, client_id: str, grant_type: str, user_id: str | None) -> AccessToken:
        """Return the live access token most recently saved for this client, grant and user.

        Raises:
            AccessTokenNotFound: none was saved, or the latest one was revoked or expired.
        """
        user_key = (client_id, grant_type, user_id)
        access_token = self._tokens.get(self._latest_of_user.get(user_key, ""))
        if access_token is None or _user_key(access_token) != user_key or access_token.is_expired(self._clock()):
            raise AccessTokenNotFound("no live access token for this client, grant and user")
        return access_token

    def delete_refresh_token(self, refresh_token: str) -> None:
        """Revoke ``refresh_token`` and the access token issued with it.

        Raises:
            AccessTokenNotFound: no such refresh token (already revoked, or expired).
        """
        now = self._clock()
        with self._lock:
            access_token = self._refresh_tokens.pop(refresh_token, None)
            if access_token is None or access_token.is_refresh_expired(now):
                raise AccessTokenNotFound("no live refresh token matches")
            if self._tokens.get(access_token.token) == access_token:
                del self._tokens[access_token.token]
            self._forget_latest_of_user(access_token)
            # Revoked tokens leave their expiry entries behind, maybe for weeks (refresh tokens):
            # the heap must shrink with the live set, not only be looked at when it doubles.
            self._compact_if_stale()

    def revoke_token(self, token: str, token_type_hint: TokenTypeHint | None = None) -> None:
        """Revoke ``token``: an access token alone, or a refresh token with its access token
        (RFC 7009). Unknown tokens are not an error; both kinds are searched whatever the hint.

        Raises:
            ValueError: ``token_type_hint`` is not ``"access_token"``, ``"refresh_token"`` or None.
        """
        check_token_type_hint(token_type_hint)
        with self._lock:
            revoked = [self._tokens.pop(token, None)]
            refreshed = self._refresh_tokens.pop(token, None)
            if refreshed is not None:
                revoked.append(self._tokens.pop(refreshed.token, None))
            for access_token in revoked:
                if access_token is not None:
                    self._forget_latest_of_user(access_token)
            self._compact_if_stale()

    def save_code(self, authorization_code: AuthorizationCode) -> None:
        """Store ``authorization_code`` until its ``expires_at``. An expired code is not stored,
        and removes what was stored under the same code.

        Raises:
            RecordTypeError: ``authorization_code`` is not an :class:`~oauth2_store.AuthorizationCode`.
        """
        if type(authorization_code) is not AuthorizationCode:
            require_record(authorization_code, AuthorizationCode, "save_code")
        now = self._clock()
        self._lock.acquire()  # not `with`: on CPython 3.11 its exit call costs as much again
        try:
            if self._expiries and self._expiries[0][0] <= now:
                self._purge(now)
            if authorization_code.is_expired(now):
                self._codes.pop(authorization_code.code, None)
            else:
                self._codes[authorization_code.code] = authorization_code
                heapq.heappush(self._expiries, (authorization_code.expires_at, "code", authorization_code.code))
                if len(self._expiries) > self._compact_above:
                    self._compact_if_stale()
        finally:
            self._lock.release()

    def fetch_by_code(self, code: str) -> AuthorizationCode:
        """Return the live authorization code ``code`` without using it up.

        Raises:
            AuthCodeNotFound: no such code, it was used or deleted, or it expired.
        """
        authorization_code = self._codes.get(code)
        if authorization_code is None or self._clock() >= authorization_code.expires_at:
            raise AuthCodeNotFound("no live authorization code matches")
        return authorization_code

    def delete_code(self, code: str) -> None:
        """Delete ``code``; deleting a code that is not there is not an error."""
        self._codes.pop(code, None)  # atomic: no lock needed, as in consume_code

    def consume_code(self, code: str) -> AuthorizationCode:
        """Atomically fetch and delete ``code``: exactly one caller gets it.

        Raises:
            AuthCodeNotFound: no such code, it was already consumed, or it expired.
        """
        # No lock: dict.pop is atomic, so exactly one caller gets the code. What else reads or
        # removes codes under the lock (purge, compaction) copes with a code vanishing under it.
        authorization_code = self._codes.pop(code, None)
        if authorization_code is None or self._clock() >= authorization_code.expires_at:
            raise AuthCodeNotFound("no live authorization code matches")
        return authorization_code

    def _forget_latest_of_user(self, access_token: AccessToken) -> None:
        """Drop the user entry of ``access_token`` if it still points to it. Lock held."""
        user_key = _user_key(access_token)
        if self._latest_of_user.get(user_key) == access_token.token:
            del self._latest_of_user[user_key]

    def _purge(self, now: float) -> None:
        """Drop every record that has expired by ``now``. Called with the lock held."""
        expiries = self._expiries
        while expiries and expiries[0][0] <= now:
            _, kind, key = heapq.heappop(expiries)
            if kind == "token":
                access_token = self._tokens.get(key)
                if access_token is not None and access_token.is_expired(now):
                    del self._tokens[key]
                    self._forget_latest_of_user(access_token)
            elif kind == "refresh":
                refreshed = self._refresh_tokens.get(key)
                if refreshed is not None and refreshed.is_refresh_expired(now):
                    del self._refresh_tokens[key]
            else:
                authorization_code = self._codes.get(key)
                if authorization_code is not None and authorization_code.is_expired(now):
                    self._codes.pop(key, None)  # consume_code may have taken it meanwhile

    def _compact_if_stale(self) -> None:
        """Rebuild the expiry heap from the live records if more than half of it is entries of
        replaced or deleted records; either way, look again when it has doubled. Lock held.

        Entries of consumed or deleted codes are left to expire (minutes); revocations call this
        as soon as the heap is more than twice the live set."""
        expiries: list[tuple[int, _Kind, str]] = self._expiries
        if len(expiries) > 2 * len(self) + _MIN_COMPACTION:
            expiries = []
            for token, access_token in self._tokens.items():
                if access_token.expires_at is not None:
                    expiries.append((access_token.expires_at, "token", token))
            for refresh_token, access_token in self._refresh_tokens.items():
                if access_token.refresh_expires_at is not None:
                    expiries.append((access_token.refresh_expires_at, "refresh", refresh_token))
            for code, authorization_code in self._codes.copy().items():  # consume_code pops without the lock
                expiries.append((authorization_code.expires_at, "code", code))
            heapq.heapify(expiries)
            self._expiries = expiries
        self._compact_above = 2 * len(expiries) + _MIN_COMPACTION

    def __len__(self) -> int:
        """How many entries the store holds: access tokens, refresh tokens and codes."""
        return len(self._tokens) + len(self._refresh_tokens) + len(self._codes)


def _user_key(access_token: AccessToken) -> _UserKey:
    return (access_token.client_id, access_token.grant_type, access_token.user_id)
