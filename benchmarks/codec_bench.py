"""Codec cost and size: our versioned codec next to pickle (what python-oauth2 stored) and json.

Run: .venv/bin/python benchmarks/codec_bench.py
"""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Batch, interleave, report  # noqa: E402

from oauth2_store import AccessToken  # noqa: E402
from oauth2_store.codec import ACCESS_TOKEN_CODEC  # noqa: E402

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


def main() -> None:
    payload = ACCESS_TOKEN_CODEC.encode(TOKEN)
    pickled = pickle.dumps(LEGACY, protocol=0)
    as_json = json.dumps(LEGACY).encode()

    def repeat(operation: object) -> Batch:
        assert callable(operation)

        def batch(n: int) -> None:
            for _ in range(n):
                operation()

        return batch

    encode = interleave(
        {
            "codec encode": lambda: repeat(lambda: ACCESS_TOKEN_CODEC.encode(TOKEN)),
            "pickle.dumps (protocol 0)": lambda: repeat(lambda: pickle.dumps(LEGACY, protocol=0)),
            "json.dumps": lambda: repeat(lambda: json.dumps(LEGACY).encode()),
        },
        ops=2000,
        rounds=15,
    )
    decode = interleave(
        {
            "codec decode, first read (validated record)": lambda: repeat(lambda: ACCESS_TOKEN_CODEC._decode(payload)),
            "codec decode, payload seen before (cached)": lambda: repeat(lambda: ACCESS_TOKEN_CODEC.decode(payload)),
            "pickle.loads (protocol 0)": lambda: repeat(lambda: pickle.loads(pickled)),
            "json.loads": lambda: repeat(lambda: json.loads(as_json)),
        },
        ops=2000,
        rounds=15,
    )
    print(f"typical token: codec {len(payload)} bytes, pickle protocol 0 {len(pickled)} bytes "
          f"({len(payload) / len(pickled):.2f}x), json {len(as_json)} bytes\n")
    print(report("encode, per record", encode, "pickle.dumps (protocol 0)"))
    print(report("decode, per record", decode, "pickle.loads (protocol 0)"))


if __name__ == "__main__":
    main()
