"""The Authlib seam in process: its adapters, the records it saves, its errors, codes and refresh
tokens used once, grants as families, and its stubs checked against the installed Authlib.

Flows run through a small Flask app wired as the module documentation says (:func:`make_app`),
with Flask's test client; the example server is tested over HTTP in test_authlib_server.py.
"""

from __future__ import annotations

import base64
import secrets
import threading
from collections.abc import Callable, Iterable
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit

import pytest
from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from flask import Flask, Response, jsonify, request
from werkzeug.test import TestResponse

from oauth2_store import AccessToken, AuthorizationCode, Client
from oauth2_store.clock import ManualClock
from oauth2_store.error import AccessTokenNotFound, CodecError, StoreError, StoreUnavailableError
from oauth2_store.integrations.authlib import (
    AuthlibClient,
    AuthlibStorage,
    AuthlibToken,
    AuthorizationCodeGrant,
    RefreshTokenGrant,
    ServerError,
    TemporarilyUnavailableError,
)
from oauth2_store.models import TokenEndpointAuthMethod
from oauth2_store.protocols import TokenTypeHint
from oauth2_store.store.memory import LocalClientStore, LocalTokenStore

USER = "alice"
APP_ID, APP_SECRET, APP_URI = "app", "s3cret-app", "https://app.example/cb"
SPA_ID, SPA_URI = "spa", "https://spa.example/cb"


class FlakyTokenStore(LocalTokenStore):
    """A LocalTokenStore that raises ``failure`` from every operation while it is set, and with
    ``revoke_on_consume`` revokes a code's grant as it hands the code out (what a concurrent
    replay does before the token is saved)."""

    failure: StoreError | None = None
    revoke_on_consume = False

    def _check(self) -> None:
        if self.failure is not None:
            raise self.failure

    def save_token(self, access_token: AccessToken) -> None:
        self._check()
        super().save_token(access_token)

    def fetch_by_token(self, token: str) -> AccessToken:
        self._check()
        return super().fetch_by_token(token)

    def fetch_by_refresh_token(self, refresh_token: str) -> AccessToken:
        self._check()
        return super().fetch_by_refresh_token(refresh_token)

    def delete_refresh_token(self, refresh_token: str) -> None:
        self._check()
        super().delete_refresh_token(refresh_token)

    def revoke_token(self, token: str, token_type_hint: TokenTypeHint | None = None) -> None:
        self._check()
        super().revoke_token(token, token_type_hint)

    def save_code(self, authorization_code: AuthorizationCode) -> None:
        self._check()
        super().save_code(authorization_code)

    def consume_code(self, code: str) -> AuthorizationCode:
        self._check()
        found = super().consume_code(code)
        if self.revoke_on_consume:
            self.revoke_grant(found.grant_id)
        return found


class FlakyClientStore(LocalClientStore):
    """A LocalClientStore that raises ``failure`` from lookups while it is set."""

    failure: StoreError | None = None

    def fetch_by_client_id(self, client_id: str) -> Client:
        if self.failure is not None:
            raise self.failure
        return super().fetch_by_client_id(client_id)


class Setup(NamedTuple):
    app: Flask
    storage: AuthlibStorage
    tokens: FlakyTokenStore
    clients: FlakyClientStore
    clock: ManualClock


def make_app(storage: AuthlibStorage, *, pkce: bool = True) -> Flask:
    """A Flask app wired to ``storage`` as the module documentation says, with the example's routes."""
    app = Flask("authlib-seam-test")
    app.config.update(OAUTH2_REFRESH_TOKEN_GENERATOR=True, OAUTH2_TOKEN_EXPIRES_IN={"authorization_code": 3600, "client_credentials": 3600})
    server = AuthorizationServer(app, query_client=storage.query_client, save_token=storage.save_token)
    if pkce:
        storage.register(server)
    else:
        server.register_grant(storage.authorization_code_grant)
    require_oauth = ResourceProtector()
    require_oauth.register_token_validator(storage.bearer_token_validator())

    @app.get("/authorize")
    def authorize() -> Response:
        user = app.config.get("GRANT_USER", request.args.get("user"))
        return server.create_authorization_response(grant_user=user, grant=server.get_consent_grant(end_user=user))

    @app.post("/token")
    def token() -> Response:
        return server.create_token_response()

    @app.post("/revoke")
    def revoke() -> Response:
        response = server.create_endpoint_response("revocation")
        assert response is not None
        return response

    @app.post("/introspect")
    def introspect() -> Response:
        response = server.create_endpoint_response("introspection")
        assert response is not None
        return response

    @app.get("/me")
    def me() -> Response:
        with require_oauth.acquire() as found:  # Flask's path: the error becomes an HTTPException
            assert isinstance(found, AuthlibToken)
            return jsonify(user=found.user_id, client_id=found.client_id)

    return app


@pytest.fixture
def setup() -> Setup:
    clock = ManualClock()
    tokens = FlakyTokenStore(clock=clock)
    clients = FlakyClientStore()
    clients.add_client(APP_ID, APP_SECRET, [APP_URI])
    clients.add_client(SPA_ID, "", [SPA_URI])
    storage = AuthlibStorage(tokens, clients, clock=clock, any_secret_method=True)
    return Setup(make_app(storage), storage, tokens, clients, clock)


BASIC = {"Authorization": "Basic " + base64.b64encode(f"{APP_ID}:{APP_SECRET}".encode()).decode()}


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, create_s256_code_challenge(verifier)


def _authorize(setup: Setup, challenge: str | None = None, **params: str) -> TestResponse:
    query = {"response_type": "code", "client_id": APP_ID, "redirect_uri": APP_URI, "scope": "read write", "state": "s", "user": USER, **params}
    if challenge is not None:
        query.update(code_challenge=challenge, code_challenge_method="S256")
    return setup.app.test_client().get("/authorize", query_string=query)


def _location(answer: TestResponse) -> dict[str, str]:
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return {name: values[0] for name, values in parse_qs(urlsplit(answer.headers["Location"]).query).items()}


def _code(setup: Setup, challenge: str | None = None) -> str:
    return _location(_authorize(setup, challenge))["code"]


def _redeem(setup: Setup, code: str, verifier: str | None) -> TestResponse:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": APP_URI, **({"code_verifier": verifier} if verifier else {})}
    return setup.app.test_client().post("/token", data=form, headers=BASIC)


def _issue(setup: Setup) -> dict[str, str]:
    verifier, challenge = _pkce()
    answer = _redeem(setup, _code(setup, challenge), verifier)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    token: dict[str, str] = answer.get_json()
    return token


def _error(answer: TestResponse) -> tuple[int, str]:
    assert answer.mimetype == "application/json", answer.get_data(as_text=True)
    error: str = answer.get_json()["error"]
    return answer.status_code, error


# The adapters.


def _client(
    secret: str = APP_SECRET,
    method: TokenEndpointAuthMethod | None = None,
    *,
    any_secret_method: bool = False,
    scopes: Iterable[str] | None = None,
    grants: Iterable[str] | None = None,
    response_types: Iterable[str] | None = None,
) -> AuthlibClient:
    record = Client(
        APP_ID, secret, [APP_URI], token_endpoint_auth_method=method, scopes=scopes, authorized_grants=grants, authorized_response_types=response_types
    )
    return AuthlibClient(record, any_secret_method=any_secret_method)


def test_the_client_grants_requested_scopes_only_when_it_may_have_them_all() -> None:
    anything, limited = _client(), _client(scopes=["read", "write"])
    assert anything.get_allowed_scope(None) == "" and anything.get_allowed_scope("") == ""
    assert anything.get_allowed_scope("read read admin") == "read admin"  # repeated once, any allowed
    assert limited.get_allowed_scope("write read") == "write read"
    assert limited.get_allowed_scope("read admin") is None  # not a subset: invalid_scope
    assert anything.get_allowed_scope('bad"scope') is None  # not an RFC 6749 §3.3 scope token


@pytest.mark.parametrize(
    ("secret", "method", "any_secret_method", "allowed"),
    [
        ("", None, False, {"none"}),
        ("", None, True, {"none"}),
        (APP_SECRET, None, False, {"client_secret_basic"}),
        (APP_SECRET, "client_secret_post", False, {"client_secret_post"}),
        (APP_SECRET, "client_secret_post", True, {"client_secret_basic", "client_secret_post"}),
    ],
)
def test_the_client_authenticates_with_its_method_only(secret: str, method: TokenEndpointAuthMethod | None, any_secret_method: bool, allowed: set[str]) -> None:
    client = _client(secret, method, any_secret_method=any_secret_method)
    for endpoint in ("token", "revocation", "introspection"):
        assert {m for m in ("none", "client_secret_basic", "client_secret_post", "private_key_jwt") if client.check_endpoint_auth_method(m, endpoint)} == allowed


def test_the_client_checks_grants_redirects_and_secrets_as_its_record_does() -> None:
    public, confidential = _client(""), _client(grants=["authorization_code"], response_types=["code"])
    assert not public.check_grant_type("client_credentials") and public.check_grant_type("refresh_token")
    assert confidential.check_grant_type("authorization_code") and not confidential.check_grant_type("refresh_token")
    assert confidential.check_response_type("code") and not confidential.check_response_type("token")
    assert confidential.check_redirect_uri(APP_URI) and not confidential.check_redirect_uri(APP_URI + "/")
    assert confidential.get_default_redirect_uri() == APP_URI and confidential.get_client_id() == confidential.client_id == APP_ID
    assert confidential.check_client_secret(APP_SECRET) and not confidential.check_client_secret(APP_SECRET[:-1])
    assert not public.check_client_secret("")


def test_the_token_expires_as_the_kind_it_was_found_as() -> None:
    clock = ManualClock(1_000_000)
    record = AccessToken(APP_ID, "authorization_code", "at", expires_at=1_003_600, refresh_token="rt", refresh_expires_at=1_086_400, issued_at=1_000_000, user_id=USER, scopes=["a", "b"])
    access, refresh = AuthlibToken(record, "access_token", clock), AuthlibToken(record, "refresh_token", clock)
    assert (access.value, refresh.value, access.get_scope(), access.get_user()) == ("at", "rt", "a b", USER)
    assert (access.get_expires_in(), refresh.get_expires_in()) == (3600, 86400)  # lifetimes, as Authlib's own models keep
    clock.advance(3600)
    assert access.is_expired() and not refresh.is_expired() and not refresh.is_revoked()
    clock.advance(86400)
    assert refresh.is_expired()
    forever = AuthlibToken(AccessToken(APP_ID, "client_credentials", "t"), clock=clock)
    assert forever.get_expires_in() == 0 and not forever.is_expired() and forever.expires_at is None
    assert forever.check_client(_client()) and not forever.check_client(AuthlibClient(Client("other", "x")))


# What the seam stores.


class User:
    def __init__(self, user_id: int) -> None:
        self.user_id = user_id

    def get_user_id(self) -> int:
        return self.user_id


def test_the_saved_token_has_the_clock_s_issue_time_lifetimes_user_scopes_and_the_code_s_grant(setup: Setup) -> None:
    setup.app.config["GRANT_USER"] = User(42)  # Authlib's user objects: their get_user_id(), as a str
    now = int(setup.clock())
    verifier, challenge = _pkce()
    code = _code(setup, challenge)
    grant_id = setup.tokens.fetch_by_code(code).grant_id
    answer = _redeem(setup, code, verifier)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    token = answer.get_json()
    record = setup.tokens.fetch_by_token(token["access_token"])
    assert record == AccessToken(
        APP_ID,
        "authorization_code",
        token["access_token"],
        expires_at=now + 3600,
        refresh_token=token["refresh_token"],
        scopes=["read", "write"],
        refresh_expires_at=now + 30 * 24 * 3600,
        user_id="42",
        issued_at=now,
        token_type="Bearer",
        grant_id=grant_id,
    )
    setup.clock.advance(10)
    machine = setup.app.test_client().post("/token", data={"grant_type": "client_credentials"}, headers=BASIC).get_json()
    saved = setup.tokens.fetch_by_token(machine["access_token"])
    assert (saved.grant_type, saved.user_id, saved.refresh_token, saved.issued_at, saved.scopes) == ("client_credentials", None, None, now + 10, ())
    assert saved.grant_id != grant_id  # a grant of its own


def test_a_user_the_seam_cannot_store_is_a_server_error_sent_to_the_client(setup: Setup) -> None:
    setup.app.config["GRANT_USER"] = object()
    assert _location(_authorize(setup))["error"] == "server_error"


def test_a_malformed_challenge_without_authlib_s_pkce_extension_is_invalid_request(setup: Setup) -> None:
    bare = Setup(make_app(setup.storage, pkce=False), setup.storage, setup.tokens, setup.clients, setup.clock)
    params = _location(_authorize(bare, code_challenge="too-short", code_challenge_method="S256"))
    assert params["error"] == "invalid_request" and params["state"] == "s"


# Store failures: never a miss, never 401, always JSON.


@pytest.mark.parametrize(
    ("failure", "status", "error"),
    [
        (StoreUnavailableError("memcached at 127.0.0.1:1 failed", "127.0.0.1:1"), 503, "temporarily_unavailable"),
        (CodecError("invalid token record"), 500, "server_error"),
    ],
    ids=["unavailable", "corrupt"],
)
def test_a_failing_store_is_a_json_error_at_every_endpoint(setup: Setup, failure: StoreError, status: int, error: str) -> None:
    token = _issue(setup)
    verifier, challenge = _pkce()
    code = _code(setup, challenge)
    setup.tokens.failure = failure
    client = setup.app.test_client()
    answers = {
        "api": client.get("/me", headers={"Authorization": f"Bearer {token['access_token']}"}),
        "code": _redeem(setup, code, verifier),
        "refresh": client.post("/token", data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]}, headers=BASIC),
        "client_credentials": client.post("/token", data={"grant_type": "client_credentials"}, headers=BASIC),
        "revoke": client.post("/revoke", data={"token": token["access_token"]}, headers=BASIC),
        "introspect": client.post("/introspect", data={"token": token["access_token"]}, headers=BASIC),
    }
    for name, answer in answers.items():
        assert _error(answer) == (status, error), name
        assert "WWW-Authenticate" not in answer.headers, name
    assert _location(_authorize(setup)) == {"error": error, "error_description": ServerError.description if status == 500 else TemporarilyUnavailableError.description, "state": "s"}
    setup.tokens.failure = None
    assert client.get("/me", headers={"Authorization": f"Bearer {token['access_token']}"}).status_code == 200  # nothing was revoked


def test_a_failing_client_store_is_a_json_503_not_an_unknown_client(setup: Setup) -> None:
    setup.clients.failure = StoreUnavailableError("client store down")
    answer = setup.app.test_client().post("/token", data={"grant_type": "client_credentials"}, headers=BASIC)
    assert _error(answer) == (503, "temporarily_unavailable")


# Used once.


def _race(count: int, attempt: Callable[[], TestResponse]) -> list[TestResponse]:
    barrier = threading.Barrier(count)
    answers: list[TestResponse] = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait(timeout=10)
        answer = attempt()
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(answers) == count, "a request did not finish"
    return answers


def _none_live_after_the_race(setup: Setup, answers: list[TestResponse]) -> None:
    """Of racers with one code or refresh token, at most one was issued tokens and every other got
    ``invalid_grant``; the losers are replays, so whatever the winner got is revoked with the grant."""
    winners = [answer.get_json() for answer in answers if answer.status_code == 200]
    assert len(winners) <= 1, winners
    assert all(_error(answer) == (400, "invalid_grant") for answer in answers if answer.status_code != 200)
    client = setup.app.test_client()
    for token in winners:
        assert client.get("/me", headers={"Authorization": f"Bearer {token['access_token']}"}).status_code == 401
        refreshed = client.post("/token", data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]}, headers=BASIC)
        assert _error(refreshed) == (400, "invalid_grant")


def test_concurrent_redemptions_of_one_code_give_at_most_one_token_and_end_the_grant(setup: Setup) -> None:
    for _ in range(5):
        verifier, challenge = _pkce()
        code = _code(setup, challenge)
        _none_live_after_the_race(setup, _race(6, lambda: _redeem(setup, code, verifier)))


def test_concurrent_refreshes_of_one_token_give_at_most_one_token_and_end_the_grant(setup: Setup) -> None:
    first = _issue(setup)
    form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    _none_live_after_the_race(setup, _race(6, lambda: setup.app.test_client().post("/token", data=form, headers=BASIC)))
    assert setup.app.test_client().get("/me", headers={"Authorization": f"Bearer {first['access_token']}"}).status_code == 401


# Grants as families: a replayed code or a reused refresh token ends every token of the grant.


def _me(setup: Setup, access_token: str) -> int:
    return setup.app.test_client().get("/me", headers={"Authorization": f"Bearer {access_token}"}).status_code


def _refresh(setup: Setup, refresh_token: str) -> TestResponse:
    return setup.app.test_client().post("/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token}, headers=BASIC)


def test_a_replayed_code_is_invalid_grant_and_ends_the_token_issued_from_it(setup: Setup) -> None:
    verifier, challenge = _pkce()
    code = _code(setup, challenge)
    first = _redeem(setup, code, verifier).get_json()
    assert _me(setup, first["access_token"]) == 200
    assert _error(_redeem(setup, code, verifier)) == (400, "invalid_grant")
    assert _me(setup, first["access_token"]) == 401
    assert _error(_refresh(setup, first["refresh_token"])) == (400, "invalid_grant")
    assert _me(setup, _issue(setup)["access_token"]) == 200  # other grants are untouched


def test_a_rotated_refresh_token_presented_again_is_invalid_grant_and_ends_the_newest_tokens(setup: Setup) -> None:
    first = _issue(setup)
    second = _refresh(setup, first["refresh_token"]).get_json()
    newest = _refresh(setup, second["refresh_token"]).get_json()
    assert _me(setup, newest["access_token"]) == 200
    assert _error(_refresh(setup, second["refresh_token"])) == (400, "invalid_grant")
    assert _me(setup, newest["access_token"]) == 401
    assert _error(_refresh(setup, newest["refresh_token"])) == (400, "invalid_grant")


def test_tokens_issued_by_refreshes_carry_the_original_grant(setup: Setup) -> None:
    verifier, challenge = _pkce()
    code = _code(setup, challenge)
    grant_id = setup.tokens.fetch_by_code(code).grant_id
    token = _redeem(setup, code, verifier).get_json()
    for _ in range(3):
        token = _refresh(setup, token["refresh_token"]).get_json()
        record = setup.tokens.fetch_by_token(token["access_token"])
        assert (record.grant_id, record.grant_type, record.user_id) == (grant_id, "refresh_token", USER)
        assert setup.tokens.fetch_by_refresh_token(token["refresh_token"]).grant_id == grant_id


def test_a_token_saved_into_a_revoked_grant_is_invalid_grant_not_a_server_error(setup: Setup) -> None:
    setup.tokens.revoke_on_consume = True  # as a concurrent replay would, between redemption and saving
    verifier, challenge = _pkce()
    assert _error(_redeem(setup, _code(setup, challenge), verifier)) == (400, "invalid_grant")
    with pytest.raises(AccessTokenNotFound):  # nothing was issued
        setup.tokens.fetch_existing_token_of_user(APP_ID, "authorization_code", USER)


def test_a_refresh_revokes_the_old_tokens_before_issuing_and_the_new_ones_work(setup: Setup) -> None:
    old = _issue(setup)
    client = setup.app.test_client()
    new = client.post("/token", data={"grant_type": "refresh_token", "refresh_token": old["refresh_token"], "scope": "read"}, headers=BASIC).get_json()
    assert new["scope"] == "read" and new["refresh_token"] != old["refresh_token"]
    assert client.get("/me", headers={"Authorization": f"Bearer {old['access_token']}"}).status_code == 401
    assert client.get("/me", headers={"Authorization": f"Bearer {new['access_token']}"}).get_json() == {"user": USER, "client_id": APP_ID}
    wider = client.post("/token", data={"grant_type": "refresh_token", "refresh_token": new["refresh_token"], "scope": "read write"}, headers=BASIC)
    assert _error(wider) == (400, "invalid_scope")
    assert setup.tokens.fetch_by_refresh_token(new["refresh_token"]).refresh_token == new["refresh_token"]  # a refused refresh leaves it


def test_a_grant_class_without_storage_says_how_to_get_one() -> None:
    server = AuthorizationServer()
    for grant, attribute in ((AuthorizationCodeGrant, "authorization_code_grant"), (RefreshTokenGrant, "refresh_token_grant")):
        with pytest.raises(TypeError, match=attribute):
            grant(OAuth2Request("POST", "https://server.example/token"), server)

