"""Client secrets kept only as hashes: the record, its codec, the stores and the integrations, and
what a Redis server holds after clients are registered (never a secret)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import statistics
import time
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import quote, urlencode

import attrs
import oauth2.error
import pytest
from authlib.integrations.flask_oauth2 import AuthorizationServer
from flask import Flask, Response
from hypothesis import given, settings
from oauth2.client_authenticator import ClientAuthenticator, request_body
from oauthlib.oauth2 import Server

from oauth2_store import Client
from oauth2_store.codec import CLIENT_CODEC
from oauth2_store.error import ClientNotFoundError, CodecError, RecordTypeError, RecordValueError, StoreUnavailableError
from oauth2_store.integrations.authlib import AuthlibStorage
from oauth2_store.integrations.oauthlib import StoreRequestValidator
from oauth2_store.integrations.python_oauth2 import ClientStore as PythonOAuth2ClientStore
from oauth2_store.models import SCRYPT_N, SCRYPT_P, SCRYPT_R, hash_secret
from oauth2_store.protocols import ClientStoreProtocol
from oauth2_store.store import LocalClientStore, LocalTokenStore
from oauth2_store.store.redis import redis_client
from oauth2_store.store.redis_client_store import RedisClientStore
from oauth2_store.store.sql import SqlClientStore
from oauth2_store.testing import ClientStoreContract
from tests.memcached_server import free_port
from tests.redis_server import RedisServer
from tests.strategies import clients
from tests.support import Figures, raised_for

SECRET = "s3cret-Zq8vL2pX"
UNICODE_SECRET = "ünïcödé ✓ 🔑 パスワード"
URI = "https://app.example/cb"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def cheap_hash(secret: str, n: int = 2**10, r: int = 8, p: int = 1, salt: bytes = b"0123456789abcdef") -> str:
    """A hash in hash_secret's format, built here from hashlib alone (an independent statement of
    the format), with cheap parameters so that property tests can make hundreds."""
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def hashed(secret: str, **fields: Any) -> Client:
    return Client("app", "", [URI], secret_hash=hash_secret(secret), **fields)


# -- hashing and verification ---------------------------------------------------------------


def test_hash_secret_names_its_parameters_and_salts_every_hash() -> None:
    first, second = hash_secret(SECRET), hash_secret(SECRET)
    scheme, n, r, p, salt, digest = first.split("$")
    assert (scheme, int(n), int(r), int(p)) == ("scrypt", SCRYPT_N, SCRYPT_R, SCRYPT_P) == ("scrypt", 2**14, 8, 1)
    assert len(base64.urlsafe_b64decode(salt + "==")) == 16 and len(base64.urlsafe_b64decode(digest + "=")) == 32
    assert first != second  # a new salt each time
    assert SECRET not in first


@pytest.mark.parametrize("secret", [SECRET, UNICODE_SECRET, "x", "with spaces\tand\r\nbreaks", "nul\x00byte", "$scrypt$" * 10, "y" * 5000])
def test_a_hashed_client_accepts_its_secret_and_nothing_else(secret: str) -> None:
    client = hashed(secret)
    assert client.check_secret(secret)
    for wrong in (secret + "x", secret[:-1], secret.upper() if secret.upper() != secret else secret + "X", "", " " + secret, "\udcff"):
        assert not client.check_secret(wrong), repr(wrong)
    assert not client.check_secret(client.secret_hash or "")  # the hash is not a usable secret


def test_unicode_secrets_are_compared_as_code_points_without_normalisation() -> None:
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    client = hashed(composed)
    assert client.check_secret(composed)
    assert not client.check_secret(decomposed)


def test_a_hash_verifies_with_the_parameters_it_names() -> None:
    for n, r, p in ((2**10, 8, 1), (2**12, 4, 2), (2**14, 8, 1)):
        client = Client("c", "", secret_hash=cheap_hash(SECRET, n, r, p))
        assert client.check_secret(SECRET) and not client.check_secret(SECRET + "!")


def test_a_hashed_client_is_confidential() -> None:
    client = hashed(SECRET)
    assert client.secret == "" and client.secret_hash is not None
    assert not client.is_public
    assert client.token_endpoint_auth_method == "client_secret_basic"
    assert hashed(SECRET, token_endpoint_auth_method="client_secret_post").token_endpoint_auth_method == "client_secret_post"
    with pytest.raises(RecordValueError, match="must be 'none' for a public client"):
        hashed(SECRET, token_endpoint_auth_method="none")
    public = Client("spa", "")
    assert public.is_public and public.secret_hash is None and not public.check_secret("")


def test_a_plaintext_secret_that_looks_like_a_hash_is_a_plaintext_secret() -> None:
    looks_like_a_hash = hash_secret(SECRET)
    client = Client("c", looks_like_a_hash)
    assert client.secret_hash is None
    assert client.check_secret(looks_like_a_hash)
    assert not client.check_secret(SECRET)
    decoded = CLIENT_CODEC.decode(f'client:2:["c","{looks_like_a_hash}",[],null,null,null,"client_secret_basic"]'.encode())
    assert decoded.secret_hash is None and decoded.check_secret(looks_like_a_hash) and not decoded.check_secret(SECRET)


def test_hash_secret_refuses_what_cannot_be_a_secret() -> None:
    with pytest.raises(RecordValueError, match="must not be empty"):
        hash_secret("")
    with pytest.raises(RecordValueError, match="lone surrogate"):
        hash_secret("bad\udcff")
    with pytest.raises(TypeError):
        hash_secret(b"bytes")  # type: ignore[arg-type]  # the point: not a str


def test_a_client_has_a_secret_or_a_hash_not_both() -> None:
    with pytest.raises(RecordValueError, match="not both"):
        Client("c", SECRET, secret_hash=cheap_hash(SECRET))


GOOD = cheap_hash(SECRET)
_, _N, _R, _P, SALT, DIGEST = GOOD.split("$")


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("", "of the form"),
        (SECRET, "of the form"),
        (GOOD.replace("scrypt$", "pbkdf2$"), "of the form"),
        (GOOD + "$", "of the form"),
        (" " + GOOD, "of the form"),
        (f"scrypt$1000$8$1${SALT}${DIGEST}", "out of bounds"),  # not a power of two
        (f"scrypt$512$8$1${SALT}${DIGEST}", "out of bounds"),  # too weak
        (f"scrypt${2**21}$1$1${SALT}${DIGEST}", "out of bounds"),  # too much work
        (f"scrypt${2**17}$8$1${SALT}${DIGEST}", "out of bounds"),  # 128 MiB
        (f"scrypt${2**14}$8$9${SALT}${DIGEST}", "out of bounds"),  # 9 times the default's work
        (f"scrypt$01024$8$1${SALT}${DIGEST}", "of the form"),
        (f"scrypt$1024$0$1${SALT}${DIGEST}", "of the form"),
        (f"scrypt$1024$8$1${_b64(b'short salt')}${DIGEST}", "of the form"),
        (f"scrypt$1024$8$1${SALT}${_b64(bytes(31))}", "of the form"),
        (f"scrypt$1024$8$1${SALT}{'A' * 3}${DIGEST}", "invalid salt"),  # 25 characters: no encoding has that length
        (f"scrypt$1024$8$1${SALT[:-1]}B${DIGEST}", "invalid salt"),  # non-canonical: the unused bits are set
        (f"scrypt$1024$8$1${SALT}${DIGEST[:-1]}B", "invalid salt"),
    ],
)
def test_malformed_or_unbounded_hashes_are_refused_without_quoting_them(bad: str, message: str) -> None:
    with pytest.raises(RecordValueError, match=message) as caught:
        Client("c", "", secret_hash=bad)
    assert not bad or bad not in str(caught.value)
    assert SALT not in str(caught.value) and DIGEST not in str(caught.value)


def test_a_secret_hash_must_be_a_str() -> None:
    with pytest.raises(TypeError, match="secret_hash"):
        Client("c", "", secret_hash=GOOD.encode())  # type: ignore[arg-type]  # the point: bytes


def test_with_hashed_secret_hashes_only_a_plaintext_secret() -> None:
    plain = Client("app", SECRET, [URI], scopes=["read"], token_endpoint_auth_method="client_secret_post")
    hashed_client = plain.with_hashed_secret()
    assert hashed_client.secret == "" and hashed_client.check_secret(SECRET)
    assert attrs.evolve(hashed_client, secret=SECRET, secret_hash=None) == plain  # every other field kept
    assert hashed_client.with_hashed_secret() is hashed_client
    public = Client("spa", "")
    assert public.with_hashed_secret() is public


def test_evolve_keeps_the_hash() -> None:
    client = hashed(SECRET)
    changed = attrs.evolve(client, scopes=["read"])
    assert changed.secret_hash == client.secret_hash and changed.check_secret(SECRET)
    with pytest.raises(RecordValueError, match="not both"):
        attrs.evolve(client, secret="new")
    assert attrs.evolve(client, secret="new", secret_hash=None).check_secret("new")


def test_hashes_of_one_secret_make_different_records() -> None:
    assert hashed(SECRET) != hashed(SECRET)
    one = hashed(SECRET)
    assert attrs.evolve(one) == one and hash(attrs.evolve(one)) == hash(one)
    assert Client("c", "", secret_hash=GOOD) != Client("c", SECRET)


def test_check_secret_cost(figures: Figures) -> None:
    """What one verification costs with the default parameters (reported, not asserted: shared machines)."""
    client = hashed(SECRET)
    timings = []
    for _ in range(7):
        start = time.perf_counter()
        assert client.check_secret(SECRET)
        timings.append(time.perf_counter() - start)
    plain = Client("app", SECRET)
    start = time.perf_counter()
    for _ in range(1000):
        plain.check_secret(SECRET)
    plain_cost = (time.perf_counter() - start) / 1000
    figures(f"check_secret: hashed (scrypt n=2**14 r=8 p=1) median {statistics.median(timings) * 1e3:.1f} ms, plaintext {plain_cost * 1e6:.2f} µs")


# -- repr ---------------------------------------------------------------------------------


def test_reprs_never_show_the_secret_or_its_hash() -> None:
    client = hashed(SECRET)
    assert client.secret_hash is not None
    salt, digest = client.secret_hash.split("$")[4:]
    for text in (repr(client), str(client), repr(attrs.evolve(client, scopes=["read"]))):
        assert SECRET not in text and client.secret_hash not in text
        assert salt not in text and digest not in text and "scrypt" not in text
        assert "secret_hash=<redacted>" in text and "secret=''" in text
    plain = repr(Client("c", SECRET))
    assert SECRET not in plain and "secret=<redacted>" in plain and "secret_hash=None" in plain


# -- codec --------------------------------------------------------------------------------


def test_a_hashed_client_is_written_as_version_3_and_read_back() -> None:
    client = hashed(SECRET, scopes=["read"])
    payload = CLIENT_CODEC.encode(client)
    assert payload.startswith(b"client:3:")
    assert json.loads(payload[len(b"client:3:") :]) == ["app", "", [URI], None, None, ["read"], "client_secret_basic", client.secret_hash]
    assert SECRET.encode() not in payload
    decoded = CLIENT_CODEC.decode(payload)
    assert decoded == client and decoded.check_secret(SECRET) and not decoded.check_secret("")
    assert CLIENT_CODEC.encode(Client("spa", "")) == b'client:3:["spa","",[],null,null,null,"none",null]'


@settings(max_examples=60)
@given(clients())
def test_decode_inverts_encode_for_hashed_clients(client: Client) -> None:
    if client.secret:
        client = attrs.evolve(client, secret="", secret_hash=cheap_hash(client.secret, salt=secrets.token_bytes(16)))
    payload = CLIENT_CODEC.encode(client)
    decoded = CLIENT_CODEC.decode(payload)
    assert decoded == client and CLIENT_CODEC.encode(decoded) == payload


@pytest.mark.parametrize(
    "payload",
    [
        json.dumps({"identifier": "app", "secret": SECRET, "redirect_uris": [URI], "authorized_grants": None, "authorized_response_types": None}).encode(),
        f'client:1:["app","{SECRET}",["{URI}"],null,null]'.encode(),
        f'client:2:["app","{SECRET}",["{URI}"],null,null,null,"client_secret_basic"]'.encode(),
        f'client:3:["app","{SECRET}",["{URI}"],null,null,null,"client_secret_basic",null]'.encode(),
    ],
    ids=["v0", "v1", "v2", "v3-plaintext"],
)
def test_clients_stored_with_a_plaintext_secret_still_load(payload: bytes) -> None:
    client = CLIENT_CODEC.decode(payload)
    assert client == Client("app", SECRET, [URI])
    assert client.secret_hash is None and client.check_secret(SECRET)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (f'client:3:["c","s",[],null,null,null,"client_secret_basic","{GOOD}"]', "not both"),
        (f'client:3:["c","",[],null,null,null,"none","{GOOD}"]', "must be 'none' for a public client"),
        ('client:3:["c","",[],null,null,null,"client_secret_basic","scrypt$1$1$1$x$y"]', "secret_hash must be of the form"),
        (f'client:3:["c","",[],null,null,null,"client_secret_basic",["{GOOD}"]]', "secret_hash must be a string"),
        ('client:3:["c","",[],null,null,null,"none"]', "expected 8 fields, got 7"),
        (f'client:2:["c","",[],null,null,null,"client_secret_basic","{GOOD}"]', "expected 7 fields, got 8"),
    ],
)
def test_invalid_version_3_payloads_are_codec_errors_that_never_quote_the_hash(payload: str, message: str) -> None:
    with pytest.raises(CodecError, match=message) as caught:
        CLIENT_CODEC.decode(payload.encode())
    assert SALT not in str(caught.value) and DIGEST not in str(caught.value)


# -- stores -------------------------------------------------------------------------------


def _add_all(store: LocalClientStore | RedisClientStore | SqlClientStore, clients: Sequence[Client]) -> None:
    for client in clients:
        store.add_client(
            client.identifier,
            client.secret,
            client.redirect_uris,
            authorized_grants=client.authorized_grants,
            authorized_response_types=client.authorized_response_types,
            scopes=client.scopes,
            token_endpoint_auth_method=client.token_endpoint_auth_method,
        )


class HashingClientStoreContract(ClientStoreContract):
    """The client contract (whose record comparison allows a hashed secret), plus: what the store
    returns really is hashed."""

    def test_secrets_come_back_hashed(self) -> None:
        confidential = Client(f"client-{secrets.token_hex(8)}", UNICODE_SECRET, [URI], token_endpoint_auth_method="client_secret_post")
        public = Client(f"client-{secrets.token_hex(8)}", "", ["com.example.app:/cb"])
        store = self.make_client_store([confidential, public])
        found = store.fetch_by_client_id(confidential.identifier)
        assert found.secret == "" and found.secret_hash is not None and UNICODE_SECRET not in found.secret_hash
        assert found.check_secret(UNICODE_SECRET) and not found.check_secret(UNICODE_SECRET + "x")
        assert store.fetch_by_client_id(public.identifier) == public


class TestLocalClientStoreHashingSecrets(HashingClientStoreContract):
    def make_client_store(self, clients: Sequence[Client]) -> LocalClientStore:
        store = LocalClientStore(hash_secrets=True)
        _add_all(store, clients)
        return store


def test_local_client_store_keeps_secrets_as_given_by_default() -> None:
    store = LocalClientStore()
    assert store.add_client("app", SECRET, [URI]) == Client("app", SECRET, [URI])
    hashing = LocalClientStore(hash_secrets=True)
    added = hashing.add_client("app", SECRET, [URI])
    assert hashing.fetch_by_client_id("app") is added
    assert added.secret == "" and added.secret_hash is not None and added.check_secret(SECRET)


@pytest.fixture
def redis_clients(redis_server: RedisServer) -> Iterator[RedisClientStore]:
    """A RedisClientStore on the session's server, under a prefix of its own."""
    store = RedisClientStore(redis_client("127.0.0.1", redis_server.port), f"c-{secrets.token_hex(6)}")
    yield store
    store.close()


class TestRedisClientStore(HashingClientStoreContract):
    @pytest.fixture(autouse=True)
    def _server(self, redis_server: RedisServer) -> Iterator[None]:
        self.server = redis_server
        self.stores: list[RedisClientStore] = []
        yield
        for store in self.stores:
            store.close()

    def make_client_store(self, clients: Sequence[Client]) -> RedisClientStore:
        store = RedisClientStore(redis_client("127.0.0.1", self.server.port), f"c-{secrets.token_hex(6)}")
        self.stores.append(store)
        _add_all(store, clients)
        return store


def test_redis_client_store_fulfils_the_client_protocol(redis_clients: RedisClientStore) -> None:
    assert isinstance(redis_clients, ClientStoreProtocol)


def test_redis_keys_are_the_identifier_digest_and_never_expire(redis_server: RedisServer) -> None:
    prefix = f"c-{secrets.token_hex(6)}"
    store = RedisClientStore(redis_client("127.0.0.1", redis_server.port), prefix)
    identifier = f"app-ü-{secrets.token_hex(4)}"
    returned = store.add_client(identifier, SECRET, [URI], scopes=["read"])
    key = f"{prefix}:{{{hashlib.sha256(identifier.encode()).hexdigest()}}}:client"
    assert redis_server.command("KEYS", f"{prefix}:*") == [key.encode()]
    assert redis_server.command("TTL", key) == -1
    stored = redis_server.command("GET", key)
    assert isinstance(stored, bytes) and stored.startswith(b"client:3:") and b"scrypt$16384$8$1$" in stored
    assert CLIENT_CODEC.decode(stored) == returned == store.fetch_by_client_id(identifier)
    assert returned.check_secret(SECRET)
    # Registering again replaces the client (and its hash).
    replaced = store.add_client(identifier, "new-secret", [URI])
    assert store.fetch_by_client_id(identifier) == replaced and replaced.check_secret("new-secret") and not replaced.check_secret(SECRET)
    store.close()


def test_a_redis_server_never_holds_a_client_secret(redis_server: RedisServer) -> None:
    store = RedisClientStore(redis_client("127.0.0.1", redis_server.port), f"c-{secrets.token_hex(6)}")
    registered = {f"dump-{index}-{secrets.token_hex(4)}": f"{label}-{secrets.token_hex(12)}" for index, label in enumerate(["plain", "ünï✓🔑", "sp ace"])}
    for identifier, secret in registered.items():
        store.add_client(identifier, secret, [URI])
    store.add_client(f"public-{secrets.token_hex(4)}", "", [URI])
    keys = redis_server.command("KEYS", "*")
    assert isinstance(keys, list) and keys
    values = [redis_server.command("GET", key) for key in keys]
    contents = b"\n".join(keys) + b"\n" + b"\n".join(value for value in values if isinstance(value, bytes))
    # The append-only file as it is (every write, as Redis received it: appendfsync always), then
    # rewritten (what a backup holds; its RDB preamble may compress values, so it is the weaker check).
    logged = b"".join(path.read_bytes() for path in sorted(redis_server.directory.rglob("*.aof")))
    dump = redis_server.dump()
    for identifier, secret in registered.items():
        assert identifier.encode() in contents and identifier.encode() in logged  # what is stored is there...
        for form in (secret.encode(), secret.encode("utf-16-le"), _b64(secret.encode()).encode()):
            assert form not in contents and form not in logged and form not in dump  # ...and the secret is not
        assert store.fetch_by_client_id(identifier).check_secret(secret)
    store.close()


def test_redis_client_store_reads_clients_stored_with_a_plaintext_secret(redis_server: RedisServer) -> None:
    """A client record written by an older format (version 2, plaintext secret) still authenticates."""
    prefix = f"c-{secrets.token_hex(6)}"
    store = RedisClientStore(redis_client("127.0.0.1", redis_server.port), prefix)
    key = f"{prefix}:{{{hashlib.sha256(b'old-app').hexdigest()}}}:client"
    redis_server.command("SET", key, f'client:2:["old-app","{SECRET}",["{URI}"],null,null,null,"client_secret_basic"]')
    old = store.fetch_by_client_id("old-app")
    assert old == Client("old-app", SECRET, [URI]) and old.check_secret(SECRET)
    store.close()


def test_redis_client_store_misses_and_corrupt_records(redis_server: RedisServer, redis_clients: RedisClientStore) -> None:
    with pytest.raises(ClientNotFoundError):
        redis_clients.fetch_by_client_id("nobody")
    with pytest.raises(raised_for(ClientNotFoundError)):
        redis_clients.fetch_by_client_id(1)  # type: ignore[arg-type]  # the point: not a str
    prefix = redis_clients._prefix
    redis_server.command("SET", f"{prefix}:{{{hashlib.sha256(b'garbled').hexdigest()}}}:client", b"client:3:[not json")
    with pytest.raises(CodecError):
        redis_clients.fetch_by_client_id("garbled")
    redis_server.command("SET", f"{prefix}:{{{hashlib.sha256(b'other').hexdigest()}}}:client", CLIENT_CODEC.encode(Client("someone-else", "")))
    with pytest.raises(CodecError, match="names another client"):
        redis_clients.fetch_by_client_id("other")


def test_redis_client_store_validates_before_hashing_or_writing(redis_server: RedisServer, redis_clients: RedisClientStore) -> None:
    with pytest.raises(RecordTypeError):
        redis_clients.add_client("app", SECRET, URI)
    with pytest.raises(RecordValueError):
        redis_clients.add_client("app", SECRET, ["relative/cb"])
    assert redis_server.command("KEYS", f"{redis_clients._prefix}:*") == []


@pytest.mark.parametrize(("prefix", "error"), [("", ValueError), ("has space", ValueError), ("x" * 101, ValueError), (b"bytes", TypeError)])
def test_redis_client_store_refuses_bad_prefixes(redis_server: RedisServer, prefix: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="prefix"):
        RedisClientStore(redis_client("127.0.0.1", redis_server.port), prefix)


def test_an_unreachable_redis_is_store_unavailable_never_a_miss() -> None:
    port = free_port()  # nothing listens there
    store = RedisClientStore(redis_client("127.0.0.1", port, timeout=0.5))
    with pytest.raises(StoreUnavailableError, match=str(port)):
        store.fetch_by_client_id("app")
    with pytest.raises(StoreUnavailableError, match=str(port)) as caught:
        store.add_client("app", SECRET, [URI])
    assert SECRET not in str(caught.value)


# -- integrations -------------------------------------------------------------------------


class _PostRequest:
    """What python-oauth2's authenticator reads of a request: form parameters."""

    def __init__(self, **form: str) -> None:
        self.form = form

    def post_param(self, name: str) -> str | None:
        return self.form.get(name)


def test_python_oauth2_authenticates_a_hashed_client() -> None:
    clients = PythonOAuth2ClientStore(LocalClientStore(hash_secrets=True))
    clients.add_client("app", SECRET, [URI])
    clients.add_client("public", "", [URI])
    assert clients.store.fetch_by_client_id("app").secret_hash is not None
    fetched = clients.fetch_by_client_id("app")
    assert not (fetched.secret != SECRET) and fetched.secret == SECRET
    assert fetched.secret != SECRET + "x" and fetched.secret != "" and fetched.secret != None  # noqa: E711 - python-oauth2 compares with !=
    assert fetched.secret != clients.store.fetch_by_client_id("app").secret_hash
    assert SECRET not in repr(fetched.secret)
    authenticator = ClientAuthenticator(client_store=clients, source=request_body)
    found = authenticator.by_identifier_secret(_PostRequest(client_id="app", client_secret=SECRET, grant_type="client_credentials"))
    assert found.identifier == "app"
    for wrong in (SECRET + "x", ""):
        with pytest.raises(oauth2.error.OAuthInvalidError) as caught:
            authenticator.by_identifier_secret(_PostRequest(client_id="app", client_secret=wrong, grant_type="client_credentials"))
        assert caught.value.error == "invalid_client"
    with pytest.raises(oauth2.error.OAuthInvalidError):
        authenticator.by_identifier_secret(_PostRequest(client_id="public", client_secret="", grant_type="client_credentials"))


def test_python_oauth2_plaintext_clients_still_compare_as_before() -> None:
    clients = PythonOAuth2ClientStore()
    clients.add_client("app", SECRET, [URI])
    fetched = clients.fetch_by_client_id("app")
    assert fetched.secret == SECRET and not (fetched.secret != SECRET) and fetched.secret != SECRET[:-1]


def _basic(client_id: str, secret: str) -> dict[str, str]:
    credentials = base64.b64encode(f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()).decode()
    return {"Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Basic {credentials}"}


def test_oauthlib_authenticates_a_client_hashed_in_redis(redis_clients: RedisClientStore) -> None:
    redis_clients.add_client("app", UNICODE_SECRET, [URI])
    server = Server(StoreRequestValidator(LocalTokenStore(), redis_clients), token_expires_in=3600)
    form = urlencode({"grant_type": "client_credentials"})
    _, body, status = server.create_token_response("https://auth.example/token", "POST", form, _basic("app", UNICODE_SECRET))
    assert status == 200 and json.loads(body)["token_type"] == "Bearer", body
    _, body, status = server.create_token_response("https://auth.example/token", "POST", form, _basic("app", UNICODE_SECRET + "x"))
    assert status == 401 and json.loads(body)["error"] == "invalid_client", body


def test_authlib_authenticates_a_client_hashed_in_redis(redis_clients: RedisClientStore) -> None:
    redis_clients.add_client("app", SECRET, [URI])
    storage = AuthlibStorage(LocalTokenStore(), redis_clients)
    app = Flask("hashed-client-test")
    server = AuthorizationServer(app, query_client=storage.query_client, save_token=storage.save_token)
    storage.register(server)

    @app.post("/token")
    def token() -> Response:
        return server.create_token_response()

    http = app.test_client()
    answer = http.post("/token", data={"grant_type": "client_credentials"}, headers=_basic("app", SECRET))
    assert answer.status_code == 200 and answer.get_json()["token_type"] == "Bearer", answer.get_data(as_text=True)
    answer = http.post("/token", data={"grant_type": "client_credentials"}, headers=_basic("app", SECRET[:-1]))
    assert answer.status_code == 401 and answer.get_json()["error"] == "invalid_client", answer.get_data(as_text=True)
