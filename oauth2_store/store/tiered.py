"""A durable store behind a cache: the SQL store holds everything, memcached or Redis answers the
access-token lookups a resource server makes on every request.

:class:`TieredTokenStore` keeps refresh tokens, codes, their replay markers and the grants in a
:class:`~oauth2_store.store.sql.SqlTokenStore` only, and every access token in both: the durable
store is the authority, the cache holds copies of access tokens under their own key (no grant
entries, no markers: nothing there decides a revocation). So:

- a memcached restart or eviction never revokes a refresh token (the cache has none) and never
  revives a revoked one (revocation is decided in the database, and a token missing from the
  cache is read from the database, where a revoked token is gone);
- ``fetch_by_token`` is one cache round trip on a hit; a miss reads the database (and does not
  write the cache: a read racing a revocation could put back what the revocation just deleted);
- every operation that deletes access tokens in the database (revocation, rotation, a replay)
  deletes their cache keys before it returns. If the cache fails then, the operation raises
  :class:`~oauth2_store.error.StoreUnavailableError` after the database committed: the cached copies
  may answer until they expire, never longer than the access token's own lifetime.
"""

from __future__ import annotations

import contextlib

from oauth2_store._digest import secret_digest
from oauth2_store.error import StoreUnavailableError
from oauth2_store.models import AccessToken, AuthorizationCode, require_record
from oauth2_store.protocols import TokenTypeHint
from oauth2_store.store.base import AccessTokenStore, AuthCodeStore
from oauth2_store.store.keyvalue import KeyValueTokenStore
from oauth2_store.store.sql import SqlTokenStore

__all__ = ["TieredTokenStore"]


class TieredTokenStore(AccessTokenStore, AuthCodeStore):
    """Every operation of :class:`~oauth2_store.protocols.LifecycleTokenStoreProtocol`, exactly as
    ``durable`` does them, with access tokens also kept in ``cache`` for ``fetch_by_token``.

    Args:
        durable: The store of record.
        cache: A memcached or Redis store (:class:`~oauth2_store.store.MemcacheTokenStore`,
            :class:`~oauth2_store.store.redis.RedisTokenStore`); only its access-token keys are used.
            Give it a prefix of its own.
    """

    def __init__(self, durable: SqlTokenStore, cache: KeyValueTokenStore) -> None:
        self.durable = durable
        self.cache = cache
        durable.on_tokens_deleted(cache.uncache_access_tokens)

    @property
    def reissues_tokens(self) -> bool:
        """Whether the durable store can hand out a saved token again (it has a ``reissue_key``)."""
        return self.durable.reissues_tokens

    def close(self) -> None:
        """Close both stores' connections."""
        try:
            self.cache.close()
        finally:
            self.durable.close()

    def save_token(self, access_token: AccessToken) -> None:
        """Store ``access_token`` in the cache, then in the database (see
        :meth:`SqlTokenStore.save_token`). Cache first: a revocation that commits between the two
        finds the token's cache key already written, and deletes it; if the database refuses the
        save, the cache key is deleted again.

        Raises:
            RecordTypeError, RecordValueError, GrantRevokedError: as :meth:`SqlTokenStore.save_token`.
            RecordTooLargeError: the token is larger than the cache takes; nothing is stored.
            StoreUnavailableError: the cache or the database failed; the token is not usable.
        """
        if type(access_token) is not AccessToken:
            require_record(access_token, AccessToken, "save_token")
        self.cache.cache_access_token(access_token)
        try:
            self.durable.save_token(access_token)
        except BaseException:
            self._uncache(access_token)
            raise

    def fetch_by_token(self, token: str) -> AccessToken:
        """Return the live access token ``token``: from the cache (one round trip), else from the
        database.

        Raises:
            AccessTokenNotFound: no such token, it was revoked, or it expired.
            CodecError: a stored record is not a valid token record, or not this token's.
            StoreUnavailableError: the cache or, on a miss, the database failed.
        """
        cached = self.cache.cached_access_token(token)
        return cached if cached is not None else self.durable.fetch_by_token(token)

    def fetch_by_refresh_token(self, refresh_token: str) -> AccessToken:
        """As :meth:`SqlTokenStore.fetch_by_refresh_token` (a reuse revokes the grant in both tiers)."""
        return self.durable.fetch_by_refresh_token(refresh_token)

    def fetch_existing_token_of_user(self, client_id: str, grant_type: str, user_id: str | None) -> AccessToken:
        """As :meth:`SqlTokenStore.fetch_existing_token_of_user`."""
        return self.durable.fetch_existing_token_of_user(client_id, grant_type, user_id)

    def delete_refresh_token(self, refresh_token: str) -> None:
        """As :meth:`SqlTokenStore.delete_refresh_token`; the access token leaves the cache too."""
        self.durable.delete_refresh_token(refresh_token)

    def revoke_token(self, token: str, token_type_hint: TokenTypeHint | None = None) -> None:
        """As :meth:`SqlTokenStore.revoke_token`; what it deletes leaves the cache too."""
        self.durable.revoke_token(token, token_type_hint)

    def revoke_grant(self, grant_id: str) -> None:
        """As :meth:`SqlTokenStore.revoke_grant`; the grant's access tokens leave the cache too."""
        self.durable.revoke_grant(grant_id)

    def revoke_user(self, user_id: str, client_id: str | None = None) -> None:
        """As :meth:`SqlTokenStore.revoke_user`; the access tokens leave the cache too."""
        self.durable.revoke_user(user_id, client_id)

    def revoke_client(self, client_id: str) -> None:
        """As :meth:`SqlTokenStore.revoke_client`; the access tokens leave the cache too."""
        self.durable.revoke_client(client_id)

    def save_code(self, authorization_code: AuthorizationCode) -> None:
        """As :meth:`SqlTokenStore.save_code` (codes are kept in the database only)."""
        self.durable.save_code(authorization_code)

    def fetch_by_code(self, code: str) -> AuthorizationCode:
        """As :meth:`SqlTokenStore.fetch_by_code`."""
        return self.durable.fetch_by_code(code)

    def delete_code(self, code: str) -> None:
        """As :meth:`SqlTokenStore.delete_code`."""
        self.durable.delete_code(code)

    def consume_code(self, code: str) -> AuthorizationCode:
        """As :meth:`SqlTokenStore.consume_code` (a replay revokes the grant in both tiers)."""
        return self.durable.consume_code(code)

    def purge(self, limit: int = 10_000) -> int:
        """As :meth:`SqlTokenStore.purge` (the cache expires its keys itself)."""
        return self.durable.purge(limit)

    def _uncache(self, access_token: AccessToken) -> None:
        """Delete the cache key of a token the database did not take. If the cache fails too, the
        database's error is the one to report: the token was never handed out, and its cache key
        expires with it."""
        with contextlib.suppress(StoreUnavailableError):
            self.cache.uncache_access_tokens([secret_digest(access_token.token)])
