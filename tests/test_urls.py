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


def test_verify_grants_option_reaches_the_store() -> None:
    for value, expected in (("true", True), ("false", False)):
        store = open_store(f"memcache://127.0.0.1?verify_grants={value}")
        assert isinstance(store, MemcacheTokenStore) and store._verify_grants is expected
    default = open_store("memcache://127.0.0.1")
    assert isinstance(default, MemcacheTokenStore) and default._verify_grants is False


def test_prefix_option_and_override_reach_the_keys() -> None:
    store = open_store("memcache://127.0.0.1?prefix=tenant-a")
    assert isinstance(store, MemcacheTokenStore) and store._key("t", "x").startswith("tenant-a:t:")
    overridden = open_store("memcache://127.0.0.1?prefix=tenant-a", prefix="check-1")
    assert isinstance(overridden, MemcacheTokenStore) and overridden._key("t", "x").startswith("check-1:t:")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mongodb://127.0.0.1", "unknown scheme 'mongodb'"),
        ("127.0.0.1:11211", "not a store URL; write memory:// or memcache://host\\[:port\\]"),
        ("bogus", "not a store URL"),
        (" memory://", "no leading or trailing white space"),
        ("memcache://h\n", "no leading or trailing white space"),
        ("memcache://127.0.0.1:", "server '127.0.0.1:' has an empty port"),
        ("memcache://a:1,", "server 2 of 2 is empty"),
        ("memcache://", "name at least one server"),
        ("memcache://h1,,h2", "server 2 of 3 is empty"),
        ("memcache://h:99999", "server 'h:99999' has an invalid port"),
        ("memcache://h:port", "server 'h:port' has an invalid port"),
        ("memcache://h/path", "no path"),
        ("memcache://h?colour=blue", "unknown option 'colour'"),
        ("memcache://h?timeout=soon", "option timeout='soon' is not a number of seconds"),
        ("memcache://h?timeout=0", "must be more than 0"),
        ("memcache://h?verify_grants=yes", "option verify_grants='yes' is not true or false"),
        ("memcache://h?client=redis-py", "option client='redis-py' is not one of"),
        ("memcache://h?prefix=a&prefix=b", "option 'prefix' is given twice"),
        ("memcache://h?prefix=two%20words", "prefix must be"),
        ("memcache://h?prefix=%0D%0Aflush_all%0D%0A", "prefix must be"),
        ("memcache://h?prefix=a%00b", "prefix must be"),
        ("memcache://h?timeout", "not a valid URL"),
        ("memcache://h#frag", "no fragment"),
        ("memory://somewhere", "takes no host"),
        ("memory://?prefix=x&colour=blue", "unknown option 'colour'"),
        ("memcache://::1:11300", "brackets"),
        ("memcache://h:\u0661\u0662\u0663", "invalid port"),
        ("memcache://h:\u00b2", "invalid port"),
        ("memcache://bad host", "invalid host"),
        ("memcache://h%20x", "invalid host"),
        ("memcache://[::1]x", "is not \\[address\\]:port"),
    ],
)
def test_bad_urls_are_refused_naming_the_part_that_is_wrong(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("?", r"\?")):
        open_store(url)


@pytest.mark.parametrize("url", ["memcache://h?prefix=bad%20prefix", "memcache://h?prefix="])
def test_a_replaced_prefix_is_still_checked(url: str) -> None:
    """check and bench replace the prefix; they must still refuse the one the deployment uses."""
    with pytest.raises(ValueError, match="prefix must be"):
        open_store(url, prefix="fresh-prefix")


@pytest.mark.parametrize(
    "url",
    [
        "memcache://admin:hunter2-secret@127.0.0.1:11211",
        "memcache://u:hunter2/secret@h",
        "memcache://u:hunter2?secret@h",
        "memcache://u:hunter2#secret@h",
        "memcache://h?password=hunter2-secret",
        "memcache://h#hunter2-secret",
    ],
)
def test_secrets_in_urls_never_appear_in_errors(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        open_store(url)
    assert "hunter2" not in str(caught.value) and "secret" not in str(caught.value)


def test_redacted_urls_keep_what_helps_and_hide_the_rest() -> None:
    assert redact_url("memcache://u:p4ss@h:1?prefix=x") == "memcache://***@h:1?prefix=x"
    assert redact_url("memcache://h:1,h:2?prefix=a&client=pylibmc&timeout=2") == "memcache://h:1,h:2?prefix=a&client=pylibmc&timeout=2"
    assert redact_url("memcache://h?token=abc&flag") == "memcache://h?token=***&flag"


def test_the_scheme_table_is_the_whole_registry() -> None:
    assert sorted(STORE_SCHEMES) == ["memcache", "memory", "postgresql", "postgresql+psycopg", "redis", "redis+cluster", "rediss", "rediss+cluster", "sqlite"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://", "name a server"),
        ("redis://h:0", "invalid port"),
        ("redis://h:6379/x", "database 'x' is not a number"),
        ("redis://h1,h2", "redis:// names one server"),
        ("redis://h?ca_file=/ca.pem", "ca_file is for TLS"),
        ("redis://h?timeout=0", "timeout"),
        ("redis://h?client=pylibmc", "unknown option 'client'"),
        ("redis+cluster://h:1/2", "no databases"),
        ("redis+cluster://h:1,,h:2", "a server is empty"),
    ],
)
def test_bad_redis_urls_are_refused_naming_the_part_that_is_wrong(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        open_store(url)


@pytest.mark.parametrize("url", ["redis://admin:hunter2-secret@h:0", "rediss://u:hunter2%2Fsecret@h/x", "redis+cluster://u:hunter2-secret@h:1/2"])
def test_redis_passwords_never_appear_in_errors(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        open_store(url)
    assert "hunter2" not in str(caught.value) and "secret" not in str(caught.value)
