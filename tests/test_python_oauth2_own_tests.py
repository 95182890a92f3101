"""python-oauth2 1.1.1's own tests, run with only their imports swapped to the integration module.

The test modules are read from the installed python-oauth2 package, each listed import line is
replaced (the replacement must match exactly once), and the result is run as it is, on
``LocalTokenStore`` and on ``MemcacheTokenStore`` against a real memcached.

Left out, and why (the README says the same):

- ``test_memcache.py``'s ``test_fetch_by_code``, ``test_save_code``, ``test_save_token`` and
  ``test_fetch_existing_token_of_user``: they assert python-oauth2's raw memcached format (a dict
  stored under ``prefix_<raw token>``), which this package replaces with versioned bytes under
  digest keys. The two behaviour tests (``*_no_data``) run on a real memcached; the ``Mock``
  client they build is not used.
- Nothing else: the memory tests and the three functional authorization-code tests (WSGI,
  Tornado, 404) all run.

python-oauth2's memory tests save a code that expires at unix time 100; our stores never return
an expired record, so these run with the store's clock at unix time 50 (``ManualClock``).
"""

from __future__ import annotations

import importlib.util
import secrets
import unittest
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from wsgiref.simple_server import WSGIRequestHandler

import pytest

from oauth2_store.clock import ManualClock
from oauth2_store.integrations.python_oauth2 import ClientStore, TokenStore
from oauth2_store.protocols import TokenStoreProtocol
from oauth2_store.store.memcache import MemcacheTokenStore
from oauth2_store.store.memory import LocalTokenStore
from tests.memcached_server import MemcachedServer


def _swapped(module_name: str, swaps: Sequence[tuple[str, str]], **names: object) -> dict[str, object]:
    """Run python-oauth2's test module ``module_name`` with each (old, new) line replaced, and
    ``names`` defined in its namespace first; return the namespace."""
    # Found by path: importing oauth2.test.functional would import redis, pymongo and mysql.
    package = importlib.util.find_spec("oauth2")
    assert package is not None and package.origin is not None
    path = Path(package.origin).parent.joinpath(*module_name.split(".")[1:]).with_suffix(".py")
    source = path.read_text(encoding="utf-8")
    for old, new in swaps:
        assert source.count(old) == 1, f"{module_name} no longer has exactly one {old!r}"
        source = source.replace(old, new)
    module = ModuleType(f"{module_name}_on_oauth2_store")
    module.__dict__.update(names)
    exec(compile(source, str(path), "exec"), module.__dict__)
    return module.__dict__


class _Backend:
    """The token store python-oauth2's tests get, on memory or on the session's memcached."""

    def __init__(self) -> None:
        self.memcached: str | None = None

    def store(self) -> TokenStoreProtocol:
        clock = ManualClock(50.0)
        if self.memcached is None:
            return LocalTokenStore(clock=clock)
        return MemcacheTokenStore(servers=[self.memcached], prefix=f"po2-{secrets.token_hex(6)}", clock=clock)

    def token_store(self, **_ignored: object) -> TokenStore:
        """``TokenStore()`` in the memory tests; ``TokenStore(mc=Mock, prefix=...)`` in the
        memcache ones, where the mock client is replaced by the real server."""
        return TokenStore(self.store())

    def store_factory(self, client_identifier: str, client_secret: str, redirect_uris: list[str]) -> dict[str, object]:
        """python-oauth2's functional ``store_factory``: one token store, one client registered."""
        clients = ClientStore()
        clients.add_client(client_id=client_identifier, client_secret=client_secret, redirect_uris=redirect_uris)
        tokens = self.token_store()
        return {"access_token_store": tokens, "auth_code_store": tokens, "client_store": clients}


ON_MEMORY = _Backend()
ON_MEMCACHED = _Backend()


@pytest.fixture(autouse=True, scope="module")
def _memcached_backend(memcached: MemcachedServer) -> Iterator[None]:
    ON_MEMCACHED.memcached = memcached.address
    yield
    ON_MEMCACHED.memcached = None


class _NoLoggingHandler(WSGIRequestHandler):
    """python-oauth2's functional ``NoLoggingHandler`` (its package also imports redis, pymongo, mysql)."""

    def log_message(self, format: str, *args: object) -> None:
        pass


def _memory_tests(backend: _Backend) -> dict[str, object]:
    return _swapped(
        "oauth2.test.store.test_memory",
        [("from oauth2.store.memory import ClientStore, TokenStore", "")],
        ClientStore=ClientStore,
        TokenStore=backend.token_store,
    )


def _memcache_tests(backend: _Backend) -> dict[str, object]:
    return _swapped(
        "oauth2.test.store.test_memcache",
        [("from mock import Mock, call", "from unittest.mock import Mock, call"), ("from oauth2.store.memcache import TokenStore", "")],
        TokenStore=backend.token_store,
    )


def _functional_tests(backend: _Backend) -> dict[str, object]:
    return _swapped(
        "oauth2.test.functional.test_authorization_code",
        [
            ("from oauth2.test.functional import NoLoggingHandler", ""),
            ("from ..functional import store_factory", ""),
            ("from ...web.tornado import OAuth2Handler", "from oauth2.web.tornado import OAuth2Handler"),
        ],
        NoLoggingHandler=_NoLoggingHandler,
        store_factory=backend.store_factory,
    )


def _case(namespace: dict[str, object], name: str) -> type[unittest.TestCase]:
    case = namespace[name]
    assert isinstance(case, type) and issubclass(case, unittest.TestCase)
    return case


def _only(case: type[unittest.TestCase], kept: Sequence[str]) -> dict[str, Callable[..., object]]:
    """The helpers of ``case`` and the tests named in ``kept``, for a class that runs only those."""
    members = {name: value for name, value in vars(case).items() if callable(value) and not name.startswith("test")}
    for name in kept:
        members[name] = vars(case)[name]
    return members


_MEMORY = _memory_tests(ON_MEMORY)
_MEMORY_ON_MEMCACHED = _memory_tests(ON_MEMCACHED)
_MEMCACHE = _memcache_tests(ON_MEMCACHED)
_FUNCTIONAL = _functional_tests(ON_MEMORY)
_FUNCTIONAL_ON_MEMCACHED = _functional_tests(ON_MEMCACHED)

MEMCACHE_BEHAVIOUR_TESTS = ("test_fetch_by_code_no_data", "test_fetch_existing_token_of_user_no_data")

# python-oauth2's functional tests use assertRegexpMatches, deprecated since Python 3.2.
_REGEXP_DEPRECATION = pytest.mark.filterwarnings("ignore:Please use assertRegex instead:DeprecationWarning")


class TestMemoryClientStore(_case(_MEMORY, "MemoryClientStoreTestCase")):  # type: ignore[misc]  # a class built at run time
    pass


class TestMemoryTokenStore(_case(_MEMORY, "MemoryTokenStoreTestCase")):  # type: ignore[misc]  # a class built at run time
    pass


class TestMemoryTokenStoreOnMemcached(_case(_MEMORY_ON_MEMCACHED, "MemoryTokenStoreTestCase")):  # type: ignore[misc]  # a class built at run time
    pass


TestMemcacheTokenStoreBehaviour = type(
    "TestMemcacheTokenStoreBehaviour",
    (unittest.TestCase,),
    _only(_case(_MEMCACHE, "MemcacheTokenStoreTestCase"), MEMCACHE_BEHAVIOUR_TESTS),
)


@_REGEXP_DEPRECATION
class TestAuthorizationCodeFunctional(_case(_FUNCTIONAL, "AuthorizationCodeTestCase")):  # type: ignore[misc]  # a class built at run time
    pass


@_REGEXP_DEPRECATION
class TestAuthorizationCodeFunctionalOnMemcached(_case(_FUNCTIONAL_ON_MEMCACHED, "AuthorizationCodeTestCase")):  # type: ignore[misc]  # a class built at run time
    pass


def test_every_python_oauth2_store_test_is_run_or_listed() -> None:
    """A python-oauth2 test that is neither run here nor listed as left out would go unseen."""
    memcache_tests = {name for name in vars(_case(_MEMCACHE, "MemcacheTokenStoreTestCase")) if name.startswith("test")}
    left_out = {"test_fetch_by_code", "test_save_code", "test_save_token", "test_fetch_existing_token_of_user"}
    assert memcache_tests == left_out | set(MEMCACHE_BEHAVIOUR_TESTS)
    memory_tests = [name for case in ("MemoryClientStoreTestCase", "MemoryTokenStoreTestCase") for name in vars(_case(_MEMORY, case)) if name.startswith("test")]
    assert len(memory_tests) == 5
