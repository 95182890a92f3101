"""MemcacheTokenStore on real memcached servers, through every supported client set-up."""

from __future__ import annotations

import hashlib
import re
import secrets
import socket
import time
import types
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest
from pymemcache.client.base import Client

from oauth2_store import AccessToken, AuthorizationCode
from oauth2_store.clock import ManualClock
from oauth2_store.codec import ACCESS_TOKEN_CODEC, AUTH_CODE_CODEC
from oauth2_store.error import (
    AccessTokenNotFound,
    AuthCodeNotFound,
    CodecError,
    CodeReplayError,
    GrantRevokedError,
    RecordTooLargeError,
    RefreshTokenReuseError,
    StoreUnavailableError,
)
from oauth2_store.sealing import secret_key, server_key, unseal
from oauth2_store.store import AccessTokenStore, AuthCodeStore
from oauth2_store.store.memcache import MAX_VALUE_SIZE, MemcacheTokenStore
from oauth2_store.testing import LifecycleTokenStoreContract
from tests.memcache_backends import BACKENDS, REISSUE_KEY, Backend, _host_port
from tests.memcached_server import MemcachedServer
from tests.support import TYPEGUARD_RUN


@pytest.fixture(params=BACKENDS, ids=[backend.name for backend in BACKENDS])
def backend(request: pytest.FixtureRequest) -> Backend:
    parameter: Backend = request.param
    return parameter


@pytest.fixture
def addresses(backend: Backend, memcached: MemcachedServer, memcached_trio: list[MemcachedServer]) -> list[str]:
    return [memcached.address] if backend.servers == 1 else [server.address for server in memcached_trio]


class TestMemcacheTokenStore(LifecycleTokenStoreContract):
    """The whole conformance suite, once per client set-up."""

    racing_threads = 8

    @pytest.fixture(autouse=True)
    def _backend(self, backend: Backend, addresses: list[str]) -> Iterator[None]:
        self.backend = backend
        self.addresses = addresses
        self.stores: list[MemcacheTokenStore] = []
        yield
        for store in self.stores:
            store.close()


    def make_store(self, clock: ManualClock) -> MemcacheTokenStore:
        store = self.backend.make_store(self.addresses, clock)
        self.stores.append(store)
        return store


def test_documented_bases() -> None:
    assert issubclass(MemcacheTokenStore, AccessTokenStore) and issubclass(MemcacheTokenStore, AuthCodeStore)


# Keys, values and TTLs, inspected on the server itself.

DAY = 86400


def _expected_key(prefix: str, kind: str, secret: str) -> str:
    """The documented key layout, computed independently of the package."""
    return f"{prefix}:{kind}:{hashlib.sha256(secret.encode()).hexdigest()}"


def _token(now: int, **changes: Any) -> AccessToken:
    fields: dict[str, Any] = dict(
        client_id="client",
        grant_type="authorization_code",
        token=f"tok-{secrets.token_hex(8)}",
        expires_at=now + 3600,
        refresh_token=f"ref-{secrets.token_hex(8)}",
        refresh_expires_at=now + 7 * DAY,
        user_id="user-1",
        scopes=["read"],
    )
    fields.update(changes)
    return AccessToken(**fields)


@pytest.fixture
def store(memcached: MemcachedServer) -> Iterator[MemcacheTokenStore]:
    built = MemcacheTokenStore(servers=[memcached.address], prefix=f"keys-{secrets.token_hex(6)}", reissue_key=REISSUE_KEY)
    yield built
    built.close()


@pytest.mark.reliability
def test_keys_follow_the_documented_layout_and_never_hold_a_secret(memcached: MemcachedServer, store: MemcacheTokenStore) -> None:
    now = int(time.time())
    prefix = store._prefix
    awkward = "tok with spaces\r\nflush_all\r\n ünïcödé " + "x" * 2048
    token = _token(now, token=awkward)
    code = AuthorizationCode("client", "code \x00 secret", now + 600, None, ["read"])
    store.save_token(token)
    store.save_code(code)
    assert token.refresh_token is not None
    ours = sorted(key for key in memcached.keys() if key.startswith(prefix + ":"))
    assert ours == sorted(
        [
            _expected_key(prefix, "t", awkward),
            _expected_key(prefix, "r", token.refresh_token),
            _expected_key(prefix, "c", code.code),
            _expected_key(prefix, "u", "6:client18:authorization_code6:user-1"),
            # The lifecycle's: both grants, the owners' epochs and indexes.
            _expected_key(prefix, "g", token.grant_id),
            _expected_key(prefix, "g", code.grant_id),
            _expected_key(prefix, "e", "c:client"),
            _expected_key(prefix, "e", "u:user-1"),
            _expected_key(prefix, "e", "uc:6:user-1client"),
            _expected_key(prefix, "i", "c:client"),
            _expected_key(prefix, "i", "u:user-1"),
        ]
    )
    for key in ours:
        assert len(key) <= 250 and re.fullmatch(r"[!-~]+", key)
        for secret in (awkward, token.refresh_token, code.code, "tok with", "ref-"):
            assert secret not in key
    assert memcached.command(b"version\r\n").startswith(b"VERSION")  # no injected command ran
    assert store.fetch_by_token(awkward) == token


def test_values_are_the_codec_bytes_sealed_under_the_secret_they_are_found_by(memcached: MemcachedServer, store: MemcacheTokenStore) -> None:
    now = int(time.time())
    token = _token(now)
    code = AuthorizationCode("client", f"code-{secrets.token_hex(8)}", now + 600, None, ["read"], user_id="user-1")
    store.save_token(token)
    store.save_code(code)
    assert token.refresh_token is not None
    raw_client = Client(_host_port(store.servers))
    try:
        sealed = {
            "t": (raw_client.get(_expected_key(store._prefix, "t", token.token)), secret_key(token.token), ACCESS_TOKEN_CODEC.encode(token)),
            "r": (raw_client.get(_expected_key(store._prefix, "r", token.refresh_token)), secret_key(token.refresh_token), ACCESS_TOKEN_CODEC.encode(token)),
            "u": (raw_client.get(_expected_key(store._prefix, "u", "6:client18:authorization_code6:user-1")), server_key(REISSUE_KEY), ACCESS_TOKEN_CODEC.encode(token)),
            "c": (raw_client.get(_expected_key(store._prefix, "c", code.code)), secret_key(code.code), AUTH_CODE_CODEC.encode(code)),
        }
    finally:
        raw_client.close()
    for kind, (value, key, payload) in sealed.items():
        assert isinstance(value, bytes) and value.startswith(b"sealed:1:"), kind
        assert unseal(key, kind.encode(), value) == payload, kind
        with pytest.raises(CodecError):  # only its own key opens it, and only for its own kind of key
            unseal(secret_key("a guess"), kind.encode(), value)
        with pytest.raises(CodecError):
            unseal(key, b"t" if kind != "t" else b"r", value)
    # Everything the server holds under the prefix, as a dump of it would show it: no secret.
    dumped = b"".join(raw for raw in (raw_client.get(key) for key in memcached.keys() if key.startswith(store._prefix)) if raw)
    for secret in (token.token, token.refresh_token, code.code):
        assert secret.encode() not in dumped


def test_a_value_written_before_sealing_is_still_read(store: MemcacheTokenStore) -> None:
    token = _token(int(time.time()))
    store.save_token(token)
    raw_client = Client(_host_port(store.servers))
    try:
        raw_client.set(_expected_key(store._prefix, "t", token.token), ACCESS_TOKEN_CODEC.encode(token))
    finally:
        raw_client.close()
    assert store.fetch_by_token(token.token) == token


def test_a_plain_user_entry_planted_in_the_cache_is_never_handed_out(store: MemcacheTokenStore) -> None:
    # Whoever can write to memcached knows the tokens they make up: a plain record planted under a
    # user's entry would hand their token to that user's next unique_token request.
    planted = _token(int(time.time()), token="attacker-knows-this")
    store.save_token(planted)
    raw_client = Client(_host_port(store.servers))
    try:
        raw_client.set(_expected_key(store._prefix, "u", "6:client18:authorization_code6:user-1"), ACCESS_TOKEN_CODEC.encode(planted))
    finally:
        raw_client.close()
    with pytest.raises(CodecError):
        store.fetch_existing_token_of_user(planted.client_id, planted.grant_type, planted.user_id)


def test_without_a_reissue_key_no_user_entry_is_written_and_none_is_handed_out(memcached: MemcachedServer) -> None:
    store = MemcacheTokenStore(servers=[memcached.address], prefix=f"noreissue-{secrets.token_hex(6)}")
    try:
        token = _token(int(time.time()))
        store.save_token(token)
        assert not store.reissues_tokens
        assert _expected_key(store._prefix, "u", "6:client18:authorization_code6:user-1") not in memcached.keys()
        with pytest.raises(AccessTokenNotFound, match="reissue_key"):
            store.fetch_existing_token_of_user(token.client_id, token.grant_type, token.user_id)
        assert store.fetch_by_token(token.token) == token
    finally:
        store.close()
    with pytest.raises(ValueError, match="32 random bytes"):
        MemcacheTokenStore(servers=[memcached.address], reissue_key=b"short")


def test_stores_with_different_prefixes_never_see_each_others_records(memcached: MemcachedServer) -> None:
    one = MemcacheTokenStore(servers=[memcached.address], prefix=f"one-{secrets.token_hex(4)}")
    two = MemcacheTokenStore(servers=[memcached.address], prefix=f"two-{secrets.token_hex(4)}")
    try:
        token = _token(int(time.time()))
        one.save_token(token)
        with pytest.raises(AccessTokenNotFound):
            two.fetch_by_token(token.token)
        assert one.fetch_by_token(token.token) == token
    finally:
        one.close()
        two.close()


@pytest.mark.reliability
@pytest.mark.parametrize("prefix", ["", "has space", "new\nline", "x" * 101, "ünï", "a/b", "\r\nflush_all\r\n", "nul\x00", "oauth2\n", "x" * 300])
def test_invalid_prefix_is_refused(memcached: MemcachedServer, prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        MemcacheTokenStore(servers=[memcached.address], prefix=prefix)


@pytest.mark.reliability
@pytest.mark.parametrize("prefix", [None, b"oauth2", 5], ids=["None", "bytes", "int"])
def test_a_prefix_that_is_not_a_str_is_refused_naming_the_prefix(memcached: MemcachedServer, prefix: object) -> None:
    with pytest.raises(TypeError, match="prefix"):
        MemcacheTokenStore(servers=[memcached.address], prefix=prefix)  # type: ignore[call-overload]  # the point: not a str


class FormatsAsCommand(str):
    """A str that holds a valid prefix but formats as memcached command text."""

    def __format__(self, spec: str) -> str:
        return "x\r\nflush_all\r\n"

    def __str__(self) -> str:
        return "x\r\nflush_all\r\n"


@pytest.mark.reliability
@pytest.mark.parametrize("extra", [{}, {"binary": False, "behaviors": {"tcp_nodelay": True}}, {"debug": 0}], ids=["pymemcache", "pylibmc", "python-memcached"])
def test_keys_use_the_prefix_text_that_was_checked_whatever_its_str_subclass_does(own_memcached: MemcachedServer, extra: dict[str, Any]) -> None:
    # The prefix was checked as "checked", then formatted into keys by its own __format__: pylibmc's
    # ASCII protocol sent the command text, and memcached ran flush_all.
    store = MemcacheTokenStore(servers=[own_memcached.address], prefix=FormatsAsCommand("checked"), **extra)
    try:
        token = _token(int(time.time()))
        store.save_token(token)
        assert store.fetch_by_token(token.token) == token
    finally:
        store.close()
    keys = own_memcached.keys()
    assert keys and all(re.fullmatch(r"checked:[trucgkxei]:[0-9a-f]{64}", key) for key in keys)
    assert own_memcached.stats()["cmd_flush"] == "0"


@pytest.mark.reliability
def test_lookups_of_strings_no_record_can_hold_are_misses(store: MemcacheTokenStore) -> None:
    """A lone surrogate cannot be in a record, but can be in a lookup (a framework decoding a
    request with surrogateescape): it is a miss, as in the in-memory store, not a UnicodeEncodeError
    (which is not a StoreError, and whose repr holds the whole string)."""
    lone = "tok-\udcff-do-not-log"
    misses: list[tuple[Callable[[], object], type[Exception]]] = [
        (lambda: store.fetch_by_token(lone), AccessTokenNotFound),
        (lambda: store.fetch_by_refresh_token(lone), AccessTokenNotFound),
        (lambda: store.delete_refresh_token(lone), AccessTokenNotFound),
        (lambda: store.fetch_existing_token_of_user(lone, lone, lone), AccessTokenNotFound),
        (lambda: store.fetch_by_code(lone), AuthCodeNotFound),
        (lambda: store.consume_code(lone), AuthCodeNotFound),
    ]
    for call, miss in misses:
        with pytest.raises(miss) as caught:
            call()
        assert lone not in repr(caught.value)
    store.delete_code(lone)  # deleting a code that is not there is not an error


def test_ttls_follow_the_records(memcached: MemcachedServer, store: MemcacheTokenStore) -> None:
    now = int(time.time())
    token = _token(now, expires_at=now + 40 * DAY, refresh_expires_at=None)
    short = _token(now, expires_at=now + 300, refresh_expires_at=now + 3 * DAY)
    code = AuthorizationCode("client", f"code-{secrets.token_hex(8)}", now + 600, None, [])
    for saved in (token, short):
        store.save_token(saved)
    store.save_code(code)
    assert token.refresh_token is not None and short.refresh_token is not None
    prefix = store._prefix
    user_key = _expected_key(prefix, "u", "6:client18:authorization_code6:user-1")

    def ttl(kind: str, secret: str) -> int | None:
        return memcached.ttl(_expected_key(prefix, kind, secret))

    # Beyond 30 days memcached takes an absolute time: a 40-day token must live 40 days.
    # memcached's clock ticks once a second and the machine may be slow: allow a few seconds.
    def near(actual: int | None, expected: int) -> bool:
        return actual is not None and expected - 10 <= actual <= expected + 2

    assert near(ttl("t", token.token), 40 * DAY)
    assert ttl("r", token.refresh_token) == -1  # never expires
    assert near(ttl("t", short.token), 300)
    assert near(ttl("r", short.refresh_token), 3 * DAY)
    assert near(memcached.ttl(user_key), 300)  # the latest token of the user: `short`
    assert near(ttl("c", code.code), 600)


def test_expired_parts_are_not_written(memcached: MemcachedServer, store: MemcacheTokenStore) -> None:
    now = int(time.time())
    token = _token(now, expires_at=now - 10, refresh_expires_at=now + 60)
    store.save_token(token)
    store.save_code(AuthorizationCode("client", "old-code", now - 1, None, []))
    assert token.refresh_token is not None
    # The live refresh token joins its grant; the expired code starts none.
    lifecycle = [("g", token.grant_id), ("e", "c:client"), ("e", "u:user-1"), ("e", "uc:6:user-1client"), ("i", "c:client"), ("i", "u:user-1")]
    expected = [_expected_key(store._prefix, "r", token.refresh_token)] + [_expected_key(store._prefix, kind, name) for kind, name in lifecycle]
    assert sorted(key for key in memcached.keys() if key.startswith(store._prefix + ":")) == sorted(expected)


def test_reads_check_expiry_whatever_memcached_still_holds(memcached: MemcachedServer) -> None:
    clock = ManualClock()
    store = MemcacheTokenStore(servers=[memcached.address], prefix=f"skew-{secrets.token_hex(4)}", clock=clock)
    try:
        token = _token(int(clock()), expires_at=int(clock()) + 30)
        store.save_token(token)
        clock.advance(30)  # this host's clock says expired; memcached's TTL has 30 s left
        assert memcached.ttl(_expected_key(store._prefix, "t", token.token)) is not None
        with pytest.raises(AccessTokenNotFound):
            store.fetch_by_token(token.token)
    finally:
        store.close()


class CountingSocket(socket.socket):
    """A socket that counts requests: pymemcache sends each request with one sendall."""

    requests = 0

    def sendall(self, data: Any, flags: int = 0) -> None:
        CountingSocket.requests += 1
        super().sendall(data, flags)


def _requests(action: Callable[[], object]) -> int:
    before = CountingSocket.requests
    action()
    return CountingSocket.requests - before


def test_round_trips_per_operation(memcached: MemcachedServer) -> None:
    counting = types.SimpleNamespace(**{name: getattr(socket, name) for name in dir(socket) if not name.startswith("__")})
    counting.socket = CountingSocket
    client = Client(_host_port(memcached.address), socket_module=counting, timeout=2)  # type: ignore[arg-type]  # a module stand-in
    store = MemcacheTokenStore(mc=client, prefix=f"rt-{secrets.token_hex(4)}", reissue_key=REISSUE_KEY)
    try:
        now = int(time.time())
        with pytest.raises(AuthCodeNotFound):
            store.fetch_by_code("connect first")
        # A grant's first record: the epochs read (three created: a new client and user), the
        # entry added, both owner indexes appended to (and created), the record written.
        first = AuthorizationCode("client", f"c-{secrets.token_hex(4)}", now + 600, None, [], user_id="user-1")
        assert _requests(lambda: store.save_code(first)) == 10
        code = AuthorizationCode("client", f"c-{secrets.token_hex(4)}", now + 600, None, [], user_id="user-1")
        assert _requests(lambda: store.save_code(code)) == 5  # epochs read, entry added, two index appends, the code
        assert _requests(lambda: store.fetch_by_code(code.code)) == 2  # the code with its marker, then the grant
        assert _requests(lambda: store.consume_code(code.code)) == 4  # those two, the marker's add, the delete
        # Into an existing grant: the member appended, a write per expiry, the grant re-checked, the entry touched.
        two_expiries = _token(now, grant_id=code.grant_id)
        assert _requests(lambda: store.save_token(two_expiries)) == 5
        same_expiry = _token(now, expires_at=now + 3600, refresh_expires_at=now + 3600, grant_id=code.grant_id)
        assert _requests(lambda: store.save_token(same_expiry)) == 4
        assert _requests(lambda: store.fetch_by_token(two_expiries.token)) == 1  # the resource server's path
        assert _requests(lambda: store.fetch_by_refresh_token(two_expiries.refresh_token or "")) == 2  # with its marker, then the grant
        assert _requests(lambda: store.fetch_existing_token_of_user("client", "authorization_code", "user-1")) == 2  # the user entry, then the token's own key
        assert _requests(lambda: store.delete_refresh_token(two_expiries.refresh_token or "")) == 4  # the fetch, the marker's add, one delete
        # A grant of its own (the password grant's): the append misses, then as a first record.
        no_refresh = _token(now, refresh_token=None, refresh_expires_at=None)
        assert _requests(lambda: store.save_token(no_refresh)) == 7
        assert _requests(lambda: store.revoke_token(no_refresh.token, "access_token")) == 2  # read the refresh key, delete every key at once
        assert _requests(lambda: store.revoke_token(same_expiry.refresh_token or "")) == 5  # and the grant: prepend, read, delete its tokens
        assert _requests(lambda: store.revoke_user("user-1")) == 4  # a new epoch, the index, its grants, their tokens
        assert _requests(lambda: store.revoke_client("client")) == 4
        assert _requests(lambda: store.delete_code(code.code)) == 1
    finally:
        store.close()


@pytest.mark.reliability
def test_a_value_that_does_not_decode_raises_codec_error(memcached: MemcachedServer, store: MemcacheTokenStore) -> None:
    raw = Client(_host_port(memcached.address), default_noreply=False)
    try:
        raw.set(_expected_key(store._prefix, "t", "planted"), b"token:1:[garbage")
        raw.set(_expected_key(store._prefix, "c", "planted"), b"token:1:[]")
        raw.set(_expected_key(store._prefix, "r", "planted"), 42)  # stored as b"42"
    finally:
        raw.close()
    with pytest.raises(CodecError, match="invalid JSON"):
        store.fetch_by_token("planted")
    with pytest.raises(CodecError, match="holds a 'token' record"):
        store.consume_code("planted")
    with pytest.raises(CodecError):
        store.fetch_by_refresh_token("planted")
    # Revoking through a corrupt refresh record still deletes the token's own keys, and says so.
    with pytest.raises(CodecError):
        store.revoke_token("planted")
    with pytest.raises(AccessTokenNotFound):
        store.fetch_by_refresh_token("planted")
    with pytest.raises(AccessTokenNotFound):
        store.fetch_by_token("planted")


OVERSIZED: dict[str, Callable[[int], dict[str, Any]]] = {
    "one long string": lambda size: {"data": {"blob": "x" * 2 * size}},
    "many data keys": lambda size: {"data": {f"k{i}": i for i in range(size // 8)}},
    "strings in nested lists": lambda size: {"data": {"deep": [[["v" * 40] * 20] * (size // 700)]}},
    "many scopes": lambda size: {"scopes": [f"scope-{i}" for i in range(size // 5)]},
}
"""Records a record accepts (JSON-compatible, within the nesting limit) that encode to more than
``size`` bytes: 200,000 scopes, 130,000 data keys or a 2 MB string against memcached's 1 MiB item."""


@pytest.mark.reliability
@pytest.mark.parametrize("shape", OVERSIZED)
@pytest.mark.parametrize("extra", [{}, {"binary": True}, {"debug": 0}], ids=["pymemcache", "pylibmc", "python-memcached"])
def test_a_record_larger_than_memcached_takes_is_refused_before_writing(memcached: MemcachedServer, extra: dict[str, Any], shape: str) -> None:
    # The typeguard run checks every call of the validation that a million-byte record goes through,
    # 100,000s of them: it refuses at the store's own max_value_size of 64 KiB instead.
    limit = 64 * 1024 if TYPEGUARD_RUN else MAX_VALUE_SIZE
    store = MemcacheTokenStore(servers=[memcached.address], prefix=f"big-{secrets.token_hex(6)}", max_value_size=limit, **extra)
    try:
        now = int(time.time())
        earlier = _token(now)
        store.save_token(earlier)
        ours = sorted(key for key in memcached.keys() if key.startswith(store._prefix + ":"))
        oversized = OVERSIZED[shape](limit)
        # The same token, refresh token and user, now too large: refused, and the earlier version stays whole.
        with pytest.raises(RecordTooLargeError, match="bytes"):
            store.save_token(attrs.evolve(earlier, **oversized))
        code = AuthorizationCode("client", f"c-{secrets.token_hex(8)}", now + 600, None, oversized.get("scopes", []), oversized.get("data"))
        with pytest.raises(RecordTooLargeError, match="bytes"):
            store.save_code(code)
        assert sorted(key for key in memcached.keys() if key.startswith(store._prefix + ":")) == ours
        assert store.fetch_by_token(earlier.token) == earlier
        assert store.fetch_by_refresh_token(earlier.refresh_token or "") == earlier
        with pytest.raises(AuthCodeNotFound):
            store.fetch_by_code(code.code)
    finally:
        store.close()


@pytest.mark.reliability
@pytest.mark.parametrize(
    ("extra", "error", "message"),
    [
        ({}, RecordTooLargeError, "too large"),
        ({"binary": True}, RecordTooLargeError, "too large"),
        # python-memcached reports a refused value like any other failure.
        ({"debug": 0}, StoreUnavailableError, "does not say why"),
    ],
    ids=["pymemcache", "pylibmc", "python-memcached"],
)
def test_a_server_with_a_smaller_item_limit_leaves_nothing_half_written(extra: dict[str, Any], error: type[Exception], message: str) -> None:
    small = MemcachedServer(max_item_size=2048).start()
    store = MemcacheTokenStore(servers=[small.address], prefix="small", **extra)
    try:
        now = int(time.time())
        fits = _token(now)
        store.save_token(fits)
        too_big = _token(now, data={"blob": "x" * 4000})
        with pytest.raises(error, match=message):
            store.save_token(too_big)
        assert small.ttl(_expected_key("small", "t", too_big.token)) is None
        with pytest.raises(AccessTokenNotFound):
            store.fetch_by_refresh_token(too_big.refresh_token or "")
        assert store.fetch_by_token(fits.token) == fits
    finally:
        store.close()
        small.stop()


def test_expiries_beyond_2038_never_expire_in_memcached_and_still_expire_on_read(memcached: MemcachedServer) -> None:
    # memcached answers STORED to an absolute time of 2**31 or later, then drops the item.
    clock = ManualClock()
    store = MemcacheTokenStore(servers=[memcached.address], prefix=f"y2038-{secrets.token_hex(4)}", clock=clock)
    try:
        far = 4_102_444_800  # 2100-01-01
        token = _token(int(clock()), expires_at=far, refresh_expires_at=far)
        store.save_token(token)
        assert memcached.ttl(_expected_key(store._prefix, "t", token.token)) == -1
        assert store.fetch_by_token(token.token) == token
        clock.advance(far - int(clock()))
        with pytest.raises(AccessTokenNotFound):
            store.fetch_by_token(token.token)
    finally:
        store.close()


class _RacedAdds:
    """Wraps a store's connection so that, just before this store's ``add`` of a marker, ``rival``
    runs: the interleaving where another process wins between this caller's read and its add."""

    def __init__(self, store: MemcacheTokenStore, rival: Callable[[], object]) -> None:
        self._inner = store._connection
        self._rival: Callable[[], object] | None = rival
        self.rival_result: object = None

    def add(self, key: str, value: bytes, expire: int) -> bool:
        if self._rival is not None:
            rival, self._rival = self._rival, None
            self.rival_result = rival()
        return self._inner.add(key, value, expire)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_a_caller_that_loses_the_marker_race_is_a_replay_or_reuse_and_ends_the_grant(memcached: MemcachedServer) -> None:
    """Between a caller's read of a live code (or refresh token) and its add of the marker, another
    caller wins: the loser gets CodeReplayError (RefreshTokenReuseError), never a plain miss, and
    the grant ends, the winner's token included."""
    prefix = f"lose-{secrets.token_hex(4)}"
    loser = MemcacheTokenStore(servers=[memcached.address], prefix=prefix)
    winner = MemcacheTokenStore(servers=[memcached.address], prefix=prefix)
    try:
        now = int(time.time())
        code = AuthorizationCode("client", f"code-{secrets.token_hex(8)}", now + 600, None, [], user_id="user-1")
        winner.save_code(code)
        raced = _RacedAdds(loser, lambda: winner.consume_code(code.code))
        loser._connection = raced
        with pytest.raises(CodeReplayError):
            loser.consume_code(code.code)
        assert raced.rival_result == code
        issued = _token(now, grant_id=code.grant_id)
        with pytest.raises(GrantRevokedError):
            winner.save_token(issued)

        token = _token(now)
        winner.save_token(token)
        refreshed = _token(now, grant_id=token.grant_id)

        def rotate() -> None:  # the winner rotates, and saves the new token into the grant
            winner.delete_refresh_token(token.refresh_token or "")
            winner.save_token(refreshed)

        raced = _RacedAdds(loser, rotate)
        loser._connection = raced
        with pytest.raises(RefreshTokenReuseError):
            loser.delete_refresh_token(token.refresh_token or "")
        with pytest.raises(AccessTokenNotFound):
            winner.fetch_by_refresh_token(refreshed.refresh_token or "")
        with pytest.raises(AccessTokenNotFound):
            winner.fetch_by_token(refreshed.token)
    finally:
        loser.close()
        winner.close()
