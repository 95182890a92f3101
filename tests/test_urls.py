"""Store URLs: what each opens, and clear errors for everything else."""

from __future__ import annotations

import pytest

from oauth2_store import open_store
from oauth2_store.store import LocalTokenStore, MemcacheTokenStore
from oauth2_store.urls import STORE_SCHEMES, redact_url


def test_memory_url_opens_the_in_memory_store() -> None:
    assert isinstance(open_store("memory://"), LocalTokenStore)
    assert isinstance(open_store("memory:///"), LocalTokenStore)


@pytest.mark.parametrize(
    ("url", "servers", "library"),
    [
        ("memcache://127.0.0.1", "127.0.0.1:11211", "pymemcache"),
        ("memcache://10.0.0.1:11300,10.0.0.2", "10.0.0.1:11300,10.0.0.2:11211", "pymemcache"),
        ("memcache://[::1]:11300?client=pymemcache", "::1:11300", "pymemcache"),
        ("memcache://127.0.0.1:11211?client=pylibmc&timeout=0.25", "127.0.0.1:11211", "pylibmc"),
        ("memcache://127.0.0.1:11211?client=python-memcached&prefix=prod:oauth2", "127.0.0.1:11211", "python-memcached"),
    ],
)
def test_memcache_urls_open_the_memcache_store(url: str, servers: str, library: str) -> None:
    store = open_store(url)
    assert isinstance(store, MemcacheTokenStore)
    assert (store.servers, store.library) == (servers, library)
    store.close()


def test_prefix_option_and_override_reach_the_keys() -> None:
    store = open_store("memcache://127.0.0.1?prefix=tenant-a")
    assert isinstance(store, MemcacheTokenStore) and store._key("t", "x").startswith("tenant-a:t:")
    overridden = open_store("memcache://127.0.0.1?prefix=tenant-a", prefix="check-1")
    assert isinstance(overridden, MemcacheTokenStore) and overridden._key("t", "x").startswith("check-1:t:")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://127.0.0.1", "unknown scheme 'redis'"),
        ("127.0.0.1:11211", "unknown scheme"),
        ("memcache://", "name at least one server"),
        ("memcache://h1,,h2", "name at least one server"),
        ("memcache://h:99999", "server 'h:99999' has an invalid port"),
        ("memcache://h:port", "server 'h:port' has an invalid port"),
        ("memcache://h/path", "no path"),
        ("memcache://h?colour=blue", "unknown option 'colour'"),
        ("memcache://h?timeout=soon", "option timeout='soon' is not a number of seconds"),
        ("memcache://h?timeout=0", "must be more than 0"),
        ("memcache://h?client=redis-py", "option client='redis-py' is not one of"),
        ("memcache://h?prefix=a&prefix=b", "option 'prefix' is given twice"),
        ("memcache://h?prefix=two%20words", "prefix must be"),
        ("memcache://h?timeout", "not a valid URL"),
        ("memcache://h#frag", "no fragment"),
        ("memory://somewhere", "takes no host"),
        ("memory://?prefix=x&colour=blue", "unknown option 'colour'"),
    ],
)
def test_bad_urls_are_refused_naming_the_part_that_is_wrong(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("?", r"\?")):
        open_store(url)


def test_passwords_never_appear_in_errors() -> None:
    with pytest.raises(ValueError) as caught:
        open_store("memcache://admin:hunter2-secret@127.0.0.1:11211")
    assert "hunter2-secret" not in str(caught.value)
    assert "admin:***@127.0.0.1:11211" in str(caught.value)
    assert redact_url("memcache://u:p4ss@h:1?prefix=x") == "memcache://u:***@h:1?prefix=x"
    assert redact_url("memcache://h:1") == "memcache://h:1"


def test_the_scheme_table_is_the_whole_registry() -> None:
    assert sorted(STORE_SCHEMES) == ["memcache", "memory"]
