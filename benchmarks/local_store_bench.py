"""LocalTokenStore next to python-oauth2 1.1.1's memory TokenStore and a bare dict (the floor).

python-oauth2's store does no locking, expiry or validation; a bare dict does nothing but store.
Each contender does the same work: save a token with refresh token and user id; fetch it by
token; save and consume an authorization code (python-oauth2: fetch_by_code then delete_code).
Record construction is outside the timed region: only the store operations are measured.

Run: .venv/bin/pip install -e '.[bench]' && .venv/bin/python benchmarks/local_store_bench.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Batch, interleave, report  # noqa: E402

from oauth2_store import AccessToken, AuthorizationCode  # noqa: E402
from oauth2_store.store import LocalTokenStore  # noqa: E402

try:
    from oauth2.datatype import AccessToken as LegacyAccessToken
    from oauth2.datatype import AuthorizationCode as LegacyAuthorizationCode
    from oauth2.store.memory import TokenStore as LegacyTokenStore
except ImportError:
    sys.exit("install python-oauth2 1.1.1 first: .venv/bin/pip install -e '.[bench]'")

OPS = 5000
ROUNDS = 15


def _tokens(cls: Any, n: int) -> list[Any]:
    now = int(time.time())
    return [
        cls("client", "authorization_code", f"token-{i:026d}", {"k": "v"}, now + 3600, f"refresh-{i:024d}", scopes=["read", "write"], user_id="user-1")
        for i in range(n)
    ]


def _codes(cls: Any, n: int) -> list[Any]:
    now = int(time.time())
    return [cls("client", f"code-{i:027d}", now + 600, "https://a.example/cb", ["read"]) for i in range(n)]


def save_token(store_factory: Any, token_cls: Any) -> Batch:
    store, tokens = store_factory(), _tokens(token_cls, OPS)

    def batch(n: int) -> None:
        for token in tokens[:n]:
            store.save_token(token)

    return batch


def fetch_by_token(store_factory: Any, token_cls: Any) -> Batch:
    store, tokens = store_factory(), _tokens(token_cls, OPS)
    for token in tokens:
        store.save_token(token)
    keys = [token.token for token in tokens]

    def batch(n: int) -> None:
        for key in keys[:n]:
            store.fetch_by_token(key)

    return batch


def consume_code(store_factory: Any, code_cls: Any, legacy: bool) -> Batch:
    store, codes = store_factory(), _codes(code_cls, OPS)
    for code in codes:
        store.save_code(code)
    keys = [code.code for code in codes]

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


def main() -> None:
    figures = {
        "save_token": interleave(
            {
                "LocalTokenStore": lambda: save_token(LocalTokenStore, AccessToken),
                "python-oauth2 1.1.1": lambda: save_token(LegacyTokenStore, LegacyAccessToken),
                "bare dict": lambda: save_token(DictStore, AccessToken),
            },
            OPS,
            ROUNDS,
        ),
        "fetch_by_token": interleave(
            {
                "LocalTokenStore": lambda: fetch_by_token(LocalTokenStore, AccessToken),
                "python-oauth2 1.1.1": lambda: fetch_by_token(LegacyTokenStore, LegacyAccessToken),
                "bare dict": lambda: fetch_by_token(DictStore, AccessToken),
            },
            OPS,
            ROUNDS,
        ),
        "consume_code": interleave(
            {
                "LocalTokenStore": lambda: consume_code(LocalTokenStore, AuthorizationCode, legacy=False),
                "python-oauth2 1.1.1 (fetch + delete)": lambda: consume_code(LegacyTokenStore, LegacyAuthorizationCode, legacy=True),
                "bare dict": lambda: consume_code(DictStore, AuthorizationCode, legacy=False),
            },
            OPS,
            ROUNDS,
        ),
    }
    for operation, per_op in figures.items():
        baseline = next(name for name in per_op if name.startswith("python-oauth2"))
        print(report(f"{operation} ({OPS} ops x {ROUNDS} rounds, interleaved)", per_op, baseline))


if __name__ == "__main__":
    main()
