"""The conformance suite on stores that are not ours: a correct one passes, broken ones fail."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from oauth2_store import AccessToken, AuthorizationCode
from oauth2_store.clock import ManualClock
from oauth2_store.error import AccessTokenNotFound, AuthCodeNotFound, RecordTypeError
from oauth2_store.protocols import TokenTypeHint
from oauth2_store.testing import TokenStoreContract


class DictTokenStore:
    """A third party's token store: plain dicts, no base class, just the right methods."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.tokens: dict[str, AccessToken] = {}
        self.refresh: dict[str, AccessToken] = {}
        self.users: dict[tuple[str, str, str | None], str] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.lock = threading.Lock()

    def save_token(self, access_token: AccessToken) -> None:
        if not isinstance(access_token, AccessToken):
            raise RecordTypeError(f"not an AccessToken: {type(access_token).__name__}")
        now = self.clock()
        self.tokens.pop(access_token.token, None)
        if not access_token.is_expired(now):
            self.tokens[access_token.token] = access_token
            self.users[(access_token.client_id, access_token.grant_type, access_token.user_id)] = access_token.token
        if access_token.refresh_token is not None:
            self.refresh.pop(access_token.refresh_token, None)
            if not access_token.is_refresh_expired(now):
                self.refresh[access_token.refresh_token] = access_token

    def fetch_by_token(self, token: str) -> AccessToken:
        found = self.tokens.get(token)
        if found is None or found.is_expired(self.clock()):
            raise AccessTokenNotFound
        return found

    def fetch_by_refresh_token(self, refresh_token: str) -> AccessToken:
        found = self.refresh.get(refresh_token)
        if found is None or found.is_refresh_expired(self.clock()):
            raise AccessTokenNotFound
        return found

    def fetch_existing_token_of_user(self, client_id: str, grant_type: str, user_id: str | None) -> AccessToken:
        token = self.users.get((client_id, grant_type, user_id))
        if token is None:
            raise AccessTokenNotFound
        found = self.fetch_by_token(token)
        if (found.client_id, found.grant_type, found.user_id) != (client_id, grant_type, user_id):
            raise AccessTokenNotFound
        return found

    def delete_refresh_token(self, refresh_token: str) -> None:
        self.fetch_by_refresh_token(refresh_token)
        with self.lock:
            found = self.refresh.pop(refresh_token, None)
        if found is None:
            raise AccessTokenNotFound
        self.tokens.pop(found.token, None)

    def revoke_token(self, token: str, token_type_hint: TokenTypeHint | None = None) -> None:
        if token_type_hint not in (None, "access_token", "refresh_token"):
            raise ValueError("unknown token_type_hint")
        self.tokens.pop(token, None)
        found = self.refresh.pop(token, None)
        if found is not None:
            self.tokens.pop(found.token, None)

    def save_code(self, authorization_code: AuthorizationCode) -> None:
        if not isinstance(authorization_code, AuthorizationCode):
            raise RecordTypeError(f"not an AuthorizationCode: {type(authorization_code).__name__}")
        self.codes.pop(authorization_code.code, None)
        if not authorization_code.is_expired(self.clock()):
            self.codes[authorization_code.code] = authorization_code

    def fetch_by_code(self, code: str) -> AuthorizationCode:
        found = self.codes.get(code)
        if found is None or found.is_expired(self.clock()):
            raise AuthCodeNotFound
        return found

    def delete_code(self, code: str) -> None:
        self.codes.pop(code, None)

    def consume_code(self, code: str) -> AuthorizationCode:
        with self.lock:
            found = self.codes.pop(code, None)
        if found is None or found.is_expired(self.clock()):
            raise AuthCodeNotFound
        return found


class TestThirdPartyDictStore(TokenStoreContract):
    def make_store(self, clock: ManualClock) -> DictTokenStore:
        return DictTokenStore(clock)


# Each broken store differs from DictTokenStore in one method; the suite must catch each defect.
BROKEN_STORES = {
    "ignores_expiry": (
        "def fetch_by_token(self, token):\n"
        "    if token not in self.tokens:\n"
        "        raise AccessTokenNotFound\n"
        "    return self.tokens[token]\n",
        ["test_access_token_expires_at_its_expires_at", "test_existing_token_of_user_is_not_returned_once_expired"],
    ),
    "returns_none_for_a_miss": (
        "def fetch_by_code(self, code):\n"
        "    found = self.codes.get(code)\n"
        "    return None if found is None or found.is_expired(self.clock()) else found\n",
        ["test_unknown_code_raises_auth_code_not_found", "test_code_expires_at_its_expires_at"],
    ),
    "consume_is_fetch_then_delete": (
        "def consume_code(self, code):\n"
        "    found = self.fetch_by_code(code)\n"
        "    time.sleep(0.001)  # widens the race window a real network round trip would open\n"
        "    self.codes.pop(code, None)\n"
        "    return found\n",
        ["test_consume_code_is_exactly_once_under_concurrent_threads"],
    ),
    "one_namespace_for_everything": (
        "def delete_code(self, code):\n"
        "    self.codes.pop(code, None)\n"
        "    self.tokens.pop(code, None)\n",
        ["test_a_code_and_a_token_with_the_same_string_never_collide"],
    ),
    "expired_save_keeps_the_old_record": (
        "def save_code(self, authorization_code):\n"
        "    if not authorization_code.is_expired(self.clock()):\n"
        "        self.codes[authorization_code.code] = authorization_code\n",
        ["test_saving_an_expired_version_removes_the_code"],
    ),
    "takes_foreign_records": (
        "def save_code(self, authorization_code):\n"
        "    self.codes[authorization_code.code] = authorization_code\n",
        ["test_save_code_refuses_what_is_not_an_authorization_code"],
    ),
    "refresh_revocation_is_fetch_then_delete": (
        "def delete_refresh_token(self, refresh_token):\n"
        "    found = self.fetch_by_refresh_token(refresh_token)\n"
        "    time.sleep(0.001)  # widens the race window a real network round trip would open\n"
        "    self.refresh.pop(refresh_token, None)\n"
        "    self.tokens.pop(found.token, None)\n",
        ["test_delete_refresh_token_is_exactly_once_under_concurrent_threads"],
    ),
    "revocation_keeps_the_access_token": (
        "def delete_refresh_token(self, refresh_token):\n"
        "    self.fetch_by_refresh_token(refresh_token)\n"
        "    self.refresh.pop(refresh_token)\n",
        ["test_delete_refresh_token_revokes_the_refresh_and_the_access_token"],
    ),
    "revoking_a_refresh_token_keeps_its_access_token": (
        "def revoke_token(self, token, token_type_hint=None):\n"
        "    self.tokens.pop(token, None)\n"
        "    self.refresh.pop(token, None)\n",
        ["test_revoking_a_refresh_token_revokes_its_access_token"],
    ),
    "revocation_trusts_the_hint": (
        "def revoke_token(self, token, token_type_hint=None):\n"
        "    if token_type_hint != 'refresh_token':\n"
        "        self.tokens.pop(token, None)\n"
        "    else:\n"
        "        found = self.refresh.pop(token, None)\n"
        "        if found is not None:\n"
        "            self.tokens.pop(found.token, None)\n",
        ["test_revoking_a_refresh_token_revokes_its_access_token", "test_revoking_an_access_token_leaves_its_refresh_token"],
    ),
    "revoking_an_unknown_token_fails": (
        "def revoke_token(self, token, token_type_hint=None):\n"
        "    self.fetch_by_token(token)\n"
        "    self.tokens.pop(token)\n",
        ["test_revoking_an_unknown_or_revoked_token_is_not_an_error"],
    ),
}


@pytest.mark.parametrize("defect", sorted(BROKEN_STORES))
def test_the_suite_fails_a_broken_store(pytester: pytest.Pytester, defect: str) -> None:
    method, expected_failures = BROKEN_STORES[defect]
    indented = "".join(f"    {line}\n" for line in method.splitlines())
    pytester.makepyfile(
        test_broken=(
            "import time\n"
            "from oauth2_store.error import AccessTokenNotFound, AuthCodeNotFound\n"
            "from oauth2_store.testing import TokenStoreContract\n"
            "from tests.test_conformance_suite import DictTokenStore\n\n"
            "class BrokenStore(DictTokenStore):\n"
            f"{indented}\n"
            "class TestBroken(TokenStoreContract):\n"
            "    def make_store(self, clock):\n"
            "        return BrokenStore(clock)\n"
        )
    )
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider")
    failed = {report.nodeid.split("::")[-1].split("[")[0] for report in result.reprec.getreports("pytest_runtest_logreport") if report.failed}  # type: ignore[attr-defined]  # reprec exists on in-process runs
    assert set(expected_failures) <= failed
    outcomes = result.parseoutcomes()
    assert outcomes["passed"] > 20  # everything else about the store is still right
