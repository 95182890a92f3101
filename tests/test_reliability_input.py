"""Reliability: hostile input never gets further than a clear error.

Issue 7's hostile-input scenarios that existing tests do not already cover (those are marked
``reliability`` where they are: the hypothesis fuzz of every codec in ``test_codec.py``, invalid
prefixes and oversized records in ``test_memcache_store.py``, invalid record fields in
``test_models.py`` and ``test_json_data.py``, and the no-pickle/marshal/eval check in
``test_packaging.py``):

- **Raw volume against the codecs**: a seeded mutation loop over valid payloads of every format
  (byte-level and JSON-level mutations), each input decoded by all three codecs: a valid record
  or CodecError, nothing else.
- **Keys**: tokens, refresh tokens, codes, client ids, grant types and user ids made of spaces,
  CR/LF, NUL, unicode, 250+ bytes and memcached command text, saved, read, consumed and revoked
  through every client set-up, on servers that hold only this module's keys: canaries saved first
  are intact afterwards, every key on the servers is a well-formed digest key, and no server ever
  ran ``flush_all``.
- **Secrets**: tokens, refresh tokens, codes and client secrets never appear in keys, reprs, log
  records, captured output or exception text (chains included), across successful operations,
  misses, corrupt values, refused records and a dead server, through each client library and the
  in-memory stores.

Each scenario prints a one-line summary (``pytest -s``). Sizes come from the ``scale`` fixture.
"""

from __future__ import annotations

import json
import logging
import random
import re
import secrets
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pymemcache.client.base import Client as RawClient

from oauth2_store import AccessToken, AuthorizationCode, Client
from oauth2_store.codec import ACCESS_TOKEN_CODEC, AUTH_CODE_CODEC, CLIENT_CODEC, RecordCodec
from oauth2_store.error import AccessTokenNotFound, AuthCodeNotFound, CodecError
from oauth2_store.json_data import thaw
from oauth2_store.store import LocalClientStore, LocalTokenStore
from oauth2_store.store.memcache import MemcacheTokenStore
from oauth2_store.testing import AWKWARD_SECRETS
from tests.memcache_backends import BACKENDS, Backend, _host_port
from tests.memcached_server import MemcachedServer
from tests.support import Figures, Scale

pytestmark = pytest.mark.reliability

CODECS: list[RecordCodec[Any]] = [ACCESS_TOKEN_CODEC, AUTH_CODE_CODEC, CLIENT_CODEC]


# Raw volume against the codecs.


def _random_text(rng: random.Random, size: int) -> str:
    alphabet = "abcXYZ019 -_.:/\"\\\t\r\n\x00\x7f\u00e9\u2028\u4e2d\U0001f511{}[],"
    return "".join(rng.choice(alphabet) for _ in range(size)) or "x"


def _random_json(rng: random.Random, depth: int = 0) -> object:
    roll = rng.random()
    if depth < 3 and roll < 0.15:
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    if depth < 3 and roll < 0.3:
        return {_random_text(rng, rng.randrange(1, 6)): _random_json(rng, depth + 1) for _ in range(rng.randrange(4))}
    return rng.choice([None, True, False, 0, -1, 2**63 - 1, -(2**63) + 1, 1.5, -0.0, 1e308, "", _random_text(rng, rng.randrange(12))])


def _seed_records(rng: random.Random) -> list[tuple[RecordCodec[Any], object]]:
    """Valid records of every kind, with every optional field both set and unset."""
    records: list[tuple[RecordCodec[Any], object]] = []
    for _ in range(40):
        refresh = rng.choice([None, _random_text(rng, 20)])
        data = {_random_text(rng, 4): _random_json(rng) for _ in range(rng.randrange(4))}
        records.append(
            (
                ACCESS_TOKEN_CODEC,
                AccessToken(
                    _random_text(rng, 8),
                    rng.choice(["authorization_code", "password", "client_credentials"]),
                    _random_text(rng, 32),
                    data,
                    rng.choice([None, rng.randrange(2**63)]),
                    refresh,
                    rng.sample(["read", "write", "admin", "x:y"], rng.randrange(4)),
                    refresh_expires_at=None if refresh is None else rng.choice([None, rng.randrange(2**40)]),
                    user_id=rng.choice([None, _random_text(rng, 6)]),
                ),
            )
        )
        challenge = rng.choice([None, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"])
        records.append(
            (
                AUTH_CODE_CODEC,
                AuthorizationCode(
                    _random_text(rng, 8),
                    _random_text(rng, 24),
                    rng.randrange(2**40),
                    rng.choice([None, "https://app.example/cb", "com.example:/x"]),
                    rng.sample(["read", "write"], rng.randrange(3)),
                    rng.choice([None, data]),
                    user_id=rng.choice([None, _random_text(rng, 6)]),
                    code_challenge=challenge,
                    code_challenge_method=None if challenge is None else rng.choice([None, "plain", "S256"]),
                ),
            )
        )
        records.append(
            (
                CLIENT_CODEC,
                Client(
                    _random_text(rng, 8),
                    rng.choice(["", _random_text(rng, 16)]),
                    rng.sample(["https://a.example/cb", "https://b.example/cb?x=1", "app:/cb"], rng.randrange(4)),
                    authorized_grants=rng.choice([None, ["password"], []]),
                    authorized_response_types=rng.choice([None, ["code", "token"]]),
                ),
            )
        )
    return records


HOSTILE_JSON_VALUES: list[object] = [
    None, True, 0, -1, 1.5, 2**63, -(2**63), 2**64, 10**400, "", "\ud800", "x" * 3000, [], {}, [[[[[]]]]], {"": None},
    ["read", 7], {"a": {"b": {"c": float("inf")}}},
]
"""Values a JSON-level mutation puts in place of a field: wrong types, out-of-range numbers,
lone surrogates, non-finite floats, empty and oversized values."""

HOSTILE_FRAGMENTS: list[bytes] = [
    b'"', b"[", b"]", b"{", b"}", b",", b":", b"null", b"1e999", b"-1e999", b"NaN", b"Infinity", b"\\u", b"\\ud800",
    b"\x00", b"\xff", b"\xc3", b"token:1:", b"code:1:", b"client:1:", b"token:0:", b"token:2:", b"[" * 5000, b"9" * 5000,
]
"""Byte strings a byte-level mutation inserts: JSON syntax, non-finite and huge numbers, broken
escapes and UTF-8, headers of every kind and version, deep nesting."""


def _json_mutation(rng: random.Random, payload: bytes) -> bytes:
    """Parse the payload's JSON body, replace one field (or item of it) with a hostile value, and
    write it back: inputs that pass the JSON parser and reach the field checks."""
    header, brace, _ = payload.partition(b"[") if not payload.startswith(b"{") else (b"", b"", b"")
    body = payload[len(header) :] if brace else payload
    parsed = json.loads(body)
    value = rng.choice(HOSTILE_JSON_VALUES)
    if isinstance(parsed, list) and parsed:
        index = rng.randrange(len(parsed))
        if isinstance(parsed[index], list) and parsed[index] and rng.random() < 0.5:
            parsed[index][rng.randrange(len(parsed[index]))] = value
        elif rng.random() < 0.1:
            del parsed[index]
        else:
            parsed[index] = value
    elif isinstance(parsed, dict) and parsed:
        key = rng.choice(sorted(parsed))
        if rng.random() < 0.2:
            del parsed[key]
        else:
            parsed[key] = value
    text = json.dumps(parsed, allow_nan=True, ensure_ascii=rng.random() < 0.5)
    return header + text.encode("utf-8", "surrogatepass")


def _byte_mutation(rng: random.Random, payload: bytes, others: list[bytes]) -> bytes:
    """Flip, insert, delete, duplicate, splice or cut bytes of the payload, one to four times."""
    data = bytearray(payload)
    for _ in range(rng.randint(1, 4)):
        position = rng.randint(0, len(data))
        action = rng.randrange(7)
        if action == 0 and position < len(data):
            data[position] ^= rng.randint(1, 255)
        elif action == 1:
            data[position:position] = rng.choice(HOSTILE_FRAGMENTS)
        elif action == 2:
            data[position:position] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif action == 3:
            del data[position : position + rng.randint(1, 16)]
        elif action == 4:
            del data[position:]
        elif action == 5:
            data[position:position] = data[rng.randint(0, len(data)) :][: rng.randint(1, 64)]
        else:
            other = rng.choice(others)
            data[position:] = other[rng.randint(0, len(other)) :]
    return bytes(data)


def _legacy_payload(record: object) -> bytes:
    """The header-less JSON object (format version 0) python-oauth2's redis store wrote."""
    if isinstance(record, AccessToken):
        fields: dict[str, object] = dict(
            client_id=record.client_id,
            grant_type=record.grant_type,
            token=record.token,
            data=thaw(record.data),
            expires_at=record.expires_at,
            refresh_token=record.refresh_token,
            refresh_expires_at=record.refresh_expires_at,
            scopes=list(record.scopes),
            user_id=record.user_id,
        )
    elif isinstance(record, AuthorizationCode):
        fields = dict(
            client_id=record.client_id,
            code=record.code,
            expires_at=record.expires_at,
            redirect_uri=record.redirect_uri,
            scopes=list(record.scopes),
            data=thaw(record.data),
            user_id=record.user_id,
        )
    else:
        assert isinstance(record, Client)
        fields = dict(identifier=record.identifier, secret=record.secret, redirect_uris=list(record.redirect_uris), authorized_grants=None, authorized_response_types=None)
    return json.dumps(fields).encode()


def test_codecs_decode_a_valid_record_or_raise_codec_error_for_every_mutated_payload(scale: Scale, figures: Figures) -> None:
    inputs = scale.pick(30_000, 1_000_000, typeguard=3_000)
    rng = random.Random(20261128)
    seeds = [codec.encode(record) for codec, record in _seed_records(rng)]
    seeds += [_legacy_payload(record) for _, record in _seed_records(rng)[:30]]
    outcomes: Counter[str] = Counter()
    unexpected: list[str] = []
    started = time.perf_counter()
    for _ in range(inputs):
        seed = rng.choice(seeds)
        payload = _json_mutation(rng, seed) if rng.random() < 0.35 else _byte_mutation(rng, seed, seeds)
        for codec in CODECS:
            try:
                record = codec.decode(payload)
            except CodecError:
                outcomes["CodecError"] += 1
                continue
            except Exception as error:  # the failure this test exists to find
                outcomes["unexpected"] += 1
                if len(unexpected) < 5:
                    unexpected.append(f"{codec.kind}.decode({payload[:200]!r}...) raised {error!r}")
                continue
            # A decoded record is a valid record: of the codec's type, and it round-trips.
            if not isinstance(record, codec.record_type) or codec.decode(codec.encode(record)) != record:
                unexpected.append(f"{codec.kind}.decode({payload[:200]!r}) returned an invalid {record!r}")
            outcomes["record"] += 1
    elapsed = time.perf_counter() - started
    total = sum(outcomes.values())
    figures(
        f"codec fuzz (seeded mutations): {inputs:,} mutated payloads x 3 codecs = {total:,} decodes in {elapsed:.1f} s: "
        f"{outcomes['record']:,} valid records, {outcomes['CodecError']:,} CodecError, {outcomes['unexpected']:,} unexpected exceptions"
    )
    assert not unexpected, unexpected
    assert total == 3 * inputs
    # Both outcomes occur, or the mutations tested nothing.
    assert outcomes["record"] > inputs // 100 and outcomes["CodecError"] > inputs


# Keys.

HOSTILE_STRINGS: tuple[str, ...] = tuple(dict.fromkeys(AWKWARD_SECRETS + (
    " ",
    "\r\n",
    "\x00",
    "\r\nflush_all\r\n",
    "x\r\nflush_all noreply\r\nget y",
    "delete canary 0\r\n",
    "k" * 250,
    "k" * 251,
    "é" * 200,  # 400 bytes of UTF-8
    "\u2028\u2029\ufeff\U0001f511",
    "oauth2:t:" + "0" * 64,  # looks like a key itself
)))
"""Distinct strings valid as tokens, codes and ids that break a naive key scheme."""

LONE_SURROGATES = ("\ud800", "tok\udcff", "\r\nflush_all\r\n\udfff")
"""Lookup strings no record can hold."""

KEY = re.compile(r"[A-Za-z0-9_.:\-]{1,100}:[trcugkxei]:[0-9a-f]{64}")


@pytest.fixture(scope="module")
def clean_servers() -> Iterator[list[MemcachedServer]]:
    """Three memcached servers that hold nothing but this module's keys."""
    servers = [MemcachedServer().start() for _ in range(3)]
    yield servers
    for server in servers:
        server.stop()


@pytest.mark.parametrize("backend", BACKENDS, ids=[backend.name for backend in BACKENDS])
def test_hostile_keys_never_reach_memcached_as_commands_nor_touch_other_records(backend: Backend, clean_servers: list[MemcachedServer], figures: Figures) -> None:
    servers = clean_servers[: backend.servers]
    addresses = [server.address for server in servers]
    now = int(time.time())
    canary_store = backend.make_store(addresses)
    canary = AccessToken("canary", "password", f"canary-{secrets.token_hex(8)}", {"k": "v"}, now + 3600, f"canary-r-{secrets.token_hex(8)}", ["read"], user_id="canary")
    canary_code = AuthorizationCode("canary", f"canary-c-{secrets.token_hex(8)}", now + 600, None, ["read"])
    raw = [RawClient(_host_port(address), default_noreply=False) for address in addresses]
    store = backend.make_store(addresses)
    operations = keys_seen = 0
    try:
        canary_store.save_token(canary)
        canary_store.save_code(canary_code)
        for client in raw:
            client.set("canary", b"raw canary")  # the key a hostile "delete canary" would hit
        seen = {key for server in servers for key in server.keys()}
        allowed: set[str] = set()
        for hostile in HOSTILE_STRINGS:
            token = AccessToken(hostile, hostile, hostile, {hostile: hostile}, now + 3600, hostile + "r", ["read"], user_id=hostile)
            code = AuthorizationCode(hostile, hostile, now + 600, None, ["read"], {hostile: hostile}, user_id=hostile)
            store.save_token(token)
            store.save_code(code)
            # Read while the hostile record is stored: the loop deletes it again below.
            present = {key for server in servers for key in server.keys()}
            # A listing can lag a key just written: what is new to us, of this store's (the
            # canaries' keys are checked below).
            written = {key for key in present - seen if key.startswith(store._prefix + ":")}
            seen |= present
            records = {store._key("t", hostile), store._key("r", hostile + "r"), store._user_key(hostile, hostile, hostile), store._key("c", hostile)}
            lifecycle = {store._grant_key(token.grant_id), store._grant_key(code.grant_id), *store._epoch_keys(hostile, hostile)}
            lifecycle |= {store._key("i", f"c:{hostile}"), store._key("i", f"u:{hostile}")}
            # The consumed and retired markers below (a listing may show them only now).
            markers = {store._key("k", hostile), store._key("x", hostile + "r")}
            allowed |= records | lifecycle | markers
            # The token, refresh token, user entry and code, their grants, epochs, indexes and markers: nothing else.
            assert records <= present and written <= allowed, sorted(written - allowed)
            keys_seen += len(written)
            assert all(KEY.fullmatch(key) for key in written), written
            assert not any(hostile in key for key in written if len(hostile) > 3)
            assert store.fetch_by_token(hostile) == token
            assert store.fetch_by_refresh_token(hostile + "r") == token
            assert store.fetch_existing_token_of_user(hostile, hostile, hostile) == token
            assert store.fetch_by_code(hostile) == code
            assert store.consume_code(hostile) == code
            with pytest.raises(AuthCodeNotFound):
                store.consume_code(hostile)
            store.delete_code(hostile)
            store.delete_refresh_token(hostile + "r")
            with pytest.raises(AccessTokenNotFound):
                store.fetch_by_token(hostile)
            operations += 11
        for lone in LONE_SURROGATES:
            with pytest.raises(AccessTokenNotFound):
                store.fetch_by_token(lone)
            with pytest.raises(AccessTokenNotFound):
                store.delete_refresh_token(lone)
            with pytest.raises(AuthCodeNotFound):
                store.consume_code(lone)
            store.delete_code(lone)
            operations += 4
        # The canaries, saved first, are intact.
        assert canary_store.fetch_by_token(canary.token) == canary
        assert canary_store.fetch_by_refresh_token(canary.refresh_token or "") == canary
        assert canary_store.fetch_by_code(canary_code.code) == canary_code
        assert all(client.get("canary") == b"raw canary" for client in raw)
    finally:
        for closing in (canary_store, store):
            closing.close()
        for client in raw:
            client.close()
    keys = [key for server in servers for key in server.keys()]
    malformed = [key for key in keys if key != "canary" and KEY.fullmatch(key) is None]
    flushes = sum(int(server.stats()["cmd_flush"]) for server in servers)
    figures(
        f"hostile keys ({backend.name}): {len(HOSTILE_STRINGS)} hostile strings + {len(LONE_SURROGATES)} lone surrogates, "
        f"{operations} operations: {keys_seen} keys written, all well-formed digests; canaries intact, {len(keys)} keys left, "
        f"{len(malformed)} malformed, {flushes} flush_all"
    )
    assert not malformed, malformed[:5]
    assert not any(hostile in key for key in keys for hostile in HOSTILE_STRINGS if len(hostile) > 3 and hostile != "canary")
    assert flushes == 0


# Secrets.


class Collected:
    """Every text a failure or a log could show: exceptions (their str, repr, args and whole
    chain as a traceback prints it) and reprs of returned records."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.exceptions: Counter[str] = Counter()

    def attempt(self, call: Callable[[], object]) -> object:
        """Run ``call``; keep the repr of what it returns, or every text of what it raises."""
        try:
            result = call()
        except Exception as error:
            self.exceptions[type(error).__name__] += 1
            self.texts.append("".join(traceback.format_exception(error)))
            chained: BaseException | None = error
            while chained is not None:
                self.texts += [str(chained), repr(chained), repr(chained.args)]
                chained = chained.__cause__ or chained.__context__
            return None
        self.texts.append(repr(result))
        return result


LIBRARIES: dict[str, dict[str, Any]] = {
    "pymemcache": {"connect_timeout": 0.5, "timeout": 0.5},
    "pylibmc": {"binary": True},
    "python-memcached": {"debug": 1, "socket_timeout": 0.5},
}
"""One store per client library; python-memcached with debug on, so it writes what it would log."""


@pytest.mark.parametrize("library", sorted(LIBRARIES))
def test_secrets_never_appear_in_keys_reprs_logs_or_exceptions(
    library: str, own_memcached: MemcachedServer, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str], figures: Figures
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("pymemcache", "memcache", "pylibmc", "oauth2_store"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    secret_values = {name: f"{name}_{secrets.token_hex(16)}" for name in ("token", "refresh", "code", "client_secret", "token2", "code2")}
    token_s, refresh_s, code_s, client_s = secret_values["token"], secret_values["refresh"], secret_values["code"], secret_values["client_secret"]
    now = int(time.time())
    seen = Collected()
    attempt = seen.attempt
    store = MemcacheTokenStore(servers=[own_memcached.address], prefix="secrets", **LIBRARIES[library])
    token = AccessToken("client", "authorization_code", token_s, {"ip": "192.0.2.1"}, now + 3600, refresh_s, ["read"], user_id="alice")
    code = AuthorizationCode("client", code_s, now + 600, "https://app.example/cb", ["read"], code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", code_challenge_method="S256")
    try:
        # Successful operations.
        attempt(lambda: store.save_token(token))
        attempt(lambda: store.save_code(code))
        keys = own_memcached.keys()
        attempt(lambda: store.fetch_by_token(token_s))
        attempt(lambda: store.fetch_by_refresh_token(refresh_s))
        attempt(lambda: store.fetch_existing_token_of_user("client", "authorization_code", "alice"))
        attempt(lambda: store.fetch_by_code(code_s))
        attempt(lambda: store.consume_code(code_s))
        # Misses.
        attempt(lambda: store.consume_code(code_s))
        attempt(lambda: store.fetch_by_token(secret_values["token2"]))
        attempt(lambda: store.delete_refresh_token(secret_values["token2"]))
        attempt(lambda: store.fetch_by_token(token_s + "\udcff"))
        # Corrupt values holding the secrets, planted under the keys the store reads.
        raw = RawClient(_host_port(own_memcached.address), default_noreply=False)
        try:
            raw.set(store._key("t", secret_values["token2"]), f'token:1:["c","g","{secret_values["token2"]}",1.5,null,null,null,[],{{}}]'.encode())
            raw.set(store._key("r", refresh_s), f"{refresh_s}:1:[]".encode())
            raw.set(store._key("c", secret_values["code2"]), f'code:1:["c","{secret_values["code2"]}",1,null,[],{{}},null,"{client_s}","S256"]'.encode())
            raw.set(store._key("c", code_s), f'token:1:["c","g","{code_s}",null,null,null,null,[],{{}}]'.encode(), flags=1)  # flagged as a pickle
        finally:
            raw.close()
        attempt(lambda: store.fetch_by_token(secret_values["token2"]))
        attempt(lambda: store.fetch_by_refresh_token(refresh_s))
        attempt(lambda: store.consume_code(secret_values["code2"]))
        attempt(lambda: store.consume_code(code_s))
        attempt(lambda: CLIENT_CODEC.decode(f'client:1:["c","{client_s}",["{client_s}"],null,null]'.encode()))
        attempt(lambda: CLIENT_CODEC.decode(json.dumps({"identifier": "c", "secret": client_s, "redirect_uris": [client_s]}).encode()))
        # Refused records, and one too large to store.
        attempt(lambda: AccessToken("c", "g", token_s, refresh_token=refresh_s, scopes=[token_s + " x"]))
        attempt(lambda: AccessToken("c", "g", token_s, {"x": float("nan")}, refresh_token=refresh_s))
        attempt(lambda: AuthorizationCode("c", code_s, -1, None, []))
        attempt(lambda: Client("c", client_s, [client_s]))
        attempt(lambda: Client("c", client_s, ["https://a.example/cb#" + client_s]))
        attempt(lambda: store.save_token(AccessToken("c", "g", token_s, {"blob": "x" * 2_000_000}, refresh_token=refresh_s)))
        # A dead server.
        keys += own_memcached.keys()  # the planted values' keys too
        own_memcached.kill()
        attempt(lambda: store.save_token(token))
        attempt(lambda: store.fetch_by_token(token_s))
        attempt(lambda: store.fetch_by_refresh_token(refresh_s))
        attempt(lambda: store.consume_code(code_s))
        attempt(lambda: store.delete_refresh_token(refresh_s))
        attempt(lambda: store.delete_code(code_s))
    finally:
        store.close()
    # The in-memory stores.
    local, clients = LocalTokenStore(), LocalClientStore()
    attempt(lambda: local.save_token(token))
    attempt(lambda: local.fetch_by_token(token_s))
    attempt(lambda: local.fetch_by_token(secret_values["token2"]))
    attempt(lambda: local.delete_refresh_token(secret_values["token2"]))
    attempt(lambda: local.consume_code(code_s))
    attempt(lambda: clients.add_client("app", client_s, ["https://app.example/cb"]))
    attempt(lambda: clients.add_client("app", client_s, ["relative/" + client_s]))
    attempt(lambda: clients.fetch_by_client_id(client_s))

    output = capfd.readouterr()
    logged = [caplog.text] + [f"{record.getMessage()} {record.args!r}" for record in caplog.records]
    texts = seen.texts + logged + [output.out, output.err] + keys
    found = {name: value for name, value in secret_values.items() if any(value in text or value[-24:] in text for text in texts)}
    figures(
        f"secrets ({library}): {len(seen.exceptions)} kinds of exception raised {sum(seen.exceptions.values())} times "
        f"({', '.join(f'{name} {count}' for name, count in sorted(seen.exceptions.items()))}), {len(caplog.records)} log records, "
        f"{len(keys)} keys: {len(found)} secrets found"
    )
    assert not found, found
    # What the scenario must have gone through, or the check above proves nothing.
    assert len(keys) >= 8 and all(KEY.fullmatch(key) for key in keys)
    for expected in ("AccessTokenNotFound", "AuthCodeNotFound", "CodecError", "RecordValueError", "RecordTooLargeError", "StoreUnavailableError", "ClientNotFoundError"):
        assert seen.exceptions[expected], (expected, seen.exceptions)
