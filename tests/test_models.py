"""The records: documented signatures, immutability, validation, equality, redaction, expiry."""

from __future__ import annotations

import enum
import inspect
import re
from typing import Any

import attrs
import pytest
from hypothesis import given

from oauth2_store import AccessToken, AuthorizationCode, Client
from oauth2_store.error import RecordError, RecordTypeError, RecordValueError
from oauth2_store.json_data import FrozenJSON
from tests.strategies import access_tokens, authorization_codes, clients
from tests.support import TYPEGUARD_RUN, raised_for

TOKEN = "tok_3f9a1c0e5b7d2a4c6e8f0a1b3c5d7e9f"
REFRESH = "ref_0a1b2c3d4e5f60718293a4b5c6d7e8f9"
CODE = "code_9e8d7c6b5a4f3e2d1c0b"
SECRET = "s3cr3t-client-password"


def make_token(**changes: Any) -> AccessToken:
    fields: dict[str, Any] = dict(
        client_id="client-1",
        grant_type="authorization_code",
        token=TOKEN,
        data={"ip": "10.0.0.1"},
        expires_at=1_700_003_600,
        refresh_token=REFRESH,
        scopes=["read", "write"],
        refresh_expires_at=1_702_592_000,
        user_id="user-42",
    )
    fields.update(changes)
    return AccessToken(**fields)


def make_code(**changes: Any) -> AuthorizationCode:
    fields: dict[str, Any] = dict(
        client_id="client-1",
        code=CODE,
        expires_at=1_700_000_600,
        redirect_uri="https://app.example/cb",
        scopes=["read"],
    )
    fields.update(changes)
    return AuthorizationCode(**fields)


# The positional parameters as the v0.4.0 documentation lists them, then our keyword-only additions.
DOCUMENTED = [
    (AccessToken, ["client_id", "grant_type", "token", "data", "expires_at", "refresh_token", "scopes"], ["refresh_expires_at", "user_id", "issued_at", "token_type", "grant_id"]),
    (AuthorizationCode, ["client_id", "code", "expires_at", "redirect_uri", "scopes", "data"], ["user_id", "code_challenge", "code_challenge_method", "grant_id"]),
    (Client, ["identifier", "secret", "redirect_uris"], ["authorized_grants", "authorized_response_types", "scopes", "token_endpoint_auth_method", "secret_hash"]),
]


@pytest.mark.parametrize(("cls", "positional", "keyword_only"), DOCUMENTED, ids=lambda v: getattr(v, "__name__", ""))
def test_signature_matches_the_documented_one(cls: type, positional: list[str], keyword_only: list[str]) -> None:
    params = list(inspect.signature(cls).parameters.values())
    assert [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD] == positional
    assert [p.name for p in params if p.kind is p.KEYWORD_ONLY] == keyword_only


def test_documented_positional_calls_build_the_same_records_as_keyword_calls() -> None:
    assert AccessToken("c", "password", TOKEN, {"a": 1}, 10, REFRESH, ["read"]) == AccessToken(
        client_id="c", grant_type="password", token=TOKEN, data={"a": 1}, expires_at=10, refresh_token=REFRESH, scopes=["read"]
    )
    assert AuthorizationCode("c", CODE, 10, "https://a.example/cb", ["read"], {"a": 1}).data == {"a": 1}
    assert Client("c", SECRET, ["https://a.example/cb"]).redirect_uris == ("https://a.example/cb",)


def test_defaults_are_empty_and_never_expiring() -> None:
    token = AccessToken("c", "client_credentials", TOKEN)
    assert len(token.data) == 0 and token.scopes == ()
    assert token.expires_at is None and token.refresh_token is None and token.user_id is None
    assert not token.is_expired(now=2**62)
    assert AuthorizationCode("c", CODE, 10, None, []).data == {}


@given(access_tokens() | authorization_codes() | clients())
def test_every_field_is_frozen(record: AccessToken | AuthorizationCode | Client) -> None:
    for field in attrs.fields(type(record)):
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            setattr(record, field.name, getattr(record, field.name))


def test_callers_lists_and_dicts_are_copied_and_frozen() -> None:
    scopes = ["read"]
    data: dict[str, Any] = {"nested": {"list": [1, {"deep": True}]}}
    token = make_token(scopes=scopes, data=data)
    scopes.append("admin")
    data["nested"]["list"].append(2)
    data["new"] = 1
    assert token.scopes == ("read",)
    assert token.data == {"nested": {"list": (1, {"deep": True})}}
    nested = token.data["nested"]
    assert isinstance(nested, FrozenJSON)
    with pytest.raises(TypeError):
        nested["list"] = ()  # type: ignore[index]  # the point: FrozenJSON has no __setitem__
    assert isinstance(nested["list"], tuple)


def test_client_collections_are_copied() -> None:
    uris = ["https://a.example/cb"]
    grants = ["authorization_code"]
    client = Client("c", SECRET, uris, authorized_grants=grants)
    uris.append("https://evil.example/cb")
    grants.append("password")
    assert not client.has_redirect_uri("https://evil.example/cb")
    assert not client.grant_type_supported("password")


INVALID: list[tuple[str, Any, type[RecordError], str]] = [
    # (what is built, the bad input, the error, a word the message must contain)
    ("token", dict(client_id=1), RecordTypeError, "client_id"),
    ("token", dict(client_id=""), RecordValueError, "client_id"),
    ("token", dict(grant_type=None), RecordTypeError, "grant_type"),
    ("token", dict(token=b"bytes"), RecordTypeError, "token"),
    ("token", dict(token=""), RecordValueError, "token"),
    ("token", dict(token="\ud800"), RecordValueError, "token"),
    ("token", dict(scopes="read write"), RecordTypeError, "scopes"),
    ("token", dict(scopes=[1]), RecordTypeError, "scopes[0]"),
    ("token", dict(scopes=["read", "two words"]), RecordValueError, "scopes[1]"),
    ("token", dict(scopes=["read", ""]), RecordValueError, "scopes[1]"),
    ("token", dict(expires_at=1.5), RecordTypeError, "expires_at"),
    ("token", dict(expires_at="1700000000"), RecordTypeError, "expires_at"),
    ("token", dict(expires_at=True), RecordTypeError, "expires_at"),
    ("token", dict(expires_at=-1), RecordValueError, "expires_at"),
    ("token", dict(expires_at=2**63), RecordValueError, "expires_at"),
    ("token", dict(refresh_token=""), RecordValueError, "refresh_token"),
    ("token", dict(refresh_token=None), RecordValueError, "refresh_expires_at"),
    ("token", dict(user_id=42), RecordTypeError, "user_id"),
    ("token", dict(data=[("a", 1)]), RecordTypeError, "data"),
    ("token", dict(data={1: "a"}), RecordTypeError, "data keys"),
    ("token", dict(data={"when": object()}), RecordTypeError, "data['when']"),
    ("token", dict(data={"x": {1, 2}}), RecordTypeError, "data['x']"),
    ("token", dict(data={"x": [float("nan")]}), RecordValueError, "data['x'][0]"),
    ("token", dict(data={"x": float("inf")}), RecordValueError, "data['x']"),
    ("token", dict(data={"x": 2**64}), RecordValueError, "data['x']"),
    ("token", dict(data={"x": b"raw"}), RecordTypeError, "data['x']"),
    ("code", dict(expires_at=None), RecordTypeError, "expires_at"),
    ("code", dict(code=""), RecordValueError, "code"),
    ("code", dict(redirect_uri=""), RecordValueError, "redirect_uri"),
    ("code", dict(scopes="read"), RecordTypeError, "scopes"),
    ("code", dict(code_challenge="too-short"), RecordValueError, "code_challenge"),
    ("code", dict(code_challenge_method="S256"), RecordValueError, "code_challenge"),
    ("code", dict(code_challenge="a" * 43, code_challenge_method="S512"), RecordValueError, "code_challenge_method"),
    ("client", dict(identifier=7), RecordTypeError, "identifier"),
    ("client", dict(secret=None), RecordTypeError, "secret"),
    ("client", dict(redirect_uris="https://a.example/cb"), RecordTypeError, "redirect_uris"),
    ("client", dict(redirect_uris=["/relative/cb"]), RecordValueError, "redirect_uris[0]"),
    ("client", dict(redirect_uris=["https://a.example/cb#frag"]), RecordValueError, "fragment"),
    ("client", dict(redirect_uris=["http://[::1/cb"]), RecordValueError, "redirect_uris[0] is not a valid URI"),
    ("client", dict(redirect_uris=["https://a.example/c b"]), RecordValueError, "redirect_uris[0] must not contain"),
    ("client", dict(redirect_uris=["https://a.example/cb\r\nX: y"]), RecordValueError, "redirect_uris[0] must not contain"),
    ("token", dict(scopes={"read", "write"}), RecordTypeError, "scopes"),
    ("token", dict(scopes=["read"] * 200_000 + ["two words"]), RecordValueError, "scopes[200000]"),
    ("token", dict(data={"deep": [{"k": [[]]}] * 1_000 + [float("inf")]}), RecordValueError, "data['deep'][1000]"),
    ("token", dict(scopes={"read": 1}), RecordTypeError, "scopes"),
    ("client", dict(authorized_grants="password"), RecordTypeError, "authorized_grants"),
    ("client", dict(authorized_response_types=[""]), RecordValueError, "authorized_response_types[0]"),
    ("token", dict(issued_at=1.5), RecordTypeError, "issued_at"),
    ("token", dict(issued_at=-1), RecordValueError, "issued_at"),
    ("token", dict(token_type=""), RecordValueError, "token_type"),
    ("token", dict(token_type=None), RecordTypeError, "token_type"),
    ("client", dict(scopes="read"), RecordTypeError, "scopes"),
    ("client", dict(scopes=["read", "two words"]), RecordValueError, "scopes[1]"),
    ("client", dict(token_endpoint_auth_method="private_key_jwt"), RecordValueError, "token_endpoint_auth_method must be"),
    ("client", dict(token_endpoint_auth_method=1), RecordTypeError, "token_endpoint_auth_method"),
    ("client", dict(token_endpoint_auth_method="none"), RecordValueError, "token_endpoint_auth_method must be 'none' for a public client"),
    ("client", dict(secret="", token_endpoint_auth_method="client_secret_post"), RecordValueError, "token_endpoint_auth_method must be 'none'"),
]


def _build(kind: str, changes: dict[str, Any]) -> object:
    if kind == "token":
        return make_token(**changes)
    if kind == "code":
        return make_code(**changes)
    fields: dict[str, Any] = dict(identifier="client-1", secret=SECRET, redirect_uris=["https://a.example/cb"])
    fields.update(changes)
    return Client(**fields)


@pytest.mark.reliability
@pytest.mark.parametrize(("kind", "changes", "error", "detail"), INVALID, ids=[f"{k}-{'-'.join(c)}" for k, c, _, _ in INVALID])
def test_invalid_input_is_refused_naming_the_field(kind: str, changes: dict[str, Any], error: type[RecordError], detail: str) -> None:
    # Under typeguard an annotation check may fire first; it raises TypeError naming the argument.
    with pytest.raises(raised_for(error)) as caught:
        _build(kind, changes)
    field = re.split(r"[\[ ]", detail)[0]
    assert field in str(caught.value)
    if not TYPEGUARD_RUN:
        assert detail in str(caught.value)


@pytest.mark.reliability
@pytest.mark.parametrize("secret", [TOKEN, REFRESH, CODE, SECRET])
def test_validation_messages_never_contain_secrets(secret: str) -> None:
    with pytest.raises(RecordError) as caught:
        make_token(token=secret, refresh_token=secret, scopes=[secret + " x"])
    assert secret not in str(caught.value)
    with pytest.raises(RecordError) as caught:
        Client("c", secret, [secret])
    assert secret not in str(caught.value)


@given(access_tokens())
def test_equal_tokens_have_equal_hashes(token: AccessToken) -> None:
    copy = attrs.evolve(token)
    assert copy == token and copy is not token
    assert hash(copy) == hash(token)
    assert len({token, copy}) == 1


def test_records_differing_in_one_field_are_not_equal() -> None:
    token = make_token()
    for change in (dict(token=TOKEN + "x"), dict(scopes=["read"]), dict(data={"ip": "10.0.0.2"}), dict(user_id=None)):
        assert attrs.evolve(token, **change) != token


@pytest.mark.reliability
@given(access_tokens(), authorization_codes())
def test_reprs_never_show_a_secret(token: AccessToken, code: AuthorizationCode) -> None:
    placeholders = {"token": "X", "refresh_token": "X", "code": "X", "code_challenge": "A" * 43}
    for record in (token, code):
        text = repr(record)
        for name in placeholders.keys() & {f.name for f in attrs.fields(type(record))}:
            secret = getattr(record, name)
            if secret is None or len(secret) < 8:
                continue  # short strings turn up anywhere by chance
            # The secret may also be a scope, an id or a field name: then it is there regardless.
            change: dict[str, Any] = {name: placeholders[name]}
            without_secret = repr(attrs.evolve(record, **change))
            if secret not in without_secret:
                assert secret not in text, name


def test_reprs_show_fingerprints_not_secrets() -> None:
    token_repr, code_repr, client_repr = repr(make_token()), repr(make_code()), repr(Client("c", SECRET))
    for secret, text in ((TOKEN, token_repr), (REFRESH, token_repr), (CODE, code_repr), (SECRET, client_repr)):
        assert secret not in text
        assert secret[:12] not in text
    assert "token=<sha256:" in token_repr and "refresh_token=<sha256:" in token_repr
    assert "code=<sha256:" in code_repr
    assert "secret=<redacted>" in client_repr
    # Different tokens get different fingerprints, so logs can still tell them apart.
    assert repr(make_token(token=TOKEN + "2")) != token_repr


def test_evolve_validates_the_new_record() -> None:
    token = make_token()
    assert attrs.evolve(token, scopes=["admin"]).scopes == ("admin",)
    assert token.scopes == ("read", "write")
    with pytest.raises(TypeError, match="scopes"):
        attrs.evolve(token, scopes="admin")


def test_access_token_expires_at_expires_at() -> None:
    token = make_token(expires_at=1000)
    assert not token.is_expired(now=999)
    assert not token.is_expired(now=999.999)
    assert token.is_expired(now=1000)
    assert token.is_expired(now=5000)


def test_expires_in_counts_down_and_never_goes_negative() -> None:
    assert make_token(expires_at=0).expires_in == 0
    assert make_token(expires_at=None).expires_in is None
    remaining = make_token(expires_at=2**40).expires_in
    assert remaining is not None and 2**40 - 2**31 < remaining < 2**40


def test_refresh_token_outlives_the_access_token() -> None:
    token = make_token(expires_at=1000, refresh_expires_at=5000)
    assert token.is_expired(now=2000) and not token.is_refresh_expired(now=2000)
    assert token.is_refresh_expired(now=5000)
    assert not make_token(expires_at=1000, refresh_expires_at=None).is_refresh_expired(now=2**62)
    assert make_token(refresh_token=None, refresh_expires_at=None).is_refresh_expired(now=0)


def test_authorization_code_expiry() -> None:
    code = make_code(expires_at=600)
    assert not code.is_expired(now=599) and code.is_expired(now=600)


# RFC 7636 Appendix B.
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_pkce_s256_verifier_matches_rfc_7636_example() -> None:
    code = make_code(code_challenge=CHALLENGE, code_challenge_method="S256")
    assert code.verify_code_verifier(VERIFIER)
    assert not code.verify_code_verifier(VERIFIER[:-1] + "l")
    assert not code.verify_code_verifier(CHALLENGE)


def test_pkce_plain_and_default_method() -> None:
    for method in ("plain", None):
        code = make_code(code_challenge=VERIFIER, code_challenge_method=method)
        assert code.verify_code_verifier(VERIFIER)
        assert not code.verify_code_verifier(CHALLENGE)
    assert not make_code().verify_code_verifier(VERIFIER)
    assert not make_code(code_challenge=VERIFIER).verify_code_verifier("short")


def test_client_grant_and_response_type_checks() -> None:
    open_client = Client("c", SECRET)
    assert open_client.grant_type_supported("password") and open_client.response_type_supported("token")
    client = Client("c", SECRET, authorized_grants=["authorization_code"], authorized_response_types=["code"])
    assert client.grant_type_supported("authorization_code") and not client.grant_type_supported("password")
    assert client.response_type_supported("code") and not client.response_type_supported("token")
    closed = Client("c", SECRET, authorized_grants=[], authorized_response_types=[])
    assert not closed.grant_type_supported("authorization_code") and not closed.response_type_supported("code")


@pytest.mark.parametrize(
    "candidate",
    [
        "https://app.example/cb/",
        "https://app.example/cb?x=1",
        "https://app.example/cb#x",
        "https://app.example/c",
        "https://app.example/callback",
        "HTTPS://app.example/cb",
        "https://APP.example/cb",
        "https://app.example:443/cb",
        "https://app.example/cb/../cb",
        "",
    ],
)
def test_redirect_uri_check_is_exact_string_match(candidate: str) -> None:
    client = Client("c", SECRET, ["https://app.example/cb", "com.example.app:/oauth"])
    assert client.has_redirect_uri("https://app.example/cb")
    assert client.has_redirect_uri("com.example.app:/oauth")
    assert not client.has_redirect_uri(candidate)


def test_default_redirect_uri_only_when_exactly_one_is_registered() -> None:
    assert Client("c", SECRET, ["https://a.example/cb"]).default_redirect_uri == "https://a.example/cb"
    assert Client("c", SECRET, ["https://a.example/cb", "https://b.example/cb"]).default_redirect_uri is None
    assert Client("c", SECRET).default_redirect_uri is None


def test_check_secret() -> None:
    client = Client("c", SECRET)
    assert client.check_secret(SECRET)
    assert not client.check_secret(SECRET + "x")
    assert not client.check_secret(SECRET[:-1])
    assert not client.check_secret("")
    assert not client.check_secret("\udcff")


def test_public_client_never_authenticates_with_a_secret() -> None:
    public = Client("c", "")
    assert not public.check_secret("")
    assert repr(public).count("secret=''") == 1


def test_str_enum_challenge_method_becomes_a_plain_str() -> None:
    class Method(str, enum.Enum):
        S256 = "S256"

    if TYPEGUARD_RUN:  # statically an enum member is not the Literal: the annotation check says so
        with pytest.raises(TypeError):
            make_code(code_challenge=CHALLENGE, code_challenge_method=Method.S256)
        return
    code = make_code(code_challenge=CHALLENGE, code_challenge_method=Method.S256)
    method: object = code.code_challenge_method
    assert type(method) is str
    assert method == "S256"


def test_token_type_defaults_to_bearer_and_issue_time_to_unknown() -> None:
    token = make_token()
    assert (token.token_type, token.issued_at) == ("Bearer", None)
    issued = make_token(issued_at=1_699_996_400, token_type="mac")
    assert (issued.token_type, issued.issued_at) == ("mac", 1_699_996_400)
    assert issued != attrs.evolve(issued, issued_at=1_699_996_401)


def test_client_authentication_method_follows_its_secret_by_default() -> None:
    assert Client("c", "s").token_endpoint_auth_method == "client_secret_basic"
    assert not Client("c", "s").is_public
    public = Client("spa", "")
    assert (public.token_endpoint_auth_method, public.is_public) == ("none", True)
    assert Client("c", "s", token_endpoint_auth_method="client_secret_post").token_endpoint_auth_method == "client_secret_post"


def test_client_scopes_limit_what_it_may_be_granted() -> None:
    anything = Client("c", "s")
    assert anything.scopes is None and anything.allows_scopes(["admin", "read"])
    limited = Client("c", "s", scopes=["read", "write"])
    assert limited.scopes == ("read", "write")
    assert limited.allows_scopes(["read"]) and limited.allows_scopes(["write", "read"]) and limited.allows_scopes([])
    assert not limited.allows_scopes(["read", "admin"])
    assert not Client("c", "s", scopes=[]).allows_scopes(["read"])
