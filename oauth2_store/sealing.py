"""Values sealed under the secret they are found by, so that what a backend holds is no use alone.

A shared store keeps each record under the digest of its token, refresh token or code (see
:mod:`oauth2_store.store.keyvalue`). The value itself is sealed with AES-256-GCM under a key
derived from that same secret: whoever reads the backend (``KEYS *`` and ``GET``, an RDB or AOF
file, memcached's ``lru_crawler metadump``) sees digests and ciphertext, and learns no token,
refresh token or code that works (RFC 9700 §4.9.3: no access tokens in plaintext). Whoever
already holds a secret opens only the record found by it, whole: the access token's record
names its refresh token, and the refresh token's record its access token.

The sealing key of a secret (:func:`secret_key`) is SHA-256 over a label and the secret,
independent of the lookup digest (SHA-256 of the secret alone). It protects as well as the
secret is hard to guess: tokens from a generator of 128 bits or more, as OAuth 2.0 servers issue.
Records found by something that is not a secret (a user's latest token) are sealed under a key
the servers hold and the backend never sees (:func:`server_key`).

Format: ``sealed:1:`` ‖ nonce (12 random bytes) ‖ ciphertext with its 16-byte tag; the format
prefix and the record kind are authenticated with it, so a value moved to another kind of key
does not open. A value without the prefix was written before values were sealed and is read as
it is (a plain codec payload), so stores upgraded in place keep their records; except where the
sealing key is the servers' (``sealed_only``): whoever can write to the backend could plant a
plain record there, and a sealed one only with the servers' key. (Under a secret's own key,
sealing adds no such protection: whoever picks a token can seal a record for it.)
"""

from __future__ import annotations

import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from oauth2_store._digest import sha256_digest
from oauth2_store.error import CodecError

__all__ = ["SEALED_OVERHEAD", "seal", "secret_key", "server_key", "unseal"]

_FORMAT = b"sealed:1:"
_NONCE_SIZE = 12
_TAG_SIZE = 16
SEALED_OVERHEAD = len(_FORMAT) + _NONCE_SIZE + _TAG_SIZE
"""How many bytes sealing adds to a payload."""


MIN_SERVER_KEY_SIZE = 32


def secret_key(secret: str) -> bytes:
    """The sealing key of the record found by ``secret`` (a token, refresh token or code)."""
    return sha256_digest(b"oauth2-store seal\x00" + secret.encode("utf-8", "surrogatepass"))


def server_key(key: bytes) -> bytes:
    """The sealing key derived from a key the servers hold (at least 32 random bytes).

    Raises:
        TypeError: ``key`` is not bytes.
        ValueError: ``key`` is shorter than 32 bytes.
    """
    if not isinstance(key, bytes):
        raise TypeError(f"a server key must be bytes, not {type(key).__name__}")
    if len(key) < MIN_SERVER_KEY_SIZE:
        raise ValueError(f"a server key must be at least {MIN_SERVER_KEY_SIZE} random bytes (secrets.token_bytes(32))")
    return hashlib.sha256(b"oauth2-store server seal\x00" + key).digest()


def seal(key: bytes, kind: bytes, payload: bytes) -> bytes:
    """``payload`` sealed under ``key`` for a backend key of ``kind`` (one byte, such as ``b"t"``)."""
    nonce = os.urandom(_NONCE_SIZE)
    return _FORMAT + nonce + AESGCM(key).encrypt(nonce, payload, _FORMAT + kind)


def unseal(key: bytes, kind: bytes, value: bytes, *, sealed_only: bool = False) -> bytes:
    """The payload ``value`` holds: opened with ``key`` if sealed, as it is if written before
    sealing (no format prefix) unless ``sealed_only``.

    Raises:
        CodecError: the value is sealed but does not open: corrupt, truncated, sealed under
            another key or for another kind of backend key.
    """
    if not value.startswith(_FORMAT):
        if sealed_only:
            raise CodecError("a value that should be sealed is not")
        return value
    if len(value) < SEALED_OVERHEAD:
        raise CodecError("a sealed value is truncated")
    nonce = value[len(_FORMAT) : len(_FORMAT) + _NONCE_SIZE]
    try:
        return AESGCM(key).decrypt(nonce, value[len(_FORMAT) + _NONCE_SIZE :], _FORMAT + kind)
    except InvalidTag:
        raise CodecError("a sealed value does not open: corrupt, or not this record's") from None
