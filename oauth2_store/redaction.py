"""Short, non-reversible fingerprints of secrets, for ``repr``, logs and error messages."""

from __future__ import annotations

import hashlib

__all__ = ["fingerprint", "fingerprint_repr", "redacted_repr"]


def fingerprint(secret: str) -> str:
    """Return a short fingerprint of ``secret`` such as ``<sha256:1a2b3c4d>``.

    The first 32 bits of the SHA-256 digest: enough to tell records apart in a log, far too little
    to recover a high-entropy token. Low-entropy secrets (client secrets) are never fingerprinted:
    see :func:`redacted_repr`.
    """
    digest = hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()
    return f"<sha256:{digest[:8]}>"


def fingerprint_repr(secret: str | None) -> str:
    """``repr`` for a token, refresh token or code field: its fingerprint, or ``None``."""
    return "None" if secret is None else fingerprint(secret)


def redacted_repr(secret: str) -> str:
    """``repr`` for a client secret: nothing of it, only whether it is empty."""
    return "''" if not secret else "<redacted>"
