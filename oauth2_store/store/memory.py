"""In-memory stores: the embedded default, for one process.

Thread-safe: saves, consumption, rotation and revocations take a lock; reads are dictionary
lookups of immutable records (a record saved again is replaced in one assignment, so a read never
finds it missing). Expired records, grants and markers are purged as writes happen, so memory
stays bounded by the live ones.
"""

from __future__ import annotations

import heapq
import threading
from collections import defaultdict
from collections.abc import Iterable
from typing import Literal, NoReturn

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
_Kind = Literal["token", "refresh", "code", "grant"]
_Entry = tuple[int, _Kind, str, str]
"""An expiry entry: when, what kind of key, the key, and the grant of what was stored under it."""
_Member = AccessToken | AuthorizationCode
_MIN_COMPACTION = 1024
"""Below this many expiry entries, the heap is never compacted."""
_MIN_PRUNE = 8
"""Below this many members, a grant's member list is never pruned."""


class LocalClientStore(ClientStore):
    """Stores clients in memory.

    Secrets are kept as given by default: memory is not at rest, a client is returned as it was
    added, and authenticating costs no hash. With ``hash_secrets``, :meth:`add_client` keeps only
    a hash of each secret (:meth:`~oauth2_store.Client.with_hashed_secret`), and every
    :meth:`~oauth2_store.Client.check_secret` costs one scrypt (about 30 ms).

    Args:
        hash_secrets: Keep client secrets hashed, never in plaintext.
    """

    def __init__(self, *, hash_secrets: bool = False) -> None:
        self._clients: dict[str, Client] = {}
        self._lock = threading.Lock()
        self._hash_secrets = hash_secrets

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
        """Register a client app (replacing one with the same identifier) and return it (its
        secret hashed if the store hashes secrets).

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
        if self._hash_secrets:
            client = client.with_hashed_secret()
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


class _Grant(list[_Member]):
    """One grant that outgrew its first record: the records saved into it (the list itself: one
    object per grant), who it belongs to, whether it was revoked, and until when it must be kept.

    Every key under which a record of the grant is stored (a token, refresh token or code) is the
    key of at least one member. Members whose keys were since deleted, replaced or taken by another
    grant stay until the list is pruned: revocation looks every key up and deletes only what still
    belongs to the grant. Made by :meth:`LocalTokenStore._promote`, which sets every attribute.
    """

    __slots__ = ("client_id", "user_id", "revoked", "prune_at", "expires_at")
    client_id: str
    user_id: str | None
    revoked: bool
    prune_at: int  # at this many members, the list is pruned before another joins
    expires_at: int | None  # the latest expiry of anything issued in it; None: never


_GrantState = _Grant | AccessToken | AuthorizationCode
"""What the store keeps of a grant. A grant whose only member is the record that started it, and
that was never revoked, is that record: it has the owners, and its expiry is the grant's. Most
grants stay so (a token issued on its own; a code until its token joins), and cost no object."""


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
        self._grants: dict[str, _GrantState] = {}
        # Grants are indexed by user, not by client: this store is for few clients, so a client's
        # grants are most of them, and revoke_client scanning them all costs no more than an index
        # would, which every new grant would pay for.
        self._grants_of_user: defaultdict[str, set[str]] = defaultdict(set)
        # Consumed codes and retired refresh tokens (the records themselves: they carry their grant
        # and expiry, and need no new object), until they would have expired.
        self._consumed: dict[str, AuthorizationCode] = {}
        self._retired: dict[str, AccessToken] = {}
        self._lock = threading.Lock()
        # (expires_at, kind, key, grant_id) of every expiring entry, soonest first: purging is
        # popping. Entries whose record was replaced or deleted stay until they come up or a
        # compaction. A marker is purged by the entry of the record it marks (same key, same
        # expiry), and a grant by the entry of its latest-expiring member: neither pushes its own,
        # except in a compaction, which has no entries of deleted records left to use.
        self._expiries: list[_Entry] = []
        # The heap is looked at when it has doubled since the last look: pushes stay O(log n)
        # amortized, and it is rebuilt only when most of it is stale.
        self._compact_above = _MIN_COMPACTION

    def save_token(self, access_token: AccessToken) -> None:
        """Store ``access_token``: findable by token until ``expires_at``, by refresh token until
        ``refresh_expires_at``, and as its user's latest token, as a member of its grant (which it
        starts if the grant is new). An expired part is not stored, and removes what was stored
        under the same token or refresh token (so re-saving a token with an earlier expiry ends it
        early); a save with no live part starts no grant.

        Raises:
            RecordTypeError: ``access_token`` is not an :class:`~oauth2_store.AccessToken`.
            RecordValueError: its ``grant_id`` names a grant of another client; nothing is stored.
            GrantRevokedError: its grant was revoked; nothing is stored.
        """
        if type(access_token) is not AccessToken:
            require_record(access_token, AccessToken, "save_token")
        # Expiry checks are inlined here and in the fetches: this is the hot path of a token server.
        now = self._clock()
        token, expires_at, grant_id = access_token.token, access_token.expires_at, access_token.grant_id
        refresh_token, refresh_expires_at = access_token.refresh_token, access_token.refresh_expires_at
        self._lock.acquire()  # not `with`: on CPython 3.11 its exit call costs as much again
        try:
            expiries = self._expiries
            if expiries and expiries[0][0] <= now:
                self._purge(now)
            token_live = expires_at is None or now < expires_at
            refresh_live = refresh_token is not None and (refresh_expires_at is None or now < refresh_expires_at)
            # The grant is joined before the record is stored: a lock-free reader that finds the
            # record also finds its grant.
            grant = self._grants.get(grant_id)
            if grant is None:
                if token_live or refresh_live:
                    self._start_grant(grant_id, access_token)
            elif grant.client_id != access_token.client_id or (type(grant) is _Grant and grant.revoked):
                _refuse_to_join(grant)
            elif token_live or refresh_live:
                self._join_grant(grant_id, grant, access_token)
            previous = self._tokens.get(token)
            if token_live:
                # Replaced by one assignment each, never removed first: readers take no lock, and
                # a token (or user entry) saved again must not read as a miss in between.
                self._tokens[token] = access_token
                user_key = (access_token.client_id, access_token.grant_type, access_token.user_id)
                if previous is not None and _user_key(previous) != user_key:
                    self._forget_latest_of_user(previous)
                self._latest_of_user[user_key] = token
                if expires_at is not None:
                    heapq.heappush(expiries, (expires_at, "token", token, grant_id))
            elif previous is not None:
                del self._tokens[token]
                self._forget_latest_of_user(previous)
            if refresh_token is not None:
                if refresh_live:
                    self._refresh_tokens[refresh_token] = access_token
                    if refresh_expires_at is not None:
                        heapq.heappush(expiries, (refresh_expires_at, "refresh", refresh_token, grant_id))
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
            if expires_at is None or self._clock() < expires_at:
                grant = self._grants.get(access_token.grant_id)
                if grant is not None and (type(grant) is not _Grant or not grant.revoked):
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
            if grant is None or (type(grant) is _Grant and grant.revoked):
                raise AccessTokenNotFound("no live refresh token matches")
            if self._tokens.get(access_token.token) == access_token:
                del self._tokens[access_token.token]
            self._forget_latest_of_user(access_token)
            # Purged by the refresh token's own expiry entry, which has the same key and time.
            self._retired[refresh_token] = access_token
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
        authorized afterwards work. Looks at every grant in the store (grants are not indexed by
        client)."""
        with self._lock:
            for grant_id in [grant_id for grant_id, grant in self._grants.items() if grant.client_id == client_id]:
                self._revoke_grant(grant_id)
            self._compact_if_stale()

    def save_code(self, authorization_code: AuthorizationCode) -> None:
        """Store ``authorization_code`` until its ``expires_at``, starting its grant. An expired
        code is not stored (and starts no grant), and removes what was stored under the same code.

        Raises:
            RecordTypeError: ``authorization_code`` is not an :class:`~oauth2_store.AuthorizationCode`.
            RecordValueError: its ``grant_id`` names a grant of another client; nothing is stored.
            GrantRevokedError: its grant was revoked; nothing is stored.
        """
        if type(authorization_code) is not AuthorizationCode:
            require_record(authorization_code, AuthorizationCode, "save_code")
        now = self._clock()
        code, expires_at, grant_id = authorization_code.code, authorization_code.expires_at, authorization_code.grant_id
        self._lock.acquire()  # not `with`: on CPython 3.11 its exit call costs as much again
        try:
            expiries = self._expiries
            if expiries and expiries[0][0] <= now:
                self._purge(now)
            grant = self._grants.get(grant_id)
            if grant is not None and (grant.client_id != authorization_code.client_id or (type(grant) is _Grant and grant.revoked)):
                _refuse_to_join(grant)
            if now >= expires_at:
                self._codes.pop(code, None)
            else:
                if grant is None:
                    self._start_grant(grant_id, authorization_code)
                else:
                    self._join_grant(grant_id, grant, authorization_code)
                self._codes[code] = authorization_code
                heapq.heappush(expiries, (expires_at, "code", code, grant_id))
                if len(expiries) > self._compact_above:
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
        elif self._clock() < authorization_code.expires_at:
            grant = self._grants.get(authorization_code.grant_id)
            if grant is not None and (type(grant) is not _Grant or not grant.revoked):
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
        self._lock.acquire()  # not `with`: on CPython 3.11 its exit call costs as much again
        try:
            if code in self._consumed:
                self._refuse_consumed(code, now)
            authorization_code = self._codes.pop(code, None)
            if authorization_code is None or now >= authorization_code.expires_at:
                raise AuthCodeNotFound("no live authorization code matches")
            # No look at the grant: under the lock, a stored code's grant is live. Revoking a grant
            # deletes its codes under the lock, nothing is saved into a revoked grant, and a grant
            # is forgotten only once everything in it has expired.
            # The marker is purged by the code's own expiry entry, which has the same key and time.
            self._consumed[code] = authorization_code
            return authorization_code
        finally:
            self._lock.release()

    def _start_grant(self, grant_id: str, member: _Member) -> None:
        """Start grant ``grant_id`` with its first live member, which stands for it until a second
        joins or it is revoked; index it by user. Lock held."""
        self._grants[grant_id] = member
        if member.user_id is not None:
            self._grants_of_user[member.user_id].add(grant_id)

    def _promote(self, grant_id: str, first: _Member) -> _Grant:
        """Replace the record standing for grant ``grant_id`` by a :class:`_Grant` holding it, in
        one assignment (lock-free readers find one or the other, both live). Lock held."""
        grant = _Grant()
        grant.append(first)
        grant.client_id, grant.user_id, grant.revoked, grant.prune_at = first.client_id, first.user_id, False, _MIN_PRUNE
        grant.expires_at = _expiry_of(first)
        self._grants[grant_id] = grant
        return grant

    def _join_grant(self, grant_id: str, grant: _GrantState, member: _Member) -> None:
        """Add a member with a live part to the live grant, and keep the grant until the member
        expires at least (the member's expiry entry is then the grant's). Lock held."""
        if not isinstance(grant, _Grant):
            grant = self._promote(grant_id, grant)
        elif len(grant) >= grant.prune_at:
            self._prune_members(grant_id, grant)  # before the append: ``member`` is not stored yet
        grant.append(member)
        expires_at = _expiry_of(member)
        if grant.expires_at is not None and (expires_at is None or expires_at > grant.expires_at):
            grant.expires_at = expires_at

    def _prune_members(self, grant_id: str, grant: _Grant) -> None:
        """Keep one member per record still stored in the grant (the record itself: it has the
        keys it is stored under); look again when the list has doubled. Lock held."""
        current: dict[int, _Member] = {}
        for member in grant:
            if isinstance(member, AuthorizationCode):
                found: tuple[_Member | None, ...] = (self._codes.get(member.code),)
            elif member.refresh_token is None:
                found = (self._tokens.get(member.token),)
            else:
                found = (self._tokens.get(member.token), self._refresh_tokens.get(member.refresh_token))
            for record in found:
                if record is not None and record.grant_id == grant_id:
                    current[id(record)] = record
        grant[:] = current.values()
        grant.prune_at = 2 * len(grant) + _MIN_PRUNE

    def _revoke_grant(self, grant_id: str) -> None:
        """Delete every member of the grant and mark it revoked until it would have expired. Lock held."""
        grant = self._grants.get(grant_id)
        if grant is None:
            return
        if not isinstance(grant, _Grant):
            grant = self._promote(grant_id, grant)
        grant.revoked = True
        for member in grant:
            if isinstance(member, AuthorizationCode):
                authorization_code = self._codes.get(member.code)
                if authorization_code is not None and authorization_code.grant_id == grant_id:
                    self._codes.pop(member.code, None)  # delete_code may have taken it meanwhile
                continue
            access_token = self._tokens.get(member.token)
            if access_token is not None and access_token.grant_id == grant_id:
                del self._tokens[member.token]
                self._forget_latest_of_user(access_token)
            if member.refresh_token is not None:
                refreshed = self._refresh_tokens.get(member.refresh_token)
                if refreshed is not None and refreshed.grant_id == grant_id:
                    del self._refresh_tokens[member.refresh_token]
        grant.clear()

    def _refuse_consumed(self, code: str, now: float) -> None:
        """Revoke the grant of ``code`` and raise, if ``code`` was consumed and has not expired. Lock held.

        Raises:
            CodeReplayError: it was.
        """
        consumed = self._consumed.get(code)
        if consumed is not None and now < consumed.expires_at:
            self._revoke_grant(consumed.grant_id)
            raise CodeReplayError("the authorization code was already used; its grant is revoked")

    def _refuse_retired(self, refresh_token: str) -> None:
        """Revoke the grant of ``refresh_token`` and raise, if it was retired and has not expired. Lock held.

        Raises:
            RefreshTokenReuseError: it was.
        """
        retired = self._retired.get(refresh_token)
        if retired is not None and not retired.is_refresh_expired(self._clock()):
            self._revoke_grant(retired.grant_id)
            raise RefreshTokenReuseError("the refresh token was already used; its grant is revoked")

    def _forget_latest_of_user(self, access_token: AccessToken) -> None:
        """Drop the user entry of ``access_token`` if it still points to it. Lock held."""
        user_key = _user_key(access_token)
        if self._latest_of_user.get(user_key) == access_token.token:
            del self._latest_of_user[user_key]

    def _purge(self, now: float) -> None:
        """Drop every record, marker and grant that has expired by ``now``. Lock held."""
        expiries = self._expiries
        grants = self._grants
        while expiries and expiries[0][0] <= now:
            _, kind, key, grant_id = heapq.heappop(expiries)
            if kind == "token":
                access_token = self._tokens.get(key)
                if access_token is not None and access_token.is_expired(now):
                    del self._tokens[key]
                    self._forget_latest_of_user(access_token)
            elif kind == "refresh":
                refreshed = self._refresh_tokens.get(key)
                if refreshed is not None and refreshed.is_refresh_expired(now):
                    del self._refresh_tokens[key]
                retired = self._retired.get(key)
                if retired is not None and retired.is_refresh_expired(now):
                    del self._retired[key]
            elif kind == "code":
                authorization_code = self._codes.get(key)
                if authorization_code is not None and authorization_code.is_expired(now):
                    self._codes.pop(key, None)  # delete_code may have taken it meanwhile
                consumed = self._consumed.get(key)
                if consumed is not None and consumed.is_expired(now):
                    del self._consumed[key]
            grant = grants.get(grant_id)
            if grant is not None:
                grant_expires_at = _expiry_of(grant)
                if grant_expires_at is not None and grant_expires_at <= now:
                    self._forget_grant(grant_id, grant)

    def _forget_grant(self, grant_id: str, grant: _GrantState) -> None:
        """Drop an expired grant: everything issued in it has expired. Lock held."""
        del self._grants[grant_id]
        if grant.user_id is not None:
            grants = self._grants_of_user[grant.user_id]
            grants.discard(grant_id)
            if not grants:
                del self._grants_of_user[grant.user_id]

    def _compact_if_stale(self) -> None:
        """Rebuild the expiry heap from the live entries if more than half of it is entries of
        replaced or deleted ones; either way, look again when it has doubled. Lock held.

        Entries of consumed or deleted codes are left to expire (minutes); revocations call this
        as soon as the heap is more than twice the live set."""
        expiries: list[_Entry] = self._expiries
        if len(expiries) > 2 * len(self) + _MIN_COMPACTION:
            expiries = []
            for token, access_token in self._tokens.items():
                if access_token.expires_at is not None:
                    expiries.append((access_token.expires_at, "token", token, access_token.grant_id))
            for refresh_token, access_token in (*self._refresh_tokens.items(), *self._retired.items()):
                if access_token.refresh_expires_at is not None:
                    expiries.append((access_token.refresh_expires_at, "refresh", refresh_token, access_token.grant_id))
            # delete_code pops without the lock: the copy is taken in one step.
            for code, authorization_code in (*self._codes.copy().items(), *self._consumed.items()):
                expiries.append((authorization_code.expires_at, "code", code, authorization_code.grant_id))
            # The entries of deleted records are gone: every grant gets its own.
            for grant_id, grant in self._grants.items():
                grant_expires_at = _expiry_of(grant)
                if grant_expires_at is not None:
                    expiries.append((grant_expires_at, "grant", grant_id, grant_id))
            heapq.heapify(expiries)
            self._expiries = expiries
        self._compact_above = 2 * len(expiries) + _MIN_COMPACTION

    def __len__(self) -> int:
        """How many entries the store holds: access tokens, refresh tokens, codes, grants, and the
        markers of consumed codes and retired refresh tokens."""
        return len(self._tokens) + len(self._refresh_tokens) + len(self._codes) + len(self._grants) + len(self._consumed) + len(self._retired)


def _refuse_to_join(grant: _GrantState) -> NoReturn:
    """Raise why a record cannot be saved into ``grant``.

    Raises:
        GrantRevokedError: the grant was revoked.
        RecordValueError: the grant belongs to another client.
    """
    if isinstance(grant, _Grant) and grant.revoked:
        raise GrantRevokedError("the record's grant was revoked")
    raise RecordValueError("grant_id names a grant of another client")


def _expiry_of(grant: _GrantState) -> int | None:
    """Until when ``grant`` must be kept: the latest expiry of what was stored in it; None: never.

    Also the expiry of a member, for the grant it joins. A record (standing for its grant, or
    joining one) was stored with at least one live part, so its latest expiry is that of a stored
    part: a part that was not stored had expired before the live one would."""
    if isinstance(grant, _Grant):
        return grant.expires_at
    if isinstance(grant, AuthorizationCode):
        return grant.expires_at
    expires_at, refresh_expires_at = grant.expires_at, grant.refresh_expires_at
    if grant.refresh_token is None:
        return expires_at
    if expires_at is None or refresh_expires_at is None:
        return None
    return expires_at if expires_at > refresh_expires_at else refresh_expires_at


def _user_key(access_token: AccessToken) -> _UserKey:
    return (access_token.client_id, access_token.grant_type, access_token.user_id)
