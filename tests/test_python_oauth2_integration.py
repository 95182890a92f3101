"""The python-oauth2 seam: conversions, errors, codes redeemed once, and grants as families (through
python-oauth2's own ``Provider`` and WSGI ``Application``), on memory and memcached."""

from __future__ import annotations

import datetime
import secrets
import threading
import time
from collections.abc import Callable, Iterator

from typing import Any
from urllib.parse import parse_qs, urlsplit

import oauth2.error
import pytest
from oauth2 import Provider
from oauth2.datatype import AccessToken as PythonOAuth2AccessToken
from oauth2.datatype import AuthorizationCode as PythonOAuth2AuthorizationCode
from oauth2.datatype import Client as PythonOAuth2Client
from oauth2.grant import AuthorizationCodeGrant, RefreshToken
from oauth2.tokengenerator import Uuid4
from oauth2.web import AuthorizationCodeGrantSiteAdapter, Request, Response
from oauth2.web.wsgi import Application
from werkzeug.test import Client as WSGIClient
from werkzeug.test import TestResponse

from oauth2_store import AccessToken
from oauth2_store.error import RecordTypeError, StoreUnavailableError
from oauth2_store.integrations.python_oauth2 import ClientStore, GrantData, InvalidGrant, RefreshTokenAlreadyUsed, TokenStore
from oauth2_store.protocols import LifecycleTokenStoreProtocol
from oauth2_store.store.memcache import MemcacheTokenStore
from oauth2_store.store.memory import LocalTokenStore
from tests.memcached_server import MemcachedServer
from tests.support import TYPEGUARD_RUN, raised_for
from tests.memcache_backends import REISSUE_KEY

StoreFactory = Callable[[], LifecycleTokenStoreProtocol]


@pytest.fixture(params=["memory", "memcached"])
def make_store(request: pytest.FixtureRequest) -> StoreFactory:
    """Builds fresh token stores of one kind: in memory, or on the session's memcached."""
    if request.param == "memory":
        return LocalTokenStore
    address = request.getfixturevalue("memcached").address
    return lambda: MemcacheTokenStore(servers=[address], prefix=f"po2-{secrets.token_hex(6)}", reissue_key=REISSUE_KEY)


@pytest.fixture
def store(make_store: StoreFactory) -> TokenStore:
    return TokenStore(make_store())


def _token(**fields: object) -> PythonOAuth2AccessToken:
    values: dict[str, object] = {
        "client_id": "app",
        "grant_type": "authorization_code",
        "token": secrets.token_urlsafe(16),
        "data": {"name": "alice"},
        "expires_at": int(time.time()) + 600,
        "scopes": ["read"],
        "user_id": 1,
    }
    values.update(fields)
    return PythonOAuth2AccessToken(**values)  # type: ignore[arg-type]  # the fields vary by test


def _code(code: str) -> PythonOAuth2AuthorizationCode:
    return PythonOAuth2AuthorizationCode("app", code, int(time.time()) + 600, "https://app.example/cb", ["read"], {"k": "v"}, user_id=7)


def test_an_integer_user_id_is_stored_as_its_decimal_string(store: TokenStore) -> None:
    saved = _token(refresh_token=secrets.token_urlsafe(16), refresh_expires_at=0)
    assert store.save_token(saved) is True
    found = store.fetch_existing_token_of_user("app", "authorization_code", 1)
    assert (found.token, found.user_id, found.scopes, found.data) == (saved.token, "1", ["read"], {"name": "alice"})
    assert store.fetch_existing_token_of_user("app", "authorization_code", "1").token == saved.token


def test_refresh_expires_at_zero_means_never_and_comes_back_as_zero(store: TokenStore) -> None:
    saved = _token(refresh_token=secrets.token_urlsafe(16), refresh_expires_at=0)
    store.save_token(saved)
    assert store.store.fetch_by_refresh_token(saved.refresh_token or "").refresh_expires_at is None
    assert store.fetch_by_refresh_token(saved.refresh_token or "").refresh_expires_at == 0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"user_id": True}, "user_id must be a str, an int or None, not bool"),
        ({"user_id": 1.5}, "user_id must be a str, an int or None, not float"),
        ({"data": {"when": datetime.datetime(2026, 1, 1)}}, "data['when'] is a datetime"),
    ],
)
def test_a_field_that_cannot_be_kept_is_a_record_type_error_naming_it(store: TokenStore, fields: dict[str, object], message: str) -> None:
    token = _token(**fields)
    with pytest.raises(RecordTypeError, match=message.replace("[", r"\[").replace("]", r"\]")):
        store.save_token(token)
    with pytest.raises(oauth2.error.AccessTokenNotFound):
        store.fetch_by_token(token.token)


def test_only_python_oauth2_records_are_taken(store: TokenStore) -> None:
    ours = AccessToken("app", "authorization_code", "t0ken")
    with pytest.raises(raised_for(RecordTypeError), match="oauth2.datatype.AccessToken"):
        store.save_token(ours)  # type: ignore[arg-type]  # the mistake under test
    with pytest.raises(raised_for(RecordTypeError), match="oauth2.datatype.AuthorizationCode"):
        store.save_code(ours)  # type: ignore[arg-type]  # the mistake under test


def test_misses_are_python_oauth2_errors(store: TokenStore) -> None:
    with pytest.raises(oauth2.error.AccessTokenNotFound):
        store.fetch_by_token("missing")
    with pytest.raises(oauth2.error.AccessTokenNotFound):
        store.fetch_by_refresh_token("missing")
    with pytest.raises(oauth2.error.AccessTokenNotFound):
        store.fetch_existing_token_of_user("app", "password", "nobody")
    with pytest.raises(oauth2.error.AuthCodeNotFound):
        store.fetch_by_code("missing")
    with pytest.raises(oauth2.error.ClientNotFoundError):
        ClientStore().fetch_by_client_id("missing")


def test_a_refresh_token_already_used_is_invalid_grant(store: TokenStore) -> None:
    saved = _token(refresh_token=secrets.token_urlsafe(16), refresh_expires_at=int(time.time()) + 600)
    store.save_token(saved)
    store.delete_refresh_token(saved.refresh_token or "")
    with pytest.raises(RefreshTokenAlreadyUsed) as raised:
        store.delete_refresh_token(saved.refresh_token or "")
    assert isinstance(raised.value, oauth2.error.AccessTokenNotFound)
    assert isinstance(raised.value, oauth2.error.OAuthInvalidError)
    assert raised.value.error == "invalid_grant"


def test_fetch_by_code_redeems_the_code(store: TokenStore) -> None:
    store.save_code(_code("c0de"))
    found = store.fetch_by_code("c0de")
    assert (found.code, found.user_id, found.data, found.scopes) == ("c0de", "7", {"k": "v"}, ["read"])
    store.delete_code("c0de")  # what python-oauth2's grant does next: no error
    with pytest.raises(InvalidGrant) as replayed:  # a replay, not a miss: python-oauth2 answers a miss invalid_request
        store.fetch_by_code("c0de")
    assert replayed.value.error == "invalid_grant" and not isinstance(replayed.value, oauth2.error.AuthCodeNotFound)


def test_of_threads_racing_for_one_code_exactly_one_gets_it(make_store: StoreFactory) -> None:
    shared = make_store()
    codes = [f"race-{index}" for index in range(50)]
    racers = 4
    won: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(racers, timeout=10)

    def race() -> None:
        store = TokenStore(shared)
        barrier.wait()
        for code in codes:
            try:
                won.append(store.fetch_by_code(code).code)
            except (InvalidGrant, oauth2.error.AuthCodeNotFound):  # another thread had it (a replay, or gone)
                pass
            except BaseException as error:  # reported below: a thread's error is otherwise lost
                errors.append(error)

    setter = TokenStore(shared)
    for code in codes:
        setter.save_code(_code(code))
    threads = [threading.Thread(target=race) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert sorted(won) == sorted(codes)


def test_clients_are_fresh_objects_and_secrets_compare_safely() -> None:
    clients = ClientStore()
    assert clients.add_client("app", "s3cret", ["https://app.example/cb", "https://app.example/other"]) is True
    clients.add_client("public", "", ["https://public.example/cb"])
    first, second = clients.fetch_by_client_id("app"), clients.fetch_by_client_id("app")
    first.redirect_uri = "https://app.example/other"
    assert (first.redirect_uri, second.redirect_uri) == ("https://app.example/other", "https://app.example/cb")
    with pytest.raises(oauth2.error.RedirectUriUnknown):
        first.redirect_uri = "https://evil.example/cb"
    assert first.secret == "s3cret" and not (first.secret != "s3cret")
    assert first.secret != "s3creT" and first.secret != "" and first.secret != None  # noqa: E711 - python-oauth2 compares with !=
    assert "s3cret" not in repr(first.secret)
    public = clients.fetch_by_client_id("public")
    assert public.secret != "" and not (public.secret == "")


@pytest.fixture
def stopped_memcached(own_memcached: MemcachedServer) -> Iterator[TokenStore]:
    store = TokenStore(MemcacheTokenStore(servers=[own_memcached.address], timeout=0.5, connect_timeout=0.5, reissue_key=REISSUE_KEY))
    own_memcached.stop()
    yield store


def test_a_store_failure_is_never_a_miss(stopped_memcached: TokenStore) -> None:
    with pytest.raises(StoreUnavailableError):
        stopped_memcached.fetch_by_token("any")
    with pytest.raises(StoreUnavailableError):
        stopped_memcached.fetch_by_code("any")
    with pytest.raises(StoreUnavailableError):
        stopped_memcached.save_token(_token())


def test_the_core_stores_refuse_python_oauth2_records_naming_them(make_store: StoreFactory) -> None:
    """Without the integration, python-oauth2's records are refused at the door, not deep inside."""
    core = make_store()
    with pytest.raises(raised_for(RecordTypeError), match="oauth2.datatype.AccessToken"):
        core.save_token(_token())  # type: ignore[arg-type]  # the mistake under test
    with pytest.raises(raised_for(RecordTypeError), match="oauth2.datatype.AuthorizationCode"):
        core.save_code(_code("c0de"))  # type: ignore[arg-type]  # the mistake under test
    if not TYPEGUARD_RUN:
        with pytest.raises(RecordTypeError, match="^save_code takes an oauth2_store.AuthorizationCode, not oauth2.datatype.AuthorizationCode$"):
            core.save_code(_code("c0de"))  # type: ignore[arg-type]  # the mistake under test


# Grants as families, through python-oauth2's own Provider and WSGI Application.

CLIENT_ID, CLIENT_SECRET, REDIRECT_URI = "app", "s3cret-app", "https://app.example/cb"


class _Approve(AuthorizationCodeGrantSiteAdapter):
    """Approves every authorization request for alice."""

    def authenticate(self, request: Request, environ: dict[str, Any], scopes: list[str], client: PythonOAuth2Client) -> tuple[dict[str, Any], object]:
        return {"approved": "yes"}, "alice"

    def render_auth_page(self, request: Request, response: Response, environ: dict[str, Any], scopes: list[str], client: PythonOAuth2Client) -> Response:
        return response

    def user_has_denied_access(self, request: Request) -> bool:
        return False


class _Server:
    """python-oauth2's Provider on ``tokens`` (code grant, rotating refresh), driven over WSGI."""

    def __init__(self, tokens: TokenStore) -> None:
        self.tokens = tokens
        clients = ClientStore()
        clients.add_client(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI])
        provider = Provider(access_token_store=tokens, auth_code_store=tokens, client_store=clients, token_generator=Uuid4())
        provider.add_grant(AuthorizationCodeGrant(expires_in=3600, site_adapter=_Approve()))
        provider.add_grant(RefreshToken(expires_in=30 * 24 * 3600, reissue_refresh_tokens=True))
        self.http = WSGIClient(Application(provider=provider))

    def code(self) -> str:
        answer = self.http.get("/authorize", query_string={"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI})
        assert answer.status_code == 302, answer.get_data(as_text=True)
        return parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]

    def post(self, **form: str) -> TestResponse:
        return self.http.post("/token", data={**form, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})

    def redeem(self, code: str) -> TestResponse:
        return self.post(grant_type="authorization_code", code=code, redirect_uri=REDIRECT_URI)

    def refresh(self, refresh_token: str) -> TestResponse:
        return self.post(grant_type="refresh_token", refresh_token=refresh_token)

    def issued(self, answer: TestResponse) -> dict[str, str]:
        assert answer.status_code == 200, answer.get_data(as_text=True)
        token: dict[str, str] = answer.get_json()
        return token

    def live(self, access_token: str) -> bool:
        """Whether the resource server would take ``access_token`` (the store finds it)."""
        try:
            self.tokens.fetch_by_token(access_token)
        except oauth2.error.AccessTokenNotFound:
            return False
        return True


def _error_of(answer: TestResponse) -> str:
    assert answer.status_code == 400 and answer.mimetype == "application/json", answer.get_data(as_text=True)
    error: str = answer.get_json()["error"]
    return error


@pytest.fixture
def server(store: TokenStore) -> _Server:
    return _Server(store)


def test_a_replayed_code_is_invalid_grant_and_ends_the_token_issued_from_it(server: _Server) -> None:
    code = server.code()
    first = server.issued(server.redeem(code))
    assert server.live(first["access_token"])
    assert _error_of(server.redeem(code)) == "invalid_grant"  # python-oauth2 alone: invalid_request
    assert not server.live(first["access_token"])
    assert _error_of(server.refresh(first["refresh_token"])) in ("invalid_request", "invalid_grant")  # its refresh token went too
    other = server.issued(server.redeem(server.code()))  # another grant is untouched
    assert server.live(other["access_token"])


def test_a_rotated_refresh_token_presented_again_is_invalid_grant_and_ends_the_newest_tokens(server: _Server) -> None:
    first = server.issued(server.redeem(server.code()))
    second = server.issued(server.refresh(first["refresh_token"]))
    newest = server.issued(server.refresh(second["refresh_token"]))
    assert server.live(newest["access_token"]) and not server.live(first["access_token"])
    assert _error_of(server.refresh(first["refresh_token"])) == "invalid_grant"
    assert not server.live(newest["access_token"])
    assert _error_of(server.refresh(newest["refresh_token"])) in ("invalid_request", "invalid_grant")


def test_tokens_from_a_code_and_from_its_refreshes_share_the_code_s_grant(server: _Server) -> None:
    code = server.code()
    grant_id = server.tokens.store.fetch_by_code(code).grant_id  # the underlying store's fetch does not consume
    first = server.issued(server.redeem(code))
    assert server.tokens.store.fetch_by_token(first["access_token"]).grant_id == grant_id
    refreshed = server.issued(server.refresh(first["refresh_token"]))
    record = server.tokens.store.fetch_by_token(refreshed["access_token"])
    assert (record.grant_id, record.user_id, record.refresh_token) == (grant_id, "alice", refreshed["refresh_token"])
    found = server.tokens.fetch_by_token(refreshed["access_token"])
    assert isinstance(found.data, GrantData) and found.data.grant_id == grant_id and found.data == {"approved": "yes"}
    unlinked = _token(refresh_token=secrets.token_urlsafe(16), refresh_expires_at=0)  # plain data: a grant of its own
    server.tokens.save_token(unlinked)
    assert server.tokens.store.fetch_by_token(unlinked.token).grant_id != grant_id


class _RevokedMeanwhile(TokenStore):
    """Revokes the grant of each code it redeems before python-oauth2 saves the token: what a
    concurrent replay of the code does in between."""

    def fetch_by_code(self, code: str) -> PythonOAuth2AuthorizationCode:
        found = super().fetch_by_code(code)
        assert isinstance(found.data, GrantData) and isinstance(self.store, LifecycleTokenStoreProtocol)
        self.store.revoke_grant(found.data.grant_id)
        return found


def test_a_token_saved_into_a_revoked_grant_is_invalid_grant_not_a_server_error(make_store: StoreFactory) -> None:
    server = _Server(_RevokedMeanwhile(make_store()))
    assert _error_of(server.redeem(server.code())) == "invalid_grant"
    with pytest.raises(oauth2.error.AccessTokenNotFound):
        server.tokens.fetch_existing_token_of_user(CLIENT_ID, "authorization_code", "alice")  # nothing was saved
