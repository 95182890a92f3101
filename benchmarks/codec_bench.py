"""Codec cost and size: our versioned codec next to pickle (what python-oauth2 stored) and json."""

from __future__ import annotations

import json
import pickle

from harness import Batch, Part, Section, Sizes, interleave

from oauth2_store import AccessToken
from oauth2_store.codec import ACCESS_TOKEN_CODEC

FIELDS = dict(
    client_id="client-id",
    grant_type="authorization_code",
    token="a1b2c3d4e5f60718293a4b5c6d7e8f90",
    data={"key": "value"},
    expires_at=1_700_000_000,
    refresh_token="0f9e8d7c6b5a49382716f5e4d3c2b1a0",
    scopes=["read", "write"],
    user_id="user-1",
)
TOKEN = AccessToken(**FIELDS)  # type: ignore[arg-type]  # FIELDS' values are the right types
LEGACY = {**FIELDS, "refresh_expires_at": None}
"""What python-oauth2 1.1.1's memcache store pickles: the token's ``__dict__``."""


def _repeat(operation: object) -> Batch:
    assert callable(operation)

    def batch(n: int) -> None:
        for _ in range(n):
            operation()

    return batch


def measure(sizes: Sizes) -> Part:
    """Time encode and decode of a typical token against pickle and json, and compare sizes."""
    payload = ACCESS_TOKEN_CODEC.encode(TOKEN)
    pickled = pickle.dumps(LEGACY, protocol=0)
    as_json = json.dumps(LEGACY).encode()
    encode = interleave(
        {
            "codec encode": lambda: _repeat(lambda: ACCESS_TOKEN_CODEC.encode(TOKEN)),
            "pickle.dumps (protocol 0)": lambda: _repeat(lambda: pickle.dumps(LEGACY, protocol=0)),
            "json.dumps": lambda: _repeat(lambda: json.dumps(LEGACY).encode()),
        },
        sizes.codec_ops,
        sizes.rounds,
    )
    decode = interleave(
        {
            "codec decode, first read (every field validated)": lambda: _repeat(lambda: ACCESS_TOKEN_CODEC._decode(payload)),
            "codec decode, payload seen before (record cached)": lambda: _repeat(lambda: ACCESS_TOKEN_CODEC.decode(payload)),
            "pickle.loads (protocol 0)": lambda: _repeat(lambda: pickle.loads(pickled)),
            "json.loads (a dict, no record)": lambda: _repeat(lambda: json.loads(as_json)),
        },
        sizes.codec_ops,
        sizes.rounds,
    )
    extra = "\n".join(
        [
            "| value of a typical token | bytes | ratio to pickle |",
            "| --- | ---: | ---: |",
            f"| codec `{payload[:14].decode()}...` | {len(payload)} | {len(payload) / len(pickled):.2f}x |",
            f"| pickle protocol 0 (python-oauth2 1.1.1 through python-memcached) | {len(pickled)} | 1.00x |",
            f"| json.dumps of the same dict | {len(as_json)} | {len(as_json) / len(pickled):.2f}x |",
        ]
    )
    return Part(
        heading="Codec",
        intro=(
            "A typical token: client id, grant type, 32-character token and refresh token, an expiry, "
            f"two scopes, `{{\"key\": \"value\"}}` and a user id. {sizes.codec_ops} operations x "
            f"{sizes.rounds} rounds, interleaved; per record."
        ),
        sections=[
            Section("encode", encode, "pickle.dumps (protocol 0)"),
            Section("decode", decode, "pickle.loads (protocol 0)"),
        ],
        extra=extra,
    )
