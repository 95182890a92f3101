"""In-memory stores: the embedded default, for one process.

Thread-safe: saves, consumption, rotation and revocations take a lock; reads are dictionary
lookups of immutable records (a record saved again is replaced in one assignment, so a read never
finds it missing). Expired records, grants and markers are purged as writes happen, so memory
stays bounded by the live ones.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Iterable
from typing import Literal

from oauth2_store.clock import Clock, system_clock
from oauth2_store.error import (
    AccessTokenNotFound,
    AuthCodeNotFound,
    ClientNotFoundError,
    CodeReplayError,
    GrantRevokedError,
    RecordValueError,
    RefreshTokenReuseError,
)
from oauth2_store.models import AccessToken, AuthorizationCode, Client, TokenEndpointAuthMethod, require_record
from oauth2_store.protocols import TokenTypeHint
from oauth2_store.store.base import AccessTokenStore, AuthCodeStore, ClientStore, check_token_type_hint

__all__ = ["LocalClientStore", "LocalTokenStore"]

_UserKey = tuple[str, str, str | None]
_Kind = Literal["token", "refresh", "code", "consumed", "retired", "grant"]
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


class _Grant:
    """One grant's state: who it belongs to, its live members, and until when it must be kept."""

    __slots__ = ("client_id", "user_id", "revoked", "tokens", "refresh_tokens", "codes", "expires_at")

    def __init__(self, client_id: str, user_id: str | None) -> None:
        self.client_id = client_id
        self.user_id = user_id
        self.revoked = False
        self.tokens: set[str] = set()
        self.refresh_tokens: set[str] = set()
        self.codes: set[str] = set()
        self.expires_at: int | None = 0  # the latest expiry of anything issued in it; None: never

    def extend(self, expires_at: int | None) -> bool:
        """Keep the grant until ``expires_at`` at least; True if that moved its expiry."""
        if self.expires_at is None or (expires_at is not None and expires_at <= self.expires_at):
            return False
        self.expires_at = expires_at
        return True


class LocalTokenStore(AccessTokenStore, AuthCodeStore):
    """Stores access tokens, refresh tokens and authorization codes in memory.

    Useful for testing or APIs with a very limited set of clients; use memcached to share tokens
    between processes or hosts. Implements every operation of
    :class:`~oauth2_store.protocols.LifecycleTokenStoreProtocol`, exactly: every check and
    revocation happens under one lock, so nothing is ever lost or let through.

    Args:
        clock: Where the store reads the time to decide expiry (default :func:`time.time`).
    """

    def __init__(self, clock: Clock = system_clock) -> None:
        self._clock = clock
        self._tokens: dict[str, AccessToken] = {}
        self._refresh_tokens: dict[str, AccessToken] = {}
        self._latest_of_user: dict[_UserKey, str] = {}
        self._codes: dict[str, AuthorizationCode] = {}
        self._grants: dict[str, _Grant] = {}
        self._grants_of_user: dict[str, set[str]] = {}
        self._grants_of_client: dict[str, set[str]] = {}
        # What consumed codes and retired refresh tokens belonged to, until they would have expired.
        self._consumed: dict[str, tuple[str, int]] = {}
        self._retired: dict[str, tuple[str, int | None]] = {}
        self._lock = threading.Lock()
        # (expires_at, kind, key) of every expiring entry, soonest first: purging is popping.
        # Entries whose record was replaced or deleted stay until they come up or a compaction.
        self._expiries: list[tuple[int, _Kind, str]] = []
        # The heap is looked at when it has doubled since the last look: pushes stay O(log n)
        # amortized, and it is rebuilt only when most of it is stale.
        self._compact_above = _MIN_COMPACTION

    def save_token(self, access_token: AccessToken) -> None:
        """Store ``access_token``: findable by token until ``expires_at``, by refresh token until
        ``refresh_expires_at``, and as its user's latest token, as a member of its grant (which it
        starts if the grant is new). An expired part is not stored, and removes what was stored
        under the same token or refresh token (so re-saving a token with an earlier expiry ends it
        early).

        Raises:
            RecordTypeError: ``access_token`` is not an :class:`~oauth2_store.AccessToken`.
            RecordValueError: its ``grant_id`` names a grant of another client; nothing is stored.
            GrantRevokedError: its grant was revoked; nothing is stored.
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
            grant = self._join_grant(access_token.grant_id, access_token.client_id, access_token.user_id)
            previous = self._tokens.get(token)
            if expires_at is None or now < expires_at:
                # Replaced by one assignment each, never removed first: readers take no lock, and
                # a token (or user entry) saved again must not read as a miss in between.
                self._tokens[token] = access_token
                grant.tokens.add(token)
                self._extend_grant(access_token.grant_id, grant, expires_at)
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
                    grant.refresh_tokens.add(refresh_token)
                    self._extend_grant(access_token.grant_id, grant, refresh_expires_at)
                    if refresh_expires_at is not None:
                        heapq.heappush(expiries, (refresh_expires_at, "refresh", refresh_token))
                else:
                    self._refresh_tokens.pop(refresh_token, None)
            if len(expiries) > self._compact_above:
                self._compact_if_stale()
        finally:
            self._lock.release()

    def fetch_by_token(self, token: str) -> AccessToken:
        """Return the live access token ``token``. Revoking its grant, user or client deletes it,
        so this needs no check of the grant.

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
            RefreshTokenReuseError: ``refresh_token`` was retired by :meth:`delete_refresh_token`;
                its grant is now revoked.
            AccessTokenNotFound: no such refresh token, it was revoked, or it expired.
        """
        access_token = self._refresh_tokens.get(refresh_token)
        if access_token is not None:
            expires_at = access_token.refresh_expires_at
            if (expires_at is None or self._clock() < expires_at) and self._grant_is_live(access_token.grant_id):
                return access_token
        elif refresh_token in self._retired:
            with self._lock:
                self._refuse_retired(refresh_token)
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
        """Retire ``refresh_token`` and revoke the access token issued with it (rotation), exactly
        once: presenting it again is reuse, which revokes its grant.

        Raises:
            RefreshTokenReuseError: ``refresh_token`` was already retired; its grant is now revoked.
            AccessTokenNotFound: no such refresh token (revoked, or expired), or its grant is
                revoked.
        """
        now = self._clock()
        with self._lock:
            self._refuse_retired(refresh_token)
            access_token = self._refresh_tokens.pop(refresh_token, None)
            if access_token is None or access_token.is_refresh_expired(now):
                raise AccessTokenNotFound("no live refresh token matches")
            grant = self._grants.get(access_token.grant_id)
            if grant is None or grant.revoked:
                raise AccessTokenNotFound("no live refresh token matches")
            grant.refresh_tokens.discard(refresh_token)
            if self._tokens.get(access_token.token) == access_token:
                del self._tokens[access_token.token]
                grant.tokens.discard(access_token.token)
            self._forget_latest_of_user(access_token)
            self._retired[refresh_token] = (access_token.grant_id, access_token.refresh_expires_at)
            if access_token.refresh_expires_at is not None:
                heapq.heappush(self._expiries, (access_token.refresh_expires_at, "retired", refresh_token))
            # Revoked tokens leave their expiry entries behind, maybe for weeks (refresh tokens):
            # the heap must shrink with the live set, not only be looked at when it doubles.
            self._compact_if_stale()

    def revoke_token(self, token: str, token_type_hint: TokenTypeHint | None = None) -> None:
        """Revoke ``token``: an access token alone, or a refresh token with its whole grant (RFC
        7009 §2.1). Unknown tokens are not an error; both kinds are searched whatever the hint.

        Raises:
            ValueError: ``token_type_hint`` is not ``"access_token"``, ``"refresh_token"`` or None.
        """
        check_token_type_hint(token_type_hint)
        with self._lock:
            access_token = self._tokens.pop(token, None)
            if access_token is not None:
                self._forget_latest_of_user(access_token)
            refreshed = self._refresh_tokens.get(token)
            if refreshed is not None:
                self._revoke_grant(refreshed.grant_id)
                self._refresh_tokens.pop(token, None)  # a grant that lost its entry still ends this
                if self._tokens.get(refreshed.token) == refreshed:
                    del self._tokens[refreshed.token]
                    self._forget_latest_of_user(refreshed)
            self._compact_if_stale()

    def revoke_grant(self, grant_id: str) -> None:
        """End grant ``grant_id``: its tokens, refresh tokens and unconsumed code are deleted, and
        nothing can be saved into it again. An unknown grant is not an error."""
        with self._lock:
            self._revoke_grant(grant_id)
            self._compact_if_stale()

    def revoke_user(self, user_id: str, client_id: str | None = None) -> None:
        """End every grant of ``user_id`` (with ``client_id``: of that client only), with their
        tokens and codes. Grants authorized afterwards work."""
        with self._lock:
            for grant_id in list(self._grants_of_user.get(user_id, ())):
                if client_id is None or self._grants[grant_id].client_id == client_id:
                    self._revoke_grant(grant_id)
            self._compact_if_stale()

    def revoke_client(self, client_id: str) -> None:
        """End every grant of ``client_id``, with its tokens and unconsumed codes. Grants
        authorized afterwards work."""
        with self._lock:
            for grant_id in list(self._grants_of_client.get(client_id, ())):
                self._revoke_grant(grant_id)
            self._compact_if_stale()

    def save_code(self, authorization_code: AuthorizationCode) -> None:
        """Store ``authorization_code`` until its ``expires_at``, starting its grant. An expired
        code is not stored, and removes what was stored under the same code.

        Raises:
            RecordTypeError: ``authorization_code`` is not an :class:`~oauth2_store.AuthorizationCode`.
            RecordValueError: its ``grant_id`` names a grant of another client; nothing is stored.
            GrantRevokedError: its grant was revoked; nothing is stored.
        """
        if type(authorization_code) is not AuthorizationCode:
            require_record(authorization_code, AuthorizationCode, "save_code")
        now = self._clock()
        self._lock.acquire()  # not `with`: on CPython 3.11 its exit call costs as much again
        try:
            if self._expiries and self._expiries[0][0] <= now:
                self._purge(now)
            grant = self._join_grant(authorization_code.grant_id, authorization_code.client_id, authorization_code.user_id)
            if authorization_code.is_expired(now):
                self._codes.pop(authorization_code.code, None)
            else:
                self._codes[authorization_code.code] = authorization_code
                grant.codes.add(authorization_code.code)
                self._extend_grant(authorization_code.grant_id, grant, authorization_code.expires_at)
                heapq.heappush(self._expiries, (authorization_code.expires_at, "code", authorization_code.code))
                if len(self._expiries) > self._compact_above:
                    self._compact_if_stale()
        finally:
            self._lock.release()

    def fetch_by_code(self, code: str) -> AuthorizationCode:
        """Return the live authorization code ``code`` without using it up.

        Raises:
            CodeReplayError: ``code`` was already consumed; its grant is now revoked.
            AuthCodeNotFound: no such code, it was deleted, it expired, or its grant is revoked.
        """
        authorization_code = self._codes.get(code)
        if authorization_code is None:
            if code in self._consumed:
                with self._lock:
                    self._refuse_consumed(code, self._clock())
        elif self._clock() < authorization_code.expires_at and self._grant_is_live(authorization_code.grant_id):
            return authorization_code
        raise AuthCodeNotFound("no live authorization code matches")

    def delete_code(self, code: str) -> None:
        """Delete ``code`` (it is not consumed: presenting it again is no replay); deleting a code
        that is not there is not an error."""
        self._codes.pop(code, None)  # atomic: what reads codes under the lock copes with it vanishing

    def consume_code(self, code: str) -> AuthorizationCode:
        """Atomically fetch and use up ``code``: exactly one caller gets it. Presenting it again,
        until it would have expired, is a replay, which revokes its grant (RFC 6749 §4.1.2).

        Raises:
            CodeReplayError: ``code`` was already consumed (concurrent losers included); its
                grant is now revoked.
            AuthCodeNotFound: no such code, it expired, or its grant is revoked.
        """
        now = self._clock()
        with self._lock:
            self._refuse_consumed(code, now)
            authorization_code = self._codes.pop(code, None)
            if authorization_code is None or now >= authorization_code.expires_at:
                raise AuthCodeNotFound("no live authorization code matches")
            grant = self._grants.get(authorization_code.grant_id)
            if grant is None or grant.revoked:
                raise AuthCodeNotFound("no live authorization code matches")
            grant.codes.discard(code)
            self._consumed[code] = (authorization_code.grant_id, authorization_code.expires_at)
            heapq.heappush(self._expiries, (authorization_code.expires_at, "consumed", code))
            return authorization_code

    def _grant_is_live(self, grant_id: str) -> bool:
        grant = self._grants.get(grant_id)
        return grant is not None and not grant.revoked

    def _join_grant(self, grant_id: str, client_id: str, user_id: str | None) -> _Grant:
        """The live grant ``grant_id``, started if new. Lock held.

        Raises:
            GrantRevokedError: the grant was revoked.
            RecordValueError: the grant belongs to another client.
        """
        grant = self._grants.get(grant_id)
        if grant is None:
            grant = self._grants[grant_id] = _Grant(client_id, user_id)
            heapq.heappush(self._expiries, (0, "grant", grant_id))  # purged at once unless a member extends it
            self._grants_of_client.setdefault(client_id, set()).add(grant_id)
            if user_id is not None:
                self._grants_of_user.setdefault(user_id, set()).add(grant_id)
        elif grant.revoked:
            raise GrantRevokedError("the record's grant was revoked")
        elif grant.client_id != client_id:
            raise RecordValueError("grant_id names a grant of another client")
        return grant

    def _extend_grant(self, grant_id: str, grant: _Grant, expires_at: int | None) -> None:
        if grant.extend(expires_at) and expires_at is not None:
            heapq.heappush(self._expiries, (expires_at, "grant", grant_id))

    def _revoke_grant(self, grant_id: str) -> None:
        """Delete every member of the grant and mark it revoked until it would have expired. Lock held."""
        grant = self._grants.get(grant_id)
        if grant is None:
            return
        grant.revoked = True
        for token in grant.tokens:
            access_token = self._tokens.get(token)
            if access_token is not None and access_token.grant_id == grant_id:
                del self._tokens[token]
                self._forget_latest_of_user(access_token)
        for refresh_token in grant.refresh_tokens:
            refreshed = self._refresh_tokens.get(refresh_token)
            if refreshed is not None and refreshed.grant_id == grant_id:
                del self._refresh_tokens[refresh_token]
        for code in grant.codes:
            authorization_code = self._codes.get(code)
            if authorization_code is not None and authorization_code.grant_id == grant_id:
                self._codes.pop(code, None)  # consume_code may have taken it meanwhile
        grant.tokens.clear()
        grant.refresh_tokens.clear()
        grant.codes.clear()

    def _refuse_consumed(self, code: str, now: float) -> None:
        """Revoke the grant of ``code`` and raise, if ``code`` was consumed and has not expired. Lock held.

        Raises:
            CodeReplayError: it was.
        """
        consumed = self._consumed.get(code)
        if consumed is not None and now < consumed[1]:
            self._revoke_grant(consumed[0])
            raise CodeReplayError("the authorization code was already used; its grant is revoked")

    def _refuse_retired(self, refresh_token: str) -> None:
        """Revoke the grant of ``refresh_token`` and raise, if it was retired and has not expired. Lock held.

        Raises:
            RefreshTokenReuseError: it was.
        """
        retired = self._retired.get(refresh_token)
        if retired is not None and (retired[1] is None or self._clock() < retired[1]):
            self._revoke_grant(retired[0])
            raise RefreshTokenReuseError("the refresh token was already used; its grant is revoked")

    def _forget_latest_of_user(self, access_token: AccessToken) -> None:
        """Drop the user entry of ``access_token`` if it still points to it. Lock held."""
        user_key = _user_key(access_token)
        if self._latest_of_user.get(user_key) == access_token.token:
            del self._latest_of_user[user_key]

    def _purge(self, now: float) -> None:
        """Drop every record, marker and grant that has expired by ``now``. Lock held."""
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
            elif kind == "code":
                authorization_code = self._codes.get(key)
                if authorization_code is not None and authorization_code.is_expired(now):
                    self._codes.pop(key, None)  # consume_code may have taken it meanwhile
            elif kind == "consumed":
                consumed = self._consumed.get(key)
                if consumed is not None and consumed[1] <= now:
                    del self._consumed[key]
            elif kind == "retired":
                retired = self._retired.get(key)
                if retired is not None and retired[1] is not None and retired[1] <= now:
                    del self._retired[key]
            else:
                grant = self._grants.get(key)
                if grant is not None and grant.expires_at is not None and grant.expires_at <= now:
                    self._forget_grant(key, grant)

    def _forget_grant(self, grant_id: str, grant: _Grant) -> None:
        """Drop an expired grant: everything issued in it has expired. Lock held."""
        del self._grants[grant_id]
        for index, owner in ((self._grants_of_client, grant.client_id), (self._grants_of_user, grant.user_id)):
            if owner is not None:
                grants = index[owner]
                grants.discard(grant_id)
                if not grants:
                    del index[owner]

    def _compact_if_stale(self) -> None:
        """Rebuild the expiry heap from the live entries if more than half of it is entries of
        replaced or deleted ones; either way, look again when it has doubled. Lock held.

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
            for code, authorization_code in self._codes.copy().items():  # delete_code pops without the lock
                expiries.append((authorization_code.expires_at, "code", code))
            for code, (_, expires_at) in self._consumed.items():
                expiries.append((expires_at, "consumed", code))
            for refresh_token, (_, refresh_expires_at) in self._retired.items():
                if refresh_expires_at is not None:
                    expiries.append((refresh_expires_at, "retired", refresh_token))
            for grant_id, grant in self._grants.items():
                if grant.expires_at is not None:
                    expiries.append((grant.expires_at, "grant", grant_id))
            heapq.heapify(expiries)
            self._expiries = expiries
        self._compact_above = 2 * len(expiries) + _MIN_COMPACTION

    def __len__(self) -> int:
        """How many entries the store holds: access tokens, refresh tokens, codes, grants, and the
        markers of consumed codes and retired refresh tokens."""
        return len(self._tokens) + len(self._refresh_tokens) + len(self._codes) + len(self._grants) + len(self._consumed) + len(self._retired)


def _user_key(access_token: AccessToken) -> _UserKey:
    return (access_token.client_id, access_token.grant_type, access_token.user_id)
