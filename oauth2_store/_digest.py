"""SHA-256 for the paths every request takes (a token's key, its sealing key).

``hashlib.sha256`` is OpenSSL's where Python has OpenSSL. Right after a network round trip, with
the CPU's caches full of the kernel's work, OpenSSL's provider dispatch costs more than the
hashing: two digests of a token took 11 µs there, against 5 µs with CPython's builtin
implementation (same machine, same loop). The digests are identical, so nothing stored changes.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable
from typing import Protocol, cast

__all__ = ["owner_digest", "secret_digest", "sha256_digest"]


class _Hash(Protocol):
    def digest(self) -> bytes: ...


def _builtin_sha256() -> Callable[[bytes], _Hash]:
    """CPython's own SHA-256 constructor (module ``_sha2`` from 3.12, ``_sha256`` before), or
    hashlib's on a Python built without it."""
    for name in ("_sha2", "_sha256"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        constructor = getattr(module, "sha256", None)
        if callable(constructor):
            return cast("Callable[[bytes], _Hash]", constructor)
    return hashlib.sha256


_SHA256 = _builtin_sha256()


def sha256_digest(data: bytes) -> bytes:
    """The SHA-256 digest of ``data`` (32 bytes), as ``hashlib.sha256(data).digest()``."""
    return _SHA256(data).digest()


def secret_digest(secret: str) -> bytes:
    """The digest a store keys ``secret`` (a token, refresh token, code or id) by. surrogatepass:
    a lookup string no record can hold (a lone surrogate) digests to bytes no stored record's
    UTF-8 gives, so it is a miss, not a UnicodeEncodeError."""
    return _SHA256(secret.encode("utf-8", "surrogatepass")).digest()


def owner_digest(client_id: str, grant_type: str, user_id: str | None) -> bytes:
    """The digest of a (client, grant type, user) triple, length-prefixed so that no two triples
    give the same string: the key of the latest token saved for them."""
    user = "-" if user_id is None else f"{len(user_id)}:{user_id}"
    return secret_digest(f"{len(client_id)}:{client_id}{len(grant_type)}:{grant_type}{user}")
