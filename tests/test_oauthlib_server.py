"""The oauthlib example server, started as a subprocess and driven over HTTP by real clients.

Authlib's ``OAuth2Session`` and requests-oauthlib's ``OAuth2Session`` run the flows as client
applications would (Authlib authenticating with ``client_secret_post``, requests-oauthlib with
``client_secret_basic``); raw ``requests`` calls make the requests a client library would refuse
to make (a replayed code, a wrong verifier, an unknown client). Every server listens on
127.0.0.1 only, and every wait is bounded.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import json
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session as AuthlibSession
from oauthlib.oauth2 import BackendApplicationClient
from requests_oauthlib import OAuth2Session as RequestsOAuthlibSession

from tests.example_servers import EXAMPLES, HTTP_TIMEOUT, STORES, ExampleServer, running_example, store_url_for
from tests.memcached_server import MemcachedServer, free_port

EXAMPLE = EXAMPLES / "oauthlib_server.py"
APP, SECRET, REDIRECT_URI = "app", "s3cret-app-" + secrets.token_hex(4), "http://127.0.0.1/cb"
OTHER, OTHER_SECRET = "other", "s3cret-other-" + secrets.token_hex(4)
SPA, SPA_REDIRECT_URI = "spa", "http://127.0.0.1/spa"
USER = "alice"
LIBRARIES = ("authlib", "requests-oauthlib")


@contextlib.contextmanager
def example_server(store_url: str, *, secrets: tuple[str, ...] = ()) -> Iterator[ExampleServer]:
    """The example on ``store_url`` with APP, OTHER (confidential) and SPA (public) registered."""
    clients = [f"{APP}:{SECRET}:{REDIRECT_URI}", f"{OTHER}:{OTHER_SECRET}:{REDIRECT_URI}", f"{SPA}::{SPA_REDIRECT_URI}"]
    arguments = ["--store", store_url, *[argument for client in clients for argument in ("--client", client)]]
    with running_example(EXAMPLE, arguments, secrets=(SECRET, OTHER_SECRET, *secrets)) as server:
        yield server


pytestmark = pytest.mark.usefixtures("plain_http_to_loopback")


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest) -> str:
    """Each test runs on the in-memory store and on the session's memcached (its own prefix)."""
    return store_url_for(request)


class Flow(Protocol):
    """One client application running the authorization-code flow with PKCE through a library."""

    def authorize(self) -> str:
        """Send the user to /oauth/authorize (approved at once for USER); return the redirect."""
        ...

    def fetch_token(self, location: str) -> dict[str, Any]:
        """Redeem the code of the redirect ``location``; return the token response."""
        ...

    def refresh(self) -> dict[str, Any]:
        """Refresh the session's token; return the token response."""
        ...

    def me(self) -> requests.Response:
        """GET /api/me with the session's access token."""
        ...

    def close(self) -> None: ...


class AuthlibFlow:
    """Authlib's requests client: ``client_secret_post`` for a confidential client, ``none`` for a public one."""

    def __init__(self, base: str, client_id: str, secret: str, redirect_uri: str) -> None:
        self.base = base
        self.verifier = secrets.token_urlsafe(48)
        self.state = ""
        method = "client_secret_post" if secret else "none"
        self.session = AuthlibSession(
            client_id, secret or None, token_endpoint_auth_method=method, redirect_uri=redirect_uri, scope="read",
            code_challenge_method="S256", default_timeout=HTTP_TIMEOUT,
        )

    def authorize(self) -> str:
        url, self.state = self.session.create_authorization_url(f"{self.base}/oauth/authorize", code_verifier=self.verifier, user=USER)
        return _redirect(url)

    def fetch_token(self, location: str) -> dict[str, Any]:
        return dict(self.session.fetch_token(f"{self.base}/oauth/token", authorization_response=location, state=self.state, code_verifier=self.verifier))

    def refresh(self) -> dict[str, Any]:
        return dict(self.session.refresh_token(f"{self.base}/oauth/token"))

    def me(self) -> requests.Response:
        return self.session.get(f"{self.base}/api/me")

    def close(self) -> None:
        self.session.close()


class RequestsOAuthlibFlow:
    """requests-oauthlib: ``client_secret_basic`` for a confidential client, ``client_id`` alone for a public one."""

    def __init__(self, base: str, client_id: str, secret: str, redirect_uri: str) -> None:
        self.base, self.client_id, self.secret = base, client_id, secret
        self.session = RequestsOAuthlibSession(client_id, redirect_uri=redirect_uri, scope=["read"], pkce="S256")

    def authorize(self) -> str:
        url, _ = self.session.authorization_url(f"{self.base}/oauth/authorize", user=USER)
        return _redirect(url)

    def fetch_token(self, location: str) -> dict[str, Any]:
        url = f"{self.base}/oauth/token"
        if self.secret:
            return dict(self.session.fetch_token(url, authorization_response=location, client_secret=self.secret, timeout=HTTP_TIMEOUT))
        return dict(self.session.fetch_token(url, authorization_response=location, include_client_id=True, timeout=HTTP_TIMEOUT))

    def refresh(self) -> dict[str, Any]:
        url = f"{self.base}/oauth/token"
        if self.secret:
            return dict(self.session.refresh_token(url, auth=requests.auth.HTTPBasicAuth(self.client_id, self.secret), timeout=HTTP_TIMEOUT))
        return dict(self.session.refresh_token(url, client_id=self.client_id, timeout=HTTP_TIMEOUT))

    def me(self) -> requests.Response:
        return self.session.get(f"{self.base}/api/me", timeout=HTTP_TIMEOUT)

    def close(self) -> None:
        self.session.close()


def _flow(library: str, base: str, client_id: str, secret: str, redirect_uri: str) -> Flow:
    kind = AuthlibFlow if library == "authlib" else RequestsOAuthlibFlow
    return kind(base, client_id, secret, redirect_uri)


def _scope(token: dict[str, Any]) -> str:
    """A token response's scope as the server sent it (requests-oauthlib makes it a list)."""
    scope = token["scope"]
    return scope if isinstance(scope, str) else " ".join(scope)


def _redirect(url: str) -> str:
    """GET ``url`` (an authorization request); return where the server redirects to."""
    answer = requests.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert answer.status_code == 302, answer.text
    location: str = answer.headers["Location"]
    return location


def _code(base: str, client_id: str = APP, redirect_uri: str = REDIRECT_URI, **params: str) -> str:
    """A code for USER, asked for by hand (PKCE S256 with ``verifier(code)`` when a challenge is wanted)."""
    query = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "state": "s", "user": USER, **params}
    return parse_qs(urlsplit(_redirect(f"{base}/oauth/authorize?{urlencode(query)}")).query)["code"][0]


VERIFIER = secrets.token_urlsafe(48)
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=").decode()


def _post(base: str, path: str, form: dict[str, str], auth: tuple[str, str] | None = (APP, SECRET)) -> requests.Response:
    return requests.post(f"{base}{path}", data=form, auth=auth, timeout=HTTP_TIMEOUT)


def _redeem(base: str, code: str, verifier: str = VERIFIER) -> requests.Response:
    return _post(base, "/oauth/token", {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier})


def _refresh(base: str, refresh_token: str, auth: tuple[str, str] | None = (APP, SECRET), **form: str) -> requests.Response:
    return _post(base, "/oauth/token", {"grant_type": "refresh_token", "refresh_token": refresh_token, **form}, auth)


def _me(base: str, access_token: str) -> requests.Response:
    return requests.get(f"{base}/api/me", headers={"Authorization": f"Bearer {access_token}"}, timeout=HTTP_TIMEOUT)


def _introspect(base: str, token: str) -> dict[str, Any]:
    answer = _post(base, "/oauth/introspect", {"token": token})
    assert answer.status_code == 200, answer.text
    claims: dict[str, Any] = answer.json()
    return claims


def _error(answer: requests.Response, status: int | tuple[int, ...]) -> str:
    """The ``error`` of a JSON error answer with ``status`` (failing if the answer is anything else)."""
    assert answer.status_code in ((status,) if isinstance(status, int) else status), (answer.status_code, answer.text)
    assert answer.headers["Content-Type"].startswith("application/json"), answer.text
    assert "Traceback" not in answer.text and "<html" not in answer.text.lower()
    error: str = answer.json()["error"]
    return error


@pytest.mark.parametrize("library", LIBRARIES)
def test_authorization_code_with_pkce_then_rotating_refresh(store_url: str, library: str) -> None:
    with example_server(store_url) as server:
        for client_id, secret, redirect_uri in ((APP, SECRET, REDIRECT_URI), (SPA, "", SPA_REDIRECT_URI)):
            flow = _flow(library, server.base, client_id, secret, redirect_uri)
            try:
                location = flow.authorize()
                assert location.startswith(redirect_uri + "?")
                token = flow.fetch_token(location)
                assert (token["token_type"], token["expires_in"], _scope(token)) == ("Bearer", 3600, "read"), token
                me = flow.me()
                assert me.status_code == 200 and me.json() == {"user": USER, "client_id": client_id, "scope": "read"}, me.text
                claims = _introspect(server.base, token["access_token"])
                assert claims["exp"] - claims["iat"] == 3600
                assert {key: claims[key] for key in ("active", "client_id", "sub", "scope", "token_type")} == {
                    "active": True, "client_id": client_id, "sub": USER, "scope": "read", "token_type": "Bearer"
                }
                refresh_claims = _introspect(server.base, token["refresh_token"])
                assert refresh_claims["exp"] - refresh_claims["iat"] == 30 * 24 * 3600

                refreshed = flow.refresh()
                assert refreshed["access_token"] != token["access_token"]
                assert refreshed["refresh_token"] not in (None, token["refresh_token"])
                if secret:
                    again = _refresh(server.base, token["refresh_token"], auth=(client_id, secret))
                else:
                    again = _refresh(server.base, token["refresh_token"], auth=None, client_id=client_id)
                assert _error(again, 400) == "invalid_grant"
                old = _me(server.base, token["access_token"])
                assert old.status_code == 401 and old.headers["WWW-Authenticate"].startswith("Bearer ")
                assert _introspect(server.base, token["access_token"]) == {"active": False}
                assert flow.me().json()["client_id"] == client_id  # the new token works
            finally:
                flow.close()


@pytest.mark.parametrize("library", LIBRARIES)
def test_client_credentials_then_revocation(store_url: str, library: str) -> None:
    with example_server(store_url) as server:
        url = f"{server.base}/oauth/token"
        if library == "authlib":
            with AuthlibSession(APP, SECRET, token_endpoint_auth_method="client_secret_post", default_timeout=HTTP_TIMEOUT) as authlib_session:
                token = dict(authlib_session.fetch_token(url, grant_type="client_credentials"))
                revoked = authlib_session.revoke_token(f"{server.base}/oauth/revoke", token=token["access_token"], token_type_hint="access_token")
        else:
            with RequestsOAuthlibSession(client=BackendApplicationClient(client_id=APP)) as oauthlib_session:
                token = dict(oauthlib_session.fetch_token(url, client_id=APP, client_secret=SECRET, timeout=HTTP_TIMEOUT))
                me = oauthlib_session.get(f"{server.base}/api/me", timeout=HTTP_TIMEOUT)
                assert me.status_code == 200 and me.json() == {"user": None, "client_id": APP, "scope": ""}, me.text
            revoked = _post(server.base, "/oauth/revoke", {"token": token["access_token"]})  # requests-oauthlib has no revocation call
        assert token["token_type"] == "Bearer" and "refresh_token" not in token
        assert revoked.status_code == 200, revoked.text
        assert _me(server.base, token["access_token"]).status_code == 401
        assert _introspect(server.base, token["access_token"]) == {"active": False}
        public = _post(server.base, "/oauth/token", {"grant_type": "client_credentials", "client_id": SPA}, auth=None)
        assert _error(public, 401) == "invalid_client"  # a public client has no credentials


def test_refused_requests(store_url: str) -> None:
    with example_server(store_url) as server:
        base = server.base
        code = _code(base, code_challenge=CHALLENGE, code_challenge_method="S256")
        assert _error(_redeem(base, code, verifier=secrets.token_urlsafe(48)), 400) == "invalid_grant"
        assert _error(_redeem(base, code), 400) == "invalid_grant"  # the failed attempt used the code up
        code = _code(base, code_challenge=CHALLENGE, code_challenge_method="S256")
        issued = _redeem(base, code)
        assert issued.status_code == 200, issued.text
        assert _error(_redeem(base, code), 400) == "invalid_grant"  # replayed
        unknown = _post(base, "/oauth/token", {"grant_type": "client_credentials"}, auth=("nobody", SECRET))
        assert _error(unknown, 401) == "invalid_client" and unknown.headers["WWW-Authenticate"].startswith("Basic ")
        unknown = _post(base, "/oauth/token", {"grant_type": "client_credentials", "client_id": "nobody", "client_secret": SECRET}, auth=None)
        assert _error(unknown, 401) == "invalid_client"
        assert _error(_post(base, "/oauth/token", {"grant_type": "client_credentials"}, auth=(APP, "not-" + SECRET)), 401) == "invalid_client"
        spa = requests.get(
            f"{base}/oauth/authorize",
            params={"response_type": "code", "client_id": SPA, "redirect_uri": SPA_REDIRECT_URI, "user": USER},
            allow_redirects=False, timeout=HTTP_TIMEOUT,
        )  # a public client without PKCE: the error goes back to its redirect URI
        assert spa.status_code == 302 and parse_qs(urlsplit(spa.headers["Location"]).query)["error"] == ["invalid_request"]
        for params in ({"client_id": APP, "redirect_uri": "http://127.0.0.1/elsewhere"}, {"client_id": "nobody", "redirect_uri": REDIRECT_URI}):
            answer = requests.get(f"{base}/oauth/authorize", params={"response_type": "code", "user": USER, **params}, allow_redirects=False, timeout=HTTP_TIMEOUT)
            assert _error(answer, 400) == "invalid_request" and "Location" not in answer.headers
        no_user = requests.get(f"{base}/oauth/authorize", params={"response_type": "code", "client_id": APP, "redirect_uri": REDIRECT_URI}, timeout=HTTP_TIMEOUT)
        assert _error(no_user, 400) == "access_denied"

        access_token = issued.json()["access_token"]
        assert _post(base, "/oauth/revoke", {"token": access_token}, auth=(OTHER, OTHER_SECRET)).status_code == 200
        assert _me(base, access_token).status_code == 200  # another client's token is not revoked
        assert _post(base, "/oauth/revoke", {"token": "unknown"}).status_code == 200
        assert _post(base, "/oauth/revoke", {"token": issued.json()["refresh_token"], "token_type_hint": "refresh_token"}).status_code == 200
        assert _me(base, access_token).status_code == 401  # revoked with its refresh token
        assert _error(_refresh(base, issued.json()["refresh_token"]), 400) == "invalid_grant"

        assert _error(requests.get(f"{base}/nowhere", timeout=HTTP_TIMEOUT), 404) == "not_found"
        assert _error(requests.get(f"{base}/oauth/token", timeout=HTTP_TIMEOUT), 405) == "invalid_request"
        garbled = requests.post(f"{base}/oauth/token", data=b"grant_type=\xff", headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=HTTP_TIMEOUT)
        assert _error(garbled, 400) == "invalid_request"
        connection = http.client.HTTPConnection("127.0.0.1", urlsplit(base).port, timeout=HTTP_TIMEOUT)
        try:  # a query requests would re-encode; oauthlib refuses it with a ValueError
            connection.request("GET", f"/oauth/authorize?response_type=code&client_id={APP}&user={USER}&state=%zz")
            with connection.getresponse() as raw:
                assert (raw.status, json.loads(raw.read())["error"]) == (400, "invalid_request")
        finally:
            connection.close()
        missing = requests.get(f"{base}/api/me", timeout=HTTP_TIMEOUT)
        assert _error(missing, 401) == "invalid_token" and missing.headers["WWW-Authenticate"] == 'Bearer realm="api"'


def test_memcached_down_is_a_json_503_at_every_endpoint(own_memcached: MemcachedServer) -> None:
    with example_server(f"memcache://{own_memcached.address}?timeout=0.5") as server:
        base = server.base
        issued = _redeem(base, _code(base, code_challenge=CHALLENGE, code_challenge_method="S256"))
        assert issued.status_code == 200, issued.text
        access_token, refresh_token = issued.json()["access_token"], issued.json()["refresh_token"]
        code = _code(base)
        own_memcached.kill()
        answers = {
            "code": _redeem(base, code),
            "client_credentials": _post(base, "/oauth/token", {"grant_type": "client_credentials"}),
            "refresh": _refresh(base, refresh_token),
            "me": _me(base, access_token),
            "revoke": _post(base, "/oauth/revoke", {"token": access_token}),
            "introspect": _post(base, "/oauth/introspect", {"token": access_token}),
            "authorize": requests.get(
                f"{base}/oauth/authorize",
                params={"response_type": "code", "client_id": APP, "redirect_uri": REDIRECT_URI, "user": USER},
                allow_redirects=False, timeout=HTTP_TIMEOUT,
            ),
        }
        for name, answer in answers.items():  # never 401, never 200, never a redirect, never "not found"
            assert _error(answer, 503) == "temporarily_unavailable", name
        assert "WWW-Authenticate" not in answers["me"].headers
        assert server.process.poll() is None  # still serving
        assert server.stop() == 0
    assert "token store unavailable" in server.stderr  # logged for the operator, without secrets:
    for secret in (access_token, refresh_token, code):
        assert secret not in server.stderr


def test_three_servers_share_one_memcached_and_each_code_gives_one_token(memcached: MemcachedServer) -> None:
    store = f"memcache://{memcached.address}?prefix=oauthlib-race-{secrets.token_hex(6)}"
    with example_server(store) as first, example_server(store) as second, example_server(store) as third:
        servers = (first, second, third)
        issued = _redeem(second.base, _code(first.base))  # a code from one process, redeemed at another
        assert issued.status_code == 200, issued.text
        refreshed = _refresh(third.base, issued.json()["refresh_token"])
        assert refreshed.status_code == 200, refreshed.text
        assert _me(first.base, issued.json()["access_token"]).status_code == 401  # revoked for every process
        assert _error(_refresh(first.base, issued.json()["refresh_token"]), 400) == "invalid_grant"

        codes = [_code(servers[index % 3].base) for index in range(20)]
        tokens: list[str] = []
        refusals: list[str] = []
        lock = threading.Lock()

        def race(code: str, barrier: threading.Barrier, base: str) -> None:
            barrier.wait(timeout=HTTP_TIMEOUT)  # all three requests leave together
            answer = _post(base, "/oauth/token", {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI})
            with lock:
                if answer.status_code == 200:
                    tokens.append(answer.json()["access_token"])
                else:
                    refusals.append(_error(answer, 400))

        with ThreadPoolExecutor(max_workers=3) as pool:
            for code in codes:
                barrier = threading.Barrier(3)
                for future in [pool.submit(race, code, barrier, server.base) for server in servers]:
                    future.result(timeout=3 * HTTP_TIMEOUT)
    assert len(tokens) == len(set(tokens)) == len(codes)
    assert refusals == ["invalid_grant"] * (2 * len(codes))


def test_a_bad_store_url_is_a_usage_error() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "--port", str(free_port()), "--store", "bogus://", "--client", f"{APP}:{SECRET}:{REDIRECT_URI}"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("oauthlib_server: bogus://: unknown scheme") and SECRET not in result.stderr
