"""Setting up MemcacheTokenStore: the documented forms, library selection, and what is refused."""

from __future__ import annotations

import hashlib
import os
import pickle
import secrets
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import memcache
import pylibmc
import pytest
from pymemcache.client.base import Client, PooledClient
from pymemcache.client.hash import HashClient
from pymemcache.client.retrying import RetryingClient
from pymemcache.serde import pickle_serde

from oauth2_store import AccessToken
from oauth2_store.error import CodecError
from oauth2_store.store.memcache import MemcacheTokenStore, pymemcache_client
from oauth2_store.store.memcache_clients import safe_pylibmc_client_class
from tests.memcache_backends import BACKENDS, Backend, _host_port
from tests.memcached_server import MemcachedServer


@pytest.fixture(scope="module")
def default_port_memcached() -> Iterator[str]:
    """memcached on 127.0.0.1:11211, where the documented snippets point."""
    with socket.socket() as probe:
        busy = probe.connect_ex(("127.0.0.1", 11211)) == 0
    if busy:
        server = MemcachedServer(port=11211)
        if not server.command(b"version\r\n").startswith(b"VERSION"):
            pytest.fail("something other than memcached listens on 127.0.0.1:11211")
        yield server.address  # a memcached already runs there: random prefixes keep tests apart
        return
    server = MemcachedServer(port=11211).start()
    yield server.address
    server.stop()


def _round_trip(store: MemcacheTokenStore) -> None:
    token = AccessToken("client", "password", secrets.token_urlsafe(16), expires_at=int(time.time()) + 60)
    store.save_token(token)
    assert store.fetch_by_token(token.token) == token


def test_documented_pylibmc_snippet_runs_unchanged(default_port_memcached: str) -> None:
    token_store = MemcacheTokenStore(servers=["127.0.0.1"], binary=True, behaviors={"tcp_nodelay": True, "ketama": True})
    try:
        assert token_store.library == "pylibmc" and token_store.servers == "127.0.0.1:11211"
        _round_trip(token_store)
    finally:
        token_store.close()


def test_documented_python_memcached_snippet_runs_unchanged(default_port_memcached: str) -> None:
    token_store = MemcacheTokenStore(servers=["127.0.0.1:11211"], debug=0)
    try:
        assert token_store.library == "python-memcached"
        _round_trip(token_store)
    finally:
        token_store.close()


def test_documented_object_snippet_runs_unchanged(default_port_memcached: str) -> None:
    mc = memcache.Client(servers=["127.0.0.1:11211"], debug=0)
    token_store = MemcacheTokenStore(mc=mc)
    try:
        assert token_store.library == "python-memcached"
        _round_trip(token_store)
    finally:
        token_store.close()


def test_servers_alone_build_a_pymemcache_client(memcached: MemcachedServer, memcached_trio: list[MemcachedServer]) -> None:
    single = pymemcache_client([memcached.address])
    assert isinstance(single, PooledClient) and single.server == _host_port(memcached.address)
    assert single.connect_timeout == 1.0 and single.timeout == 1.0 and single.no_delay
    several = pymemcache_client([server.address for server in memcached_trio], connect_timeout=0.5, timeout=0.25)
    assert isinstance(several, HashClient) and several.use_pooling and len(several.clients) == 3
    default_port, ipv6 = pymemcache_client(["127.0.0.1"]), pymemcache_client(["[::1]:11300"])
    assert isinstance(default_port, PooledClient) and default_port.server == ("127.0.0.1", 11211)
    assert isinstance(ipv6, PooledClient) and ipv6.server == ("::1", 11300)
    with pytest.raises(ValueError, match="brackets"):
        pymemcache_client(["::1:11300"])
    store = MemcacheTokenStore(None, "oauth2", [memcached.address])  # python-oauth2's positional form
    try:
        assert store.library == "pymemcache"
        _round_trip(store)
    finally:
        store.close()


def test_the_built_hash_client_spreads_keys_evenly_and_places_them_the_same_in_every_process(memcached_trio: list[MemcachedServer]) -> None:
    """The store replaces pymemcache's pure-Python murmur3 with blake2b for rendezvous hashing:
    each server must still get its share of the keys, and another process (with another string
    hash seed) must put every key on the same server, or it would not find the tokens."""
    addresses = [server.address for server in memcached_trio]
    client = pymemcache_client(addresses)
    assert isinstance(client, HashClient)
    keys = [f"oauth2:t:{hashlib.sha256(str(i).encode()).hexdigest()}" for i in range(3000)]
    placement = [client.hasher.get_node(key) for key in keys]
    shares = Counter(placement)
    assert set(shares) == set(addresses)
    assert all(850 <= share <= 1150 for share in shares.values()), shares  # 1,000 each; 150 is over 5 standard deviations
    other_process = subprocess.run(
        [sys.executable, "-c", PLACEMENT_SCRIPT, *addresses],
        input="\n".join(keys),
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    )
    assert other_process.stdout.split() == placement


PLACEMENT_SCRIPT = """
import sys
from oauth2_store.store.memcache import pymemcache_client
client = pymemcache_client(sys.argv[1:])
print("\\n".join(client.hasher.get_node(key) for key in sys.stdin.read().split()))
"""


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(servers=["127.0.0.1"], colour="blue"), TypeError, "unknown keyword arguments: colour"),
        (dict(servers=["127.0.0.1"], binary=True, debug=0), ValueError, "several client libraries"),
        (dict(servers=["127.0.0.1"], pickleProtocol=2), TypeError, "unknown keyword arguments: pickleProtocol"),
        (dict(servers=["127.0.0.1:99999"]), ValueError, "invalid port"),
        (dict(servers=["127.0.0.1:http"]), ValueError, "invalid port"),
        (dict(servers=[]), ValueError, "at least one"),
        (dict(servers="127.0.0.1"), ValueError, "list"),
        (dict(), ValueError, "list"),
        (dict(servers=["127.0.0.1"], timeout=0), ValueError, "positive"),
        (dict(mc=object()), TypeError, "unsupported memcached client builtins.object"),
        (dict(mc=Client(("127.0.0.1", 1)), servers=["127.0.0.1"]), TypeError, "either mc="),
        (dict(mc=Client(("127.0.0.1", 1), ignore_exc=True)), ValueError, "ignore_exc"),
        (dict(mc=HashClient([("127.0.0.1", 1)], ignore_exc=True)), ValueError, "ignore_exc"),
        (dict(mc=Client(("127.0.0.1", 1), serde=pickle_serde)), ValueError, "unpickle"),
        (dict(mc=PooledClient(("127.0.0.1", 1), serde=pickle_serde)), ValueError, "unpickle"),
        (dict(mc=pylibmc.Client(["127.0.0.1:1"], behaviors={"auto_eject": True})), ValueError, "auto_eject"),
        (dict(mc=RetryingClient(Client(("127.0.0.1", 1), ignore_exc=True))), ValueError, "ignore_exc"),
        (dict(mc=safe_pylibmc_client_class()(["127.0.0.1:1"], behaviors={"auto_eject": True})), ValueError, "auto_eject"),
        (dict(servers=["127.0.0.1"], behaviors={"remove_failed": 1}), ValueError, "remove_failed"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_bad_set_up_is_refused_with_a_clear_error(kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        MemcacheTokenStore(**kwargs)


@pytest.mark.parametrize(("module", "kwargs", "extra"), [("pylibmc", dict(binary=True), "pylibmc"), ("memcache", dict(debug=0), "python-memcached")])
def test_a_missing_library_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch, module: str, kwargs: dict[str, Any], extra: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # what importing an uninstalled module does
    with pytest.raises(ImportError, match=rf"pip install 'oauth2-store\[{extra}\]'"):
        MemcacheTokenStore(servers=["127.0.0.1"], **kwargs)


@pytest.fixture(params=BACKENDS, ids=[backend.name for backend in BACKENDS])
def any_store(request: pytest.FixtureRequest, memcached: MemcachedServer, memcached_trio: list[MemcachedServer]) -> Iterator[tuple[MemcacheTokenStore, list[MemcachedServer]]]:
    backend: Backend = request.param
    servers = [memcached] if backend.servers == 1 else memcached_trio
    store = backend.make_store([server.address for server in servers])
    yield store, servers
    store.close()


class Detonator:
    """Unpickling this creates a directory: proof that someone unpickled cache content."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (str(self.path),))


def test_a_pickle_planted_in_the_cache_is_never_unpickled(any_store: tuple[MemcacheTokenStore, list[MemcachedServer]], tmp_path: Path) -> None:
    store, servers = any_store
    marker = tmp_path / "unpickled"
    key = f"{store._prefix}:t:" + hashlib.sha256(b"planted").hexdigest()
    for server in servers:  # whichever server the key hashes to holds the pickle
        planter = Client(_host_port(server.address), default_noreply=False)
        planter.set(key, pickle.dumps(Detonator(marker)), flags=1)  # pymemcache and python-memcached's pickle flag
        planter.close()
    with pytest.raises(CodecError):
        store.fetch_by_token("planted")
    assert not marker.exists()


def test_a_plain_pylibmc_client_is_used_through_a_twin_that_never_unpickles(memcached: MemcachedServer) -> None:
    plain = pylibmc.Client([memcached.address], binary=True, behaviors={"tcp_nodelay": True, "ketama": True})
    store = MemcacheTokenStore(mc=plain, prefix=f"twin-{secrets.token_hex(4)}")
    twin: Any = store._connection._client  # type: ignore[attr-defined]  # the adapter's client, the point of the test
    assert (twin.addresses, twin.binary, twin.behaviors["ketama"], twin.behaviors["tcp_nodelay"]) == ([memcached.address], True, 1, 1)
    twin_class: object = type(twin)
    assert twin_class is safe_pylibmc_client_class()
    token = AccessToken("app", "password", secrets.token_urlsafe(16), expires_at=int(time.time()) + 60)
    store.save_token(token)
    assert store.fetch_by_token(token.token) == token
    store.close()
