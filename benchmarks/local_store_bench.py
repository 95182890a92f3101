"""LocalTokenStore next to python-oauth2 1.1.1's memory TokenStore and a bare dict (the floor).

python-oauth2's store does no locking, expiry or validation; a bare dict does nothing but store.
Each contender does the same work: save a token with refresh token and user id; fetch it by
token; save and consume an authorization code (python-oauth2: fetch_by_code then delete_code).
Record construction is outside the timed region: only the store operations are measured.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from harness import Batch, Part, Section, Sizes, Target, interleave
from oauth2.datatype import AccessToken as LegacyAccessToken
from oauth2.datatype import AuthorizationCode as LegacyAuthorizationCode
from oauth2.store.memory import TokenStore as LegacyTokenStore

from oauth2_store import AccessToken, AuthorizationCode
from oauth2_store.store import LocalTokenStore

LEGACY = "python-oauth2 1.1.1"
DICT = "bare dict"
EXPIRING_DICT = "bare dict + expiry check"


def _tokens(cls: Any, n: int) -> list[Any]:
    now = int(time.time())
    return [
        cls("client", "authorization_code", f"token-{i:026d}", {"k": "v"}, now + 3600, f"refresh-{i:024d}", scopes=["read", "write"], user_id="user-1")
        for i in range(n)
    ]


def _codes(cls: Any, n: int) -> list[Any]:
    now = int(time.time())
    return [cls("client", f"code-{i:027d}", now + 600, "https://a.example/cb", ["read"]) for i in range(n)]


def save_token(store_factory: Any, token_cls: Any, code_cls: Any, ops: int) -> Batch:
    store, tokens = store_factory(), _tokens(token_cls, ops)

    def batch(n: int) -> None:
        for token in tokens[:n]:
            store.save_token(token)

    return batch


def fetch_by_token(store_factory: Any, token_cls: Any, code_cls: Any, ops: int) -> Batch:
    store, tokens = store_factory(), _tokens(token_cls, ops)
    for token in tokens:
        store.save_token(token)
    keys = [token.token for token in tokens]

    def batch(n: int) -> None:
        for key in keys[:n]:
            store.fetch_by_token(key)

    return batch


def consume_code(store_factory: Any, token_cls: Any, code_cls: Any, ops: int) -> Batch:
    store, codes = store_factory(), _codes(code_cls, ops)
    for code in codes:
        store.save_code(code)
    keys = [code.code for code in codes]
    legacy = not hasattr(store, "consume_code")  # python-oauth2: fetch_by_code, then delete_code

    def batch(n: int) -> None:
        if legacy:
            for key in keys[:n]:
                store.fetch_by_code(key)
                store.delete_code(key)
        else:
            for key in keys[:n]:
                store.consume_code(key)

    return batch


class DictStore:
    """The floor: dict assignments and lookups, nothing else."""

    def __init__(self) -> None:
        self.tokens: dict[str, Any] = {}
        self.refresh: dict[str, Any] = {}
        self.users: dict[tuple[str, str, str], str] = {}
        self.codes: dict[str, Any] = {}

    def save_token(self, token: Any) -> None:
        self.tokens[token.token] = token
        self.refresh[token.refresh_token] = token
        self.users[(token.client_id, token.grant_type, token.user_id)] = token.token

    def fetch_by_token(self, token: str) -> Any:
        return self.tokens[token]

    def save_code(self, code: Any) -> None:
        self.codes[code.code] = code

    def consume_code(self, code: str) -> Any:
        return self.codes.pop(code)


class ExpiringDictStore(DictStore):
    """The floor of a store that honours expiry: the bare dict, plus one clock read and comparison
    per operation (what python-oauth2's memory store leaves out)."""

    def save_token(self, token: Any) -> None:
        if time.time() < token.expires_at:
            super().save_token(token)

    def fetch_by_token(self, token: str) -> Any:
        access_token = self.tokens[token]
        if time.time() < access_token.expires_at:
            return access_token
        raise KeyError(token)

    def consume_code(self, code: str) -> Any:
        authorization_code = self.codes.pop(code)
        if time.time() < authorization_code.expires_at:
            return authorization_code
        raise KeyError(code)


CONTENDERS: dict[str, tuple[Any, Any, Any]] = {
    "LocalTokenStore": (LocalTokenStore, AccessToken, AuthorizationCode),
    LEGACY: (LegacyTokenStore, LegacyAccessToken, LegacyAuthorizationCode),
    DICT: (DictStore, AccessToken, AuthorizationCode),
    EXPIRING_DICT: (ExpiringDictStore, AccessToken, AuthorizationCode),
}
"""Each contender's store class, and the token and code classes it stores."""


def measure(sizes: Sizes) -> Part:
    """Time save_token, fetch_by_token and consume_code of every contender, interleaved."""
    ops, rounds = sizes.local_ops, sizes.rounds
    operations: list[tuple[str, Callable[[Any, Any, Any, int], Batch]]] = [
        ("save_token", save_token),
        ("fetch_by_token", fetch_by_token),
        ("consume_code (python-oauth2: fetch_by_code then delete_code, not atomic)", consume_code),
    ]
    sections = [
        Section(title, interleave({name: functools.partial(bench, *classes, ops) for name, classes in CONTENDERS.items()}, ops, rounds), LEGACY)
        for title, bench in operations
    ]
    targets = []
    for section in sections:
        operation = section.title.split()[0]
        targets.append(Target(f"in memory: {operation} within 1.5x of python-oauth2's memory store", section.ratio("LocalTokenStore"), 1.5))
        targets.append(Target(f"in memory: {operation} within 3x of a bare dict", section.ratio("LocalTokenStore", DICT), 3.0))
    extra = "\n".join(
        [
            "Against the floor of a store that honours expiry (the clock read is what python-oauth2 saves):",
            "",
            "| operation | LocalTokenStore / bare dict + expiry check |",
            "| --- | ---: |",
            *(f"| {section.title.split()[0]} | {section.ratio('LocalTokenStore', EXPIRING_DICT):.2f}x |" for section in sections),
        ]
    )
    return Part(
        heading="In memory",
        extra=extra,
        intro=(
            "`LocalTokenStore` next to python-oauth2 1.1.1's memory `TokenStore` (no locking, expiry or "
            "validation), a bare dict (the floor), and a bare dict that reads the clock once per operation to "
            "honour expiry (the floor of any store that does). Tokens carry a refresh token and a user id. "
            f"{ops} operations x {rounds} rounds, interleaved; per operation."
        ),
        sections=sections,
        targets=targets,
    )
