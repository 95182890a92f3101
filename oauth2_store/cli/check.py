"""``oauth2-store check URL``: the store contract, checked against a live deployment.

Runs under a fresh random prefix, so it never reads or touches real records, and deletes what it
wrote. Each check prints one line of a pass/fail table; a store that cannot be reached stops the
run at the first check.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import TextIO


from oauth2_store.error import AccessTokenNotFound, AuthCodeNotFound, CodecError, StoreError, StoreUnavailableError
from oauth2_store.models import AccessToken, AuthorizationCode
from oauth2_store.protocols import TokenStoreProtocol
from oauth2_store.store.keyvalue import KeyValueTokenStore
from oauth2_store.store.memcache import MemcacheTokenStore
from oauth2_store.store.redis import RedisTokenStore
from oauth2_store.urls import discard_store, open_store, redact_url

__all__ = ["CheckFailed", "CheckSkipped", "run_checks"]

DAY = 86400


class CheckFailed(Exception):
    """A check found the store breaking its contract; the message says how."""


class CheckSkipped(Exception):
    """A check does not apply to this store, or the store cannot show what it checks."""


class _Checker:
    """The checks, sharing one store and the records they create (deleted at the end)."""

    def __init__(self, store: TokenStoreProtocol) -> None:
        self.store = store
        self.tokens: list[AccessToken] = []
        self.codes: list[AuthorizationCode] = []

    def token(self, lifetime: int = 3600) -> AccessToken:
        now = int(time.time())
        token = AccessToken(
            "oauth2-store-check",
            "authorization_code",
            secrets.token_urlsafe(24),
            {"check": True},
            now + lifetime,
            secrets.token_urlsafe(24),
            ["read"],
            refresh_expires_at=now + lifetime + 3600,
            user_id=secrets.token_hex(8),
        )
        self.tokens.append(token)
        return token

    def code(self) -> AuthorizationCode:
        code = AuthorizationCode("oauth2-store-check", secrets.token_urlsafe(24), int(time.time()) + 600, "https://check.invalid/cb", ["read"])
        self.codes.append(code)
        return code

    def reachable(self) -> str:
        if isinstance(self.store, MemcacheTokenStore):
            # Every server, each on its own: a lookup reaches only the server its key hashes to.
            dead = []
            for server in _servers(self.store):
                try:
                    _raw(server, b"version\r\n", b"\r\n")
                except StoreUnavailableError:
                    dead.append(f"{server[0]}:{server[1]}")
            if dead:
                raise StoreUnavailableError(f"{len(dead)} of {len(_servers(self.store))} servers did not answer: {', '.join(dead)}")
        _expect_miss(AccessTokenNotFound, lambda: self.store.fetch_by_token(secrets.token_urlsafe(24)))
        return f"answers ({_describe(self.store)})"

    def token_round_trip(self) -> str:
        token = self.token()
        self.store.save_token(token)
        assert token.refresh_token is not None and token.user_id is not None
        _expect(self.store.fetch_by_token(token.token) == token, "fetch_by_token returned another record")
        _expect(self.store.fetch_by_refresh_token(token.refresh_token) == token, "fetch_by_refresh_token returned another record")
        if not getattr(self.store, "reissues_tokens", True):  # a shared store without a reissue_key
            _expect_miss(AccessTokenNotFound, lambda: self.store.fetch_existing_token_of_user(token.client_id, token.grant_type, token.user_id))
            return "save_token, fetch_by_token, fetch_by_refresh_token (no reissue_key: fetch_existing_token_of_user finds nothing)"
        latest = self.store.fetch_existing_token_of_user(token.client_id, token.grant_type, token.user_id)
        _expect(latest == token, "fetch_existing_token_of_user returned another record")
        return "save_token, fetch_by_token, fetch_by_refresh_token, fetch_existing_token_of_user"

    def misses(self) -> str:
        unknown = secrets.token_urlsafe(24)
        _expect_miss(AccessTokenNotFound, lambda: self.store.fetch_by_token(unknown))
        _expect_miss(AccessTokenNotFound, lambda: self.store.fetch_by_refresh_token(unknown))
        _expect_miss(AuthCodeNotFound, lambda: self.store.fetch_by_code(unknown))
        _expect_miss(AuthCodeNotFound, lambda: self.store.consume_code(unknown))
        return "unknown token, refresh token and code raise the documented errors"

    def code_used_once(self) -> str:
        code = self.code()
        self.store.save_code(code)
        _expect(self.store.fetch_by_code(code.code) == code, "fetch_by_code returned another record")
        _expect(self.store.consume_code(code.code) == code, "consume_code returned another record")
        _expect_miss(AuthCodeNotFound, lambda: self.store.consume_code(code.code))
        return "consumed, then the replay refused"

    def revocation(self) -> str:
        token = self.token()
        self.store.save_token(token)
        assert token.refresh_token is not None
        self.store.delete_refresh_token(token.refresh_token)
        _expect_miss(AccessTokenNotFound, lambda: self.store.fetch_by_token(token.token))
        _expect_miss(AccessTokenNotFound, lambda: self.store.fetch_by_refresh_token(token.refresh_token or ""))
        revoked = self.token()
        self.store.save_token(revoked)
        self.store.revoke_token(revoked.refresh_token or "", "refresh_token")
        _expect_miss(AccessTokenNotFound, lambda: self.store.fetch_by_token(revoked.token))
        _expect_miss(AccessTokenNotFound, lambda: self.store.fetch_by_refresh_token(revoked.refresh_token or ""))
        self.store.revoke_token(revoked.refresh_token or "")  # RFC 7009: revoking it again is not an error
        return "delete_refresh_token and revoke_token revoke the access and the refresh token"

    def long_lived_token(self) -> str:
        token = self.token(lifetime=40 * DAY)
        self.store.save_token(token)
        _expect(self.store.fetch_by_token(token.token) == token, "a 40-day token was not found right after saving it")
        if isinstance(self.store, RedisTokenStore):
            ttl = self.store._redis.ttl(self.store._key("t", token.token))
        elif isinstance(self.store, MemcacheTokenStore):
            ttl = _server_ttl(self.store, self.store._key("t", token.token))
        else:
            return "a 40-day token is kept"
        if ttl is None:
            raise CheckSkipped("a 40-day token is kept; the server cannot report TTLs (memcached 1.6 meta commands)")
        # memcached's clock ticks once a second: a TTL may read a second or two long.
        _expect(40 * DAY - 60 <= ttl <= 40 * DAY + 2, f"the server keeps a 40-day token for {ttl} s")
        return f"the server keeps a 40-day token for {ttl / DAY:.1f} days"

    def revocation_bound(self) -> str:
        if not isinstance(self.store, KeyValueTokenStore):
            return "exact: revoking a grant, user or client deletes its access tokens at once"
        if self.store._verify_grants:
            return "verify_grants: fetch_by_token refuses a revoked grant's access tokens at once"
        if isinstance(self.store, RedisTokenStore):
            evicting_redis = self.store._redis.evicting_servers()
            if evicting_redis:
                raise CheckSkipped(
                    f"Redis evicts keys under maxmemory on {', '.join(evicting_redis)} (policy not noeviction) and verify_grants is off: a "
                    "revoked grant whose entry or index was evicted keeps its access tokens until their own expiry; set "
                    "maxmemory-policy noeviction or add verify_grants=true to the URL"
                )
            return "no server evicts (noeviction or no maxmemory): revocations delete access tokens through entries and indexes"
        assert isinstance(self.store, MemcacheTokenStore)
        evicting = [server for server in _servers(self.store) if b"STAT evictions off" not in _raw(server, b"stats settings\r\n", b"END\r\n")]
        if evicting:
            raise CheckSkipped(
                f"{len(evicting)} of {len(_servers(self.store))} servers evict (no -M) and verify_grants is off: a revoked grant "
                "whose entry or index was evicted keeps its access tokens until their own expiry; run memcached -M or add "
                "verify_grants=true to the URL"
            )
        return "no server evicts (-M): revocations delete access tokens through entries and indexes (a restart still can lose them)"

    def exactly_once(self, threads: int = 8, codes: int = 10) -> str:
        saved = [self.code() for _ in range(codes)]
        for code in saved:
            self.store.save_code(code)
        wins: Counter[str] = Counter()
        errors: list[BaseException] = []
        lock, start = threading.Lock(), threading.Barrier(threads)

        def racer(offset: int) -> None:
            start.wait()
            for code in saved[offset:] + saved[:offset]:
                try:
                    self.store.consume_code(code.code)
                except AuthCodeNotFound:
                    continue
                except BaseException as error:  # reported below
                    errors.append(error)
                    return
                with lock:
                    wins[code.code] += 1

        racers = [threading.Thread(target=racer, args=(n % codes,)) for n in range(threads)]
        for thread in racers:
            thread.start()
        for thread in racers:
            thread.join()
        if errors:
            raise errors[0]
        doubles = sum(1 for count in wins.values() if count > 1)
        lost = sum(1 for code in saved if wins[code.code] == 0)
        _expect(doubles == 0 and lost == 0, f"{doubles} codes won twice or more, {lost} won by nobody")
        return f"{codes} codes, {threads} concurrent callers: {codes} single wins"

    def corrupt_value(self) -> str:
        if not isinstance(self.store, KeyValueTokenStore):
            raise CheckSkipped(f"not applicable: checked on the key-value stores, whose bytes it writes ({type(self.store).__name__} decodes as strictly)")
        secret = secrets.token_urlsafe(24)
        key = self.store._key("t", secret)
        connection = self.store._connection
        connection.set_many({key: b"not-json!"}, 60)
        try:
            self.store.fetch_by_token(secret)
        except CodecError:
            return "a value that is not a record raises CodecError"
        finally:
            connection.delete_many([key])
        raise CheckFailed("a corrupt value did not raise CodecError")

    def round_trip_time(self, samples: int = 30) -> str:
        token = self.token()
        self.store.save_token(token)
        timings = []
        for _ in range(samples):
            started = time.perf_counter()
            self.store.fetch_by_token(token.token)
            timings.append(time.perf_counter() - started)
        return f"fetch_by_token: median {statistics.median(timings) * 1000:.3f} ms over {samples} calls"

    def clean_up(self) -> None:
        """Delete what the checks wrote so far: tokens revoked with their grants, codes deleted,
        and on memcached and Redis every grant entry, marker, epoch, index and user entry they made."""
        for token in self.tokens:
            self.store.revoke_token(token.token)
            if token.refresh_token is not None:
                self.store.revoke_token(token.refresh_token)  # and the check's grant with it
        if isinstance(self.store, KeyValueTokenStore):
            self.store._connection.delete_many(_lifecycle_keys(self.store, self.tokens, self.codes))
        for code in self.codes:
            self.store.delete_code(code.code)
        self.tokens.clear()
        self.codes.clear()


def _lifecycle_keys(store: KeyValueTokenStore, tokens: list[AccessToken], codes: list[AuthorizationCode]) -> list[str]:
    """The memcached keys the lifecycle wrote for these records, besides the records' own."""
    keys: list[str] = []
    for token in tokens:
        keys += [store._grant_key(token.grant_id), store._user_key(token.client_id, token.grant_type, token.user_id)]
        keys += store._epoch_keys(token.client_id, token.user_id)
        keys += store._index_keys(token.client_id, token.user_id)
        if token.refresh_token is not None:
            keys.append(store._key("x", token.refresh_token))
    for code in codes:
        keys += [store._grant_key(code.grant_id), store._key("k", code.code), *store._epoch_keys(code.client_id, code.user_id)]
        keys += store._index_keys(code.client_id, code.user_id)
    return list(dict.fromkeys(keys))


def run_checks(url: str, out: TextIO) -> bool:
    """Run every check against the store ``url`` names, under a fresh prefix; print a table.

    Returns True when no check failed (a check that does not apply to the store is skipped).

    Raises:
        ValueError: the URL is invalid.
        ImportError: the selected client library is not installed.
    """
    prefix = f"oauth2_store_check_{secrets.token_hex(6)}"  # a valid key prefix and table prefix
    store = open_store(url, prefix=prefix)
    checker = _Checker(store)
    checks: list[tuple[str, Callable[[], str]]] = [
        ("reachable", checker.reachable),
        ("token round trip", checker.token_round_trip),
        ("misses", checker.misses),
        ("code used once", checker.code_used_once),
        ("revocation", checker.revocation),
        ("revocation bound", checker.revocation_bound),
        ("token beyond 30 days", checker.long_lived_token),
        ("exactly-once consume", checker.exactly_once),
        ("corrupt value", checker.corrupt_value),
        ("round-trip time", checker.round_trip_time),
    ]
    out.write(f"checking {redact_url(url)}\n")
    failed = skipped = 0
    try:
        for name, check in checks:
            try:
                detail = check()
                checker.clean_up()  # right away: a 40-day token must not outlive a failed run
            except StoreUnavailableError as error:
                out.write(f"FAIL  {name:<22} store unavailable: {error}\n")
                if checker.tokens or checker.codes:
                    out.write(f"stopped: the store cannot be reached; records under prefix {prefix} expire by themselves\n")
                else:
                    out.write("stopped: the store cannot be reached\n")
                return False
            except CheckSkipped as skip:
                skipped += 1
                out.write(f"SKIP  {name:<22} {skip}\n")
            except (CheckFailed, StoreError) as error:
                failed += 1
                out.write(f"FAIL  {name:<22} {type(error).__name__}: {error}\n")
            else:
                out.write(f"PASS  {name:<22} {detail}\n")
        with contextlib.suppress(Exception):  # a check already reported what went wrong
            checker.clean_up()
    finally:
        with contextlib.suppress(Exception):
            discard_store(store)
    passed = len(checks) - failed - skipped
    out.write(f"{len(checks)} checks: {passed} passed, {failed} failed" + (f", {skipped} skipped\n" if skipped else "\n"))
    return failed == 0


def _expect(condition: bool, failure: str) -> None:
    if not condition:
        raise CheckFailed(failure)


def _expect_miss(error: type[StoreError], call: Callable[[], object]) -> None:
    try:
        call()
    except error:
        return
    raise CheckFailed(f"expected {error.__name__}, got a record")


def _describe(store: TokenStoreProtocol) -> str:
    if isinstance(store, KeyValueTokenStore):
        return f"{store._where} through {store.library}"
    return type(store).__name__


def _servers(store: MemcacheTokenStore) -> list[tuple[str, int]]:
    servers = []
    for server in store.servers.split(","):
        host, _, port = server.rpartition(":")
        servers.append((host, int(port)))
    return servers


RAW_TIMEOUT = 2.0
"""The whole of a raw request to one server (connect, send, read the reply) must take less."""


def _raw(server: tuple[str, int], request: bytes, end: bytes) -> bytes:
    """Send raw protocol text to one memcached server and read the reply up to ``end``.

    Raises:
        StoreUnavailableError: the server failed, or did not answer within RAW_TIMEOUT in all.
    """
    deadline = time.monotonic() + RAW_TIMEOUT
    name = f"{server[0]}:{server[1]}"
    try:
        with socket.create_connection(server, timeout=RAW_TIMEOUT) as connection:
            connection.sendall(request)
            reply = b""
            while not reply.endswith(end):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or len(reply) > 65536:
                    raise StoreUnavailableError(f"memcached at {name} did not answer within {RAW_TIMEOUT} s", name)
                connection.settimeout(remaining)
                chunk = connection.recv(4096)
                if not chunk:
                    break
                reply += chunk
            return reply
    except OSError as error:
        raise StoreUnavailableError(f"memcached at {name} failed: {type(error).__name__}", name) from error


def _server_ttl(store: MemcacheTokenStore, key: str) -> int | None:
    """The TTL a server reports for ``key`` (meta get), or None if no server can tell."""
    for server in _servers(store):
        reply = _raw(server, b"mg %s t\r\n" % key.encode(), b"\r\n")
        if reply.startswith(b"HD"):
            flags = [part[1:] for part in reply.split() if part.startswith(b"t")]
            if not flags or not flags[0].lstrip(b"-").isdigit():
                raise CheckFailed(f"the server's answer to a meta get is malformed: {reply[:40]!r}")
            return int(flags[0])
    return None
