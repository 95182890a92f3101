"""The versioned codecs: round trips, the header, old formats, hostile bytes, size."""

from __future__ import annotations

import json
import pickle
import traceback
from collections import Counter
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oauth2_store import AccessToken, AuthorizationCode, Client
from oauth2_store.codec import ACCESS_TOKEN_CODEC, AUTH_CODE_CODEC, CLIENT_CODEC, RecordCodec, _checked_token_v3, _plain_token_v3
from oauth2_store.error import CodecError, RecordError, RecordValueError
from oauth2_store.json_data import FrozenJSON
from oauth2_store.models import derive_grant_id
from tests.strategies import access_tokens, authorization_codes, clients
from tests.support import Figures, Scale

TYPICAL_TOKEN_FIELDS: dict[str, Any] = dict(
    client_id="client-id",
    grant_type="authorization_code",
    token="a1b2c3d4e5f60718293a4b5c6d7e8f90",
    data={"key": "value"},
    expires_at=1_700_000_000,
    refresh_token="0f9e8d7c6b5a49382716f5e4d3c2b1a0",
    scopes=["read", "write"],
    user_id="user-1",
)
TYPICAL_TOKEN = AccessToken(**TYPICAL_TOKEN_FIELDS, issued_at=1_699_996_400)

CODECS: list[tuple[RecordCodec[Any], st.SearchStrategy[Any]]] = [
    (ACCESS_TOKEN_CODEC, access_tokens()),
    (AUTH_CODE_CODEC, authorization_codes()),
    (CLIENT_CODEC, clients()),
]
codec_and_record = st.sampled_from(CODECS).flatmap(lambda pair: st.tuples(st.just(pair[0]), pair[1]))


@given(codec_and_record)
def test_decode_inverts_encode(pair: tuple[RecordCodec[Any], Any]) -> None:
    codec, record = pair
    payload = codec.encode(record)
    decoded = codec.decode(payload)
    assert decoded == record
    # Equality lets 1 == 1.0 == True pass; the bytes do not: types survive the trip too.
    assert codec.encode(decoded) == payload


def test_payload_names_kind_and_version_then_holds_compact_json() -> None:
    payload = ACCESS_TOKEN_CODEC.encode(TYPICAL_TOKEN)
    assert payload.startswith(b"token:3:[")
    assert json.loads(payload[len(b"token:3:") :]) == [
        "client-id",
        "authorization_code",
        TYPICAL_TOKEN.token,
        1_700_000_000,
        TYPICAL_TOKEN.refresh_token,
        None,
        "user-1",
        ["read", "write"],
        {"key": "value"},
        1_699_996_400,
        "Bearer",
        TYPICAL_TOKEN.grant_id,
    ]
    assert AUTH_CODE_CODEC.encode(AuthorizationCode("c", "x", 1, None, [], grant_id="g-1")) == b'code:2:["c","x",1,null,[],{},null,null,null,"g-1"]'
    client = Client("c", "s", scopes=["read"], token_endpoint_auth_method="client_secret_post")
    assert CLIENT_CODEC.encode(client) == b'client:3:["c","s",[],null,null,["read"],"client_secret_post",null]'


def test_reads_version_1_payloads_stored_by_the_previous_release() -> None:
    """Bytes as release 0.1.0 wrote them: their records have no issue time, the Bearer type, any scope
    and the default authentication method."""
    token = ACCESS_TOKEN_CODEC.decode(b'token:1:["client-id","authorization_code","tok",1700000000,"ref",null,"user-1",["read"],{"k":"v"}]')
    assert token == AccessToken("client-id", "authorization_code", "tok", {"k": "v"}, 1_700_000_000, "ref", ["read"], user_id="user-1")
    assert (token.issued_at, token.token_type) == (None, "Bearer")
    confidential = CLIENT_CODEC.decode(b'client:1:["app","s3cret",["https://a.example/cb"],["authorization_code"],null]')
    assert confidential == Client("app", "s3cret", ["https://a.example/cb"], authorized_grants=["authorization_code"])
    assert (confidential.scopes, confidential.token_endpoint_auth_method) == (None, "client_secret_basic")
    public = CLIENT_CODEC.decode(b'client:1:["spa","",[],null,null]')
    assert (public.scopes, public.token_endpoint_auth_method) == (None, "none")
    # Written back, an old record takes the current version.
    assert ACCESS_TOKEN_CODEC.encode(token).startswith(b"token:3:") and CLIENT_CODEC.encode(public).startswith(b"client:3:")


def test_records_of_earlier_versions_get_the_grant_id_derived_from_their_secret() -> None:
    """Tokens and codes written before grants existed each start their own grant, named after the
    refresh token (or token) and the code, so a grant revocation and a replay still find them."""
    token = ACCESS_TOKEN_CODEC.decode(b'token:2:["c","authorization_code","tok",null,"ref",null,null,[],{},null,"Bearer"]')
    assert token.grant_id == derive_grant_id("refresh_token", "ref") != derive_grant_id("token", "tok")
    code = AUTH_CODE_CODEC.decode(b'code:1:["c","cod",1,null,[],{},null,null,null]')
    assert code.grant_id == derive_grant_id("code", "cod")
    explicit = attrs.evolve(token, grant_id="g-explicit")
    assert ACCESS_TOKEN_CODEC.decode(ACCESS_TOKEN_CODEC.encode(explicit)).grant_id == "g-explicit"


def test_typical_token_is_at_most_70_percent_of_python_oauth2_bytes() -> None:
    # python-oauth2 1.1.1's memcache store set access_token.__dict__ through python-memcached,
    # which pickles with protocol 0 by default.
    legacy = pickle.dumps({**TYPICAL_TOKEN_FIELDS, "refresh_expires_at": None}, protocol=0)
    ours = ACCESS_TOKEN_CODEC.encode(TYPICAL_TOKEN)
    assert len(ours) <= 0.7 * len(legacy), (len(ours), len(legacy))


def test_non_ascii_text_is_stored_as_utf8_not_escapes() -> None:
    token = AccessToken("clïent", "password", "tøken ✓")
    payload = ACCESS_TOKEN_CODEC.encode(token)
    assert "tøken ✓".encode() in payload
    assert ACCESS_TOKEN_CODEC.decode(payload) == token


@pytest.mark.reliability
@pytest.mark.parametrize(
    ("codec", "payload", "message"),
    [
        (ACCESS_TOKEN_CODEC, b"", "no valid header"),
        (ACCESS_TOKEN_CODEC, b"token", "no valid header"),
        (ACCESS_TOKEN_CODEC, b"token:1", "no valid header"),
        (ACCESS_TOKEN_CODEC, b"TOKEN:1:[]", "no valid header"),
        (ACCESS_TOKEN_CODEC, b"token:01:[]", "no valid header"),
        (ACCESS_TOKEN_CODEC, b"code:1:[]", "holds a 'code' record"),
        (AUTH_CODE_CODEC, b"token:1:[]", "holds a 'token' record"),
        (ACCESS_TOKEN_CODEC, b"token:4:[]", "unknown format version 4"),
        (ACCESS_TOKEN_CODEC, b"token:2:[]", "expected 11 fields, got 0"),
        (ACCESS_TOKEN_CODEC, b'token:2:["c","g","t",null,null,null,null,[],{},null,""]', "token_type must not be empty"),
        (ACCESS_TOKEN_CODEC, b'token:2:["c","g","t",null,null,null,null,[],{},-1,"Bearer"]', "issued_at must be between"),
        (CLIENT_CODEC, b'client:2:["c","",[],null,null,null,"client_secret_basic"]', "must be 'none' for a public client"),
        (CLIENT_CODEC, b'client:2:["c","s",[],null,null,null,"private_key_jwt"]', "token_endpoint_auth_method must be"),
        (CLIENT_CODEC, b'client:2:["c","s",[],null,null,["a b"],"none"]', "not a valid scope token"),
        (ACCESS_TOKEN_CODEC, b"token:1:", "invalid JSON"),
        (ACCESS_TOKEN_CODEC, b'token:1:["a","b"', "invalid JSON"),
        (ACCESS_TOKEN_CODEC, b"token:1:\xff\xfe", "invalid JSON"),
        (ACCESS_TOKEN_CODEC, b"token:1:" + b"[" * 200_000, "invalid JSON"),
        (ACCESS_TOKEN_CODEC, b'token:1:["c","g","t",NaN,null,null,null,[],{}]', "invalid JSON"),
        (ACCESS_TOKEN_CODEC, b'token:1:{"token":"t"}', "expected a JSON array"),
        (ACCESS_TOKEN_CODEC, b'token:1:["c","g","t"]', "expected 9 fields, got 3"),
        (ACCESS_TOKEN_CODEC, b'token:1:[1,"g","t",null,null,null,null,[],{}]', "client_id must be a string"),
        (ACCESS_TOKEN_CODEC, b'token:1:["c","g","t",1.5,null,null,null,[],{}]', "expires_at must be an integer"),
        (ACCESS_TOKEN_CODEC, b'token:1:["c","g","t",true,null,null,null,[],{}]', "expires_at must be an integer"),
        (ACCESS_TOKEN_CODEC, b'token:1:["c","g","t",-5,null,null,null,[],{}]', "expires_at must be between"),
        (ACCESS_TOKEN_CODEC, b'token:1:["c","g","t",1e400,null,null,null,[],{}]', "expires_at must be an integer"),
        (ACCESS_TOKEN_CODEC, b'token:1:["c","g","t",null,null,null,null,"read",{}]', "scopes must be an array"),
        (ACCESS_TOKEN_CODEC, b'token:1:["c","g","t",null,null,null,null,[7],{}]', "an item of scopes"),
        (ACCESS_TOKEN_CODEC, b'token:1:["c","g","t",null,null,null,null,[],[]]', "data must be an object"),
        (ACCESS_TOKEN_CODEC, b'token:1:["c","g","t",null,null,null,null,[],{"x":1e400}]', "data['x']"),
        (ACCESS_TOKEN_CODEC, b'token:1:["c","g","",null,null,null,null,[],{}]', "token must not be empty"),
        (ACCESS_TOKEN_CODEC, b'token:1:["c","g","\\ud800",null,null,null,null,[],{}]', "not valid Unicode"),
        (ACCESS_TOKEN_CODEC, b'token:1:["c","g","t",null,null,5,null,[],{}]', "no refresh_token"),
        (ACCESS_TOKEN_CODEC, b'token:1:["c","g","t",null,null,null,null,[],' + b'{"a":' * 40 + b"1" + b"}" * 40 + b"]", "nests deeper"),
        (AUTH_CODE_CODEC, b'code:1:["c","x",1,null,[],{},null,null,"S512"]', "code_challenge_method"),
        (CLIENT_CODEC, b'client:1:["c","s","https://a.example/cb",null,null]', "redirect_uris must be an array"),
        (ACCESS_TOKEN_CODEC, b'{"client_id":"c","token":"t"}', "missing field 'grant_type'"),
        (ACCESS_TOKEN_CODEC, b"{not json", "invalid JSON"),
    ],
)
def test_bad_payloads_raise_codec_error_saying_what_is_wrong(codec: RecordCodec[Any], payload: bytes, message: str) -> None:
    with pytest.raises(CodecError) as caught:
        codec.decode(payload)
    assert message in str(caught.value)


@pytest.mark.reliability
def test_codec_error_never_repeats_the_payload() -> None:
    secret = "tok_do_not_log_me_1234567890abcdef"
    payloads = [
        f'token:1:["c","g","{secret}",1.5,null,null,null,[],{{}}]'.encode(),
        f"{secret}:1:[]".encode(),
        f'token:1:["c","g","{secret}"'.encode(),
        f'token:1:["c","g","{secret}",null,"",null,null,[],{{}}]'.encode(),
    ]
    for payload in payloads:
        with pytest.raises(CodecError) as caught:
            ACCESS_TOKEN_CODEC.decode(payload)
        # A logged traceback shows chained exceptions too: none of it may hold the secret.
        assert secret not in "".join(traceback.format_exception(caught.value))


# Version 0: the JSON objects python-oauth2 1.1.1's redis store wrote (json.dumps of __dict__ or of
# the dict literal in save_code / add_client), with python-oauth2's own field names.
def test_reads_python_oauth2_redis_token_json() -> None:
    legacy = json.dumps(
        {
            "client_id": "client-id",
            "grant_type": "authorization_code",
            "token": TYPICAL_TOKEN.token,
            "data": {"key": "value"},
            "expires_at": 1_700_000_000,
            "refresh_token": TYPICAL_TOKEN.refresh_token,
            "refresh_expires_at": None,
            "scopes": ["read", "write"],
            "user_id": "user-1",
        }
    ).encode()
    assert ACCESS_TOKEN_CODEC.decode(legacy) == attrs.evolve(TYPICAL_TOKEN, issued_at=None)
    # Reading an old record and writing it back upgrades it to the current version.
    assert ACCESS_TOKEN_CODEC.encode(ACCESS_TOKEN_CODEC.decode(legacy)).startswith(b"token:3:")


def test_reads_python_oauth2_json_with_integer_user_ids_and_missing_optional_fields() -> None:
    token = ACCESS_TOKEN_CODEC.decode(b'{"client_id":"c","grant_type":"password","token":"t","user_id":17}')
    assert token == AccessToken("c", "password", "t", user_id="17")
    code = AUTH_CODE_CODEC.decode(
        json.dumps(
            {"client_id": "c", "code": "abc", "expires_at": 600, "redirect_uri": "https://a.example/cb", "scopes": ["read"], "data": None, "user_id": 3}
        ).encode()
    )
    assert code == AuthorizationCode("c", "abc", 600, "https://a.example/cb", ["read"], user_id="3")
    client = CLIENT_CODEC.decode(
        json.dumps(
            {"identifier": "c", "secret": "s", "redirect_uris": ["https://a.example/cb"], "authorized_grants": None, "authorized_response_types": ["code"]}
        ).encode()
    )
    assert client == Client("c", "s", ["https://a.example/cb"], authorized_response_types=["code"])


def test_a_codec_keeps_reading_the_versions_it_wrote_before() -> None:
    """The mechanism a format change uses: write version 4, keep version 3's loader registered."""
    v3 = ACCESS_TOKEN_CODEC
    record_from_v3: Callable[[object], AccessToken] = lambda parsed: v3.decode(b"token:3:" + json.dumps(parsed).encode())

    def dump_v4(token: AccessToken) -> list[object]:
        return [{"client": token.client_id, "grant": token.grant_type, "token": token.token}]

    def load_v4(parsed: object) -> AccessToken:
        assert isinstance(parsed, list) and isinstance(parsed[0], dict)
        return AccessToken(parsed[0]["client"], parsed[0]["grant"], parsed[0]["token"])

    v4 = RecordCodec("token", AccessToken, 4, dump_v4, {3: record_from_v3, 4: load_v4})
    simple = AccessToken("c", "password", "t")
    assert v4.encode(simple).startswith(b"token:4:")
    assert v4.decode(v4.encode(simple)) == simple
    assert v4.decode(v3.encode(TYPICAL_TOKEN)) == TYPICAL_TOKEN
    with pytest.raises(CodecError, match="unknown format version 4"):
        v3.decode(v4.encode(simple))
    with pytest.raises(CodecError, match="unknown format version 0"):
        v4.decode(b'{"client_id":"c"}')


def test_a_codec_must_read_what_it_writes() -> None:
    with pytest.raises(ValueError, match="no loader"):
        RecordCodec("token", AccessToken, 3, lambda token: [], {1: lambda parsed: TYPICAL_TOKEN})


def _mutations() -> st.SearchStrategy[bytes]:
    """Valid payloads with bytes flipped, inserted, deleted or cut off."""

    @st.composite
    def mutate(draw: st.DrawFn) -> bytes:
        codec, strategy = draw(st.sampled_from(CODECS))
        payload = bytearray(codec.encode(draw(strategy)))
        for _ in range(draw(st.integers(1, 4))):
            position = draw(st.integers(0, len(payload)))
            action = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
            if action == "flip" and position < len(payload):
                payload[position] ^= draw(st.integers(1, 255))
            elif action == "insert":
                payload[position:position] = draw(st.binary(min_size=1, max_size=4) | st.sampled_from([b'"', b"[", b"{", b",", b"null", b"1e999", b"\\u"]))
            elif action == "delete":
                del payload[position : position + draw(st.integers(1, 4))]
            else:
                del payload[position:]
        return bytes(payload)

    return mutate()


@pytest.mark.reliability
def test_decode_returns_a_valid_record_or_raises_codec_error(scale: Scale, figures: Figures) -> None:
    """Random bytes and mutated valid payloads, each decoded by every codec (hypothesis; the
    seeded mutation loop in test_reliability_input.py adds volume)."""
    outcomes: Counter[str] = Counter()

    @settings(max_examples=scale.pick(500, 10_000, typeguard=200))
    @given(st.binary(max_size=300) | _mutations())
    def decode_with_every_codec(payload: bytes) -> None:
        for codec, _ in CODECS:
            try:
                record = codec.decode(payload)
            except CodecError:
                outcomes["CodecError"] += 1
                continue
            assert isinstance(record, codec.record_type)
            assert codec.decode(codec.encode(record)) == record
            outcomes["record"] += 1

    decode_with_every_codec()
    figures(
        f"codec fuzz (hypothesis): {sum(outcomes.values()):,} decodes of random and mutated payloads: "
        f"{outcomes['record']:,} valid records, {outcomes['CodecError']:,} CodecError, nothing else"
    )


def test_encode_refuses_nothing_a_record_accepts() -> None:
    """Everything a record can hold is JSON-encodable, so save never fails on the codec."""
    with pytest.raises(RecordValueError):
        AccessToken("c", "g", "t", {"x": float("nan")})
    big = AccessToken("c", "g", "t", {"n": 2**63 - 1, "m": -(2**63) + 1, "f": 1e308, "s": "\x00\u2028"})
    assert ACCESS_TOKEN_CODEC.decode(ACCESS_TOKEN_CODEC.encode(big)) == big


_token_field_values = st.sampled_from(
    ["", "a", "é", "\ud800", "read", 'a"b', "a b", "x" * 256, 0, -1, 2**63, 2**63 - 1, True, 1.5, None, [], ["read"], ["read", ""], ["bad scope"], {}, {"k": "v"}, {"k": ["v"]}, {"é": "v"}]
)


@settings(max_examples=300)
@given(st.lists(_token_field_values, min_size=11, max_size=13), st.data())
def test_the_plain_token_shortcut_reads_exactly_what_the_checked_path_reads(fields: list[object], data: st.DataObject) -> None:
    """A version 3 token array, valid or not: where the shortcut builds a record, the checked path
    builds the same one; where the checked path refuses, the shortcut declines."""
    if len(fields) == 12 and data.draw(st.booleans()):  # mostly valid arrays, with one field drawn at random
        valid: list[object] = ["client", "authorization_code", "token", 100, "refresh", None, "user", ["read"], {"k": "v"}, 50, "Bearer", "g-1"]
        index = data.draw(st.integers(0, 11))
        fields = [*valid[:index], fields[index], *valid[index + 1 :]]
    shortcut = _plain_token_v3(fields)
    try:
        checked = _checked_token_v3(fields)
    except (CodecError, RecordError):
        assert shortcut is None
        return
    assert shortcut is None or (shortcut == checked and type(shortcut.scopes) is tuple)


def test_a_typical_token_is_read_by_the_shortcut() -> None:
    """The shortcut is what reads the tokens a server writes (else the property above tests little)."""
    token = AccessToken("client", "authorization_code", "tok", {"k": "v"}, 100, "ref", ["read"], user_id="u", issued_at=50)
    parsed = json.loads(ACCESS_TOKEN_CODEC.encode(token)[len(b"token:3:") :])
    shortcut = _plain_token_v3(parsed)
    assert shortcut is not None
    assert shortcut == token
    assert type(shortcut.data) is FrozenJSON
