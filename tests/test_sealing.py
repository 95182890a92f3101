"""The digests and keys every stored value depends on: they must never change between releases."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from oauth2_store._digest import sha256_digest
from oauth2_store.sealing import secret_key


@given(st.binary(max_size=200))
def test_the_builtin_sha256_gives_hashlibs_digests(data: bytes) -> None:
    assert sha256_digest(data) == hashlib.sha256(data).digest()


def test_a_secrets_sealing_key_is_sha256_of_the_label_and_the_secret() -> None:
    """The derivation of every value already stored: changing it would make them all unreadable."""
    assert secret_key("tok-é") == hashlib.sha256(b"oauth2-store seal\x00" + "tok-é".encode()).digest()
