"""The Authlib and oauthlib example servers, started as subprocesses and driven over HTTP by real clients.

Both examples promise one command line and one HTTP surface, so every test here runs on both
(``example``), each on the in-memory store and on the session's memcached (its own prefix), with
one server per example and store for the module; the failure and race scenarios start their own.
Authlib's ``OAuth2Session`` (on requests) and requests-oauthlib's ``OAuth2Session`` run the flows
as client applications would; raw ``requests`` calls (:class:`Flow`) make the requests a client
library would refuse to make: a replayed code, a rotated refresh token presented again, a wrong
verifier, an unknown client. A replay or reuse ends the whole grant (the token lifecycle of the
stores), so after one the tests check that the grant's tokens are refused at ``/api/me``. Every
token, code and verifier a test sees is checked absent from the server's standard error when it
stops.
Every server listens on 127.0.0.1 only, and every wait is bounded.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import json
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session as AuthlibSession
from authlib.integrations.requests_client import OAuthError
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from oauthlib.oauth2 import BackendApplicationClient
from requests.auth import HTTPBasicAuth
from requests_oauthlib import OAuth2Session as RequestsOAuthlibSession

from tests.example_servers import EXAMPLES, HTTP_TIMEOUT, STORES, ExampleServer, running_example, store_url_for
from tests.memcached_server import MemcachedServer

SCRIPTS = {"authlib": EXAMPLES / "authlib_server.py", "oauthlib": EXAMPLES / "oauthlib_server.py"}
USER = "alice"
SCOPE = "profile email"
ACCESS_SECONDS, REFRESH_SECONDS = 3600, 30 * 24 * 3600


class DemoApp(NamedTuple):
    """A client registered with the example (``--client ID:SECRET:REDIRECT_URI``)."""

    client_id: str
    secret: str
    redirect_uri: str

    @property
    def option(self) -> str:
        return f"{self.client_id}:{self.secret}:{self.redirect_uri}"

    @property
    def basic(self) -> HTTPBasicAuth:
        return HTTPBasicAuth(self.client_id, self.secret)


APP = DemoApp("app", "s3cret-app-" + secrets.token_hex(4), "http://127.0.0.1/cb")
OTHER = DemoApp("other", "s3cret-other-" + secrets.token_hex(4), "http://127.0.0.1/other")
SPA = DemoApp("spa", "", "http://127.0.0.1/spa")  # a public client
NOBODY = DemoApp("nobody", "s3cret-nobody", "http://127.0.0.1/nobody")  # never registered


@contextlib.contextmanager
def example_server(script: Path, store_url: str) -> Iterator[ExampleServer]:
    """The example ``script`` on ``store_url`` with APP, OTHER and SPA registered (see running_example)."""
    arguments = ["--store", store_url, *(f"--client={app.option}" for app in (APP, OTHER, SPA))]
    with running_example(script, arguments, secrets=(APP.secret, OTHER.secret)) as server:
        yield server


def pkce_pair() -> tuple[str, str]:
    """A fresh PKCE code verifier (RFC 7636 §4.1) and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    return verifier, create_s256_code_challenge(verifier)


def error_of(answer: requests.Response, status: int | None = None) -> str:
    """The ``error`` of a JSON error answer (with ``status``), failing if it is anything else (HTML, a traceback)."""
    if status is not None:
        assert answer.status_code == status, (answer.status_code, answer.text)
    assert answer.headers["Content-Type"].startswith("application/json"), answer.text
    assert "Traceback" not in answer.text and "<html" not in answer.text.lower()
    error: str = answer.json()["error"]
    return error


def redirect_params(answer: requests.Response, app: DemoApp) -> dict[str, str]:
    """The query of a 302 to ``app``'s redirect URI."""
    assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    assert location.startswith(app.redirect_uri + "?"), location
    return {name: values[0] for name, values in parse_qs(urlsplit(location).query).items()}


def text(token: dict[str, object], field: str) -> str:
    value = token[field]
    assert isinstance(value, str) and value, token
    return value


class Flow:
    """Raw HTTP requests to one example server, as a client library would make them (or would not).

    What the server issues (codes, tokens) is added to its :attr:`ExampleServer.secrets`.
    """

    def __init__(self, server: ExampleServer) -> None:
        self.server = server
        self.base = server.base

    def authorize(self, app: DemoApp, *, challenge: str | None = None, user: str | None = USER, **extra: str) -> requests.Response:
        params = {"response_type": "code", "client_id": app.client_id, "redirect_uri": app.redirect_uri, "scope": SCOPE, "state": "st4te"}
        if challenge is not None:
            params.update(code_challenge=challenge, code_challenge_method="S256")
        if user is not None:
            params["user"] = user
        params.update(extra)
        return requests.get(f"{self.base}/oauth/authorize", params={name: value for name, value in params.items() if value}, allow_redirects=False, timeout=HTTP_TIMEOUT)

    def code(self, app: DemoApp, challenge: str | None = None, **extra: str) -> str:
        params = redirect_params(self.authorize(app, challenge=challenge, **extra), app)
        assert params["state"] == "st4te", params
        self.server.never_logs(params["code"])
        return params["code"]

    def token(self, app: DemoApp | None, *, basic: bool = True, **form: str) -> requests.Response:
        """POST /oauth/token as ``app``: HTTP Basic, its secret in the form, or (public) its id alone."""
        auth = None
        if app is not None and app.secret and basic:
            auth = app.basic
        elif app is not None:
            form.update(client_id=app.client_id, **({"client_secret": app.secret} if app.secret else {}))
        answer = requests.post(f"{self.base}/oauth/token", data=form, auth=auth, timeout=HTTP_TIMEOUT)
        if answer.status_code == 200:
            self.server.never_logs(answer.json().get("access_token", ""), answer.json().get("refresh_token", ""))
        return answer

    def redeem(self, app: DemoApp, code: str, verifier: str | None = None, *, basic: bool = True, redirect_uri: str | None = None) -> requests.Response:
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri or app.redirect_uri}
        if verifier is not None:
            self.server.never_logs(verifier)
            form["code_verifier"] = verifier
        return self.token(app, basic=basic, **form)

    def refresh(self, app: DemoApp, refresh_token: str) -> requests.Response:
        return self.token(app, grant_type="refresh_token", refresh_token=refresh_token)

    def issue(self, app: DemoApp = APP) -> dict[str, object]:
        """A token for USER through the code flow with PKCE."""
        verifier, challenge = pkce_pair()
        answer = self.redeem(app, self.code(app, challenge), verifier)
        assert answer.status_code == 200, answer.text
        token: dict[str, object] = answer.json()
        return token

    def revoke(self, app: DemoApp, token: str, hint: str | None = None) -> requests.Response:
        form = {"token": token, **({"token_type_hint": hint} if hint else {})}
        auth = app.basic if app.secret else None
        if not app.secret:
            form["client_id"] = app.client_id
        return requests.post(f"{self.base}/oauth/revoke", data=form, auth=auth, timeout=HTTP_TIMEOUT)

    def introspect(self, token: str, app: DemoApp = APP, hint: str | None = None) -> requests.Response:
        form = {"token": token, **({"token_type_hint": hint} if hint else {})}
        if app.secret:
            return requests.post(f"{self.base}/oauth/introspect", data=form, auth=app.basic, timeout=HTTP_TIMEOUT)
        return requests.post(f"{self.base}/oauth/introspect", data={**form, "client_id": app.client_id}, timeout=HTTP_TIMEOUT)

    def active(self, token: str, app: DemoApp = APP, hint: str | None = None) -> bool:
        answer = self.introspect(token, app, hint)
        assert answer.status_code == 200, answer.text
        active: bool = answer.json()["active"]
        return active

    def me(self, access_token: str | None = None, **headers: str) -> requests.Response:
        if access_token is not None:
            headers["Authorization"] = f"Bearer {access_token}"
        return requests.get(f"{self.base}/api/me", headers=headers, timeout=HTTP_TIMEOUT)

    def refused_bearer(self, access_token: str) -> None:
        """/api/me answers 401 invalid_token with a Bearer challenge naming the error."""
        answer = self.me(access_token)
        assert error_of(answer, 401) == "invalid_token", answer.text
        challenge = answer.headers["WWW-Authenticate"]
        assert challenge.startswith('Bearer realm="api"') and 'error="invalid_token"' in challenge, challenge


@pytest.fixture(scope="module", params=sorted(SCRIPTS))
def example(request: pytest.FixtureRequest) -> Path:
    """Which example: ``authlib_server.py`` or ``oauthlib_server.py``."""
    return SCRIPTS[request.param]


@pytest.fixture(scope="module", params=STORES)
def server(request: pytest.FixtureRequest, example: Path) -> Iterator[ExampleServer]:
    """One server per example and store for the module: in memory, and on the session's memcached."""
    with example_server(example, store_url_for(request)) as running:
        yield running


@pytest.fixture
def flow(server: ExampleServer) -> Flow:
    return Flow(server)


pytestmark = pytest.mark.usefixtures("plain_http_to_loopback")


def test_authlib_client_code_flow_with_pkce_then_the_api_and_introspection(flow: Flow) -> None:
    before = int(time.time())
    with AuthlibSession(APP.client_id, APP.secret, scope=SCOPE, redirect_uri=APP.redirect_uri, code_challenge_method="S256", default_timeout=HTTP_TIMEOUT) as session:
        verifier = secrets.token_urlsafe(48)
        url, state = session.create_authorization_url(f"{flow.base}/oauth/authorize", code_verifier=verifier, user=USER)
        assert "code_challenge=" in url
        location = requests.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT).headers["Location"]
        token = session.fetch_token(f"{flow.base}/oauth/token", authorization_response=location, state=state, code_verifier=verifier)
        flow.server.never_logs(verifier, token["access_token"], token["refresh_token"])
        assert (token["token_type"], token["expires_in"], token["scope"]) == ("Bearer", ACCESS_SECONDS, SCOPE)
        me = session.get(f"{flow.base}/api/me")
        assert me.status_code == 200 and me.json() == {"user": USER, "client_id": APP.client_id, "scope": SCOPE}
        described = session.introspect_token(f"{flow.base}/oauth/introspect", token=token["access_token"]).json()
        refresh = session.introspect_token(f"{flow.base}/oauth/introspect", token=token["refresh_token"], token_type_hint="refresh_token").json()
    after = int(time.time())
    assert described.keys() >= {"active", "scope", "client_id", "token_type", "exp", "iat", "sub"}
    assert (described["active"], described["scope"], described["client_id"], described["token_type"], described["sub"]) == (True, SCOPE, APP.client_id, "Bearer", USER)
    assert before <= described["iat"] <= after and described["exp"] - described["iat"] == ACCESS_SECONDS
    assert refresh["active"] is True and refresh["exp"] - refresh["iat"] == REFRESH_SECONDS  # the refresh token's own lifetime


def test_a_client_introspects_its_own_tokens_only(flow: Flow) -> None:
    access = text(flow.issue(), "access_token")
    assert flow.active(access, APP)
    theirs = flow.introspect(access, OTHER)  # another confidential client: as if the token were unknown
    assert theirs.status_code == 200 and theirs.json() == {"active": False}, theirs.text
    public = flow.introspect(access, SPA)  # a public client cannot authenticate at all
    assert error_of(public, 401) == "invalid_client"
    assert flow.active(access, APP, hint="no-such-hint")  # an unknown hint is ignored (RFC 7009 §2.1)


def test_authlib_client_refresh_rotates_and_revokes_the_old_tokens(flow: Flow) -> None:
    first = flow.issue()
    old_access, old_refresh = text(first, "access_token"), text(first, "refresh_token")
    with AuthlibSession(APP.client_id, APP.secret, token=first, default_timeout=HTTP_TIMEOUT) as session:
        refreshed = session.refresh_token(f"{flow.base}/oauth/token", refresh_token=old_refresh)
    flow.server.never_logs(refreshed["access_token"], refreshed["refresh_token"])
    assert refreshed["access_token"] not in ("", old_access) and refreshed["refresh_token"] not in ("", old_refresh)
    assert refreshed["scope"] == SCOPE
    flow.refused_bearer(old_access)
    assert not flow.active(old_access)
    assert flow.me(refreshed["access_token"]).json()["user"] == USER
    assert flow.active(refreshed["refresh_token"], hint="refresh_token")
    newest = flow.refresh(APP, refreshed["refresh_token"])  # the new one works, once
    assert newest.status_code == 200, newest.text
    assert flow.me(newest.json()["access_token"]).status_code == 200


def test_a_replayed_code_is_invalid_grant_and_ends_the_token_first_issued_from_it(flow: Flow) -> None:
    verifier, challenge = pkce_pair()
    code = flow.code(APP, challenge)
    first = flow.redeem(APP, code, verifier)
    assert first.status_code == 200, first.text
    access, refresh = text(first.json(), "access_token"), text(first.json(), "refresh_token")
    assert flow.me(access).json()["user"] == USER
    assert error_of(flow.redeem(APP, code, verifier), 400) == "invalid_grant"  # RFC 6749 §4.1.2: a replay ...
    flow.refused_bearer(access)  # ... revokes what the code issued
    assert not flow.active(access) and not flow.active(refresh, hint="refresh_token")
    assert error_of(flow.refresh(APP, refresh), 400) == "invalid_grant"
    assert flow.me(text(flow.issue(), "access_token")).status_code == 200  # another grant is untouched


def test_a_rotated_refresh_token_presented_again_is_invalid_grant_and_ends_the_newest_token_of_its_grant(flow: Flow) -> None:
    first = flow.issue()
    second = flow.refresh(APP, text(first, "refresh_token"))
    assert second.status_code == 200, second.text
    newest = flow.refresh(APP, text(second.json(), "refresh_token"))
    assert newest.status_code == 200, newest.text
    newest_access, newest_refresh = text(newest.json(), "access_token"), text(newest.json(), "refresh_token")
    assert flow.me(newest_access).json()["user"] == USER
    other = flow.issue()  # another grant of the same client and user
    assert error_of(flow.refresh(APP, text(first, "refresh_token")), 400) == "invalid_grant"  # RFC 9700 §4.14.2: reuse ...
    flow.refused_bearer(newest_access)  # ... ends the grant, the tokens refreshed since included
    assert not flow.active(newest_access) and not flow.active(newest_refresh, hint="refresh_token")
    assert error_of(flow.refresh(APP, newest_refresh), 400) == "invalid_grant"
    assert flow.me(text(other, "access_token")).status_code == 200


def test_requests_oauthlib_code_flow_with_pkce_and_either_secret_method(flow: Flow) -> None:
    token_url = f"{flow.base}/oauth/token"
    for include_client_id in (True, False):  # client_secret_post, then client_secret_basic
        with RequestsOAuthlibSession(APP.client_id, redirect_uri=APP.redirect_uri, scope=SCOPE.split(), pkce="S256") as session:
            url, _ = session.authorization_url(f"{flow.base}/oauth/authorize", user=USER)
            assert "code_challenge=" in url
            location = requests.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT).headers["Location"]
            token = session.fetch_token(token_url, authorization_response=location, client_secret=APP.secret, include_client_id=include_client_id, timeout=HTTP_TIMEOUT)
            assert token["token_type"] == "Bearer" and token["expires_in"] == ACCESS_SECONDS
            assert session.get(f"{flow.base}/api/me", timeout=HTTP_TIMEOUT).json()["user"] == USER
            old_refresh = token["refresh_token"]
            if include_client_id:
                refreshed = session.refresh_token(token_url, client_id=APP.client_id, client_secret=APP.secret, timeout=HTTP_TIMEOUT)
            else:
                refreshed = session.refresh_token(token_url, auth=APP.basic, timeout=HTTP_TIMEOUT)
            flow.server.never_logs(token["access_token"], old_refresh, refreshed["access_token"], refreshed["refresh_token"])
            assert refreshed["refresh_token"] not in ("", old_refresh)
        assert error_of(flow.refresh(APP, old_refresh)) == "invalid_grant"
        flow.refused_bearer(token["access_token"])


def test_a_public_client_uses_s256_pkce_and_no_secret(flow: Flow) -> None:
    with AuthlibSession(SPA.client_id, scope=SCOPE, redirect_uri=SPA.redirect_uri, code_challenge_method="S256", default_timeout=HTTP_TIMEOUT) as session:
        assert session.token_endpoint_auth_method == "none"
        verifier = secrets.token_urlsafe(48)
        url, state = session.create_authorization_url(f"{flow.base}/oauth/authorize", code_verifier=verifier, user=USER)
        location = requests.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT).headers["Location"]
        token = session.fetch_token(f"{flow.base}/oauth/token", authorization_response=location, state=state, code_verifier=verifier)
        assert session.get(f"{flow.base}/api/me").json() == {"user": USER, "client_id": SPA.client_id, "scope": SCOPE}
        refreshed = session.refresh_token(f"{flow.base}/oauth/token", refresh_token=token["refresh_token"])  # auth "none"
        flow.server.never_logs(verifier, token["access_token"], token["refresh_token"], refreshed["access_token"], refreshed["refresh_token"])
        assert refreshed["refresh_token"] != token["refresh_token"]
        revoked = session.revoke_token(f"{flow.base}/oauth/revoke", token=refreshed["access_token"], token_type_hint="access_token")
        assert revoked.status_code == 200, revoked.text
    flow.refused_bearer(refreshed["access_token"])
    _, challenge = pkce_pair()
    refusals = {  # a public client MUST use PKCE, and only S256: refused at once, back to the client
        "no challenge": flow.authorize(SPA),
        "plain": flow.authorize(SPA, code_challenge=challenge, code_challenge_method="plain"),
        "no method": flow.authorize(SPA, code_challenge=challenge),
        "malformed": flow.authorize(SPA, code_challenge="short", code_challenge_method="S256"),
    }
    for name, answer in refusals.items():
        assert redirect_params(answer, SPA)["error"] == "invalid_request", name
    plain = flow.authorize(APP, code_challenge=challenge, code_challenge_method="plain")  # confidential clients too
    assert redirect_params(plain, APP)["error"] == "invalid_request"
    machine = flow.token(SPA, grant_type="client_credentials")  # confidential clients only
    assert error_of(machine, 401) == "invalid_client", machine.text
    with_a_secret = flow.token(None, grant_type="client_credentials", client_id=SPA.client_id, client_secret="guess")
    assert error_of(with_a_secret) == "invalid_client"


def test_client_credentials_with_both_client_libraries(flow: Flow) -> None:
    with AuthlibSession(APP.client_id, APP.secret, default_timeout=HTTP_TIMEOUT) as session:  # client_secret_basic
        machine = session.fetch_token(f"{flow.base}/oauth/token", grant_type="client_credentials")
        assert session.get(f"{flow.base}/api/me").json() == {"user": None, "client_id": APP.client_id, "scope": ""}
    with RequestsOAuthlibSession(client=BackendApplicationClient(client_id=APP.client_id)) as backend:  # client_secret_post
        other = backend.fetch_token(
            f"{flow.base}/oauth/token", client_id=APP.client_id, client_secret=APP.secret, include_client_id=True, scope=["profile"], timeout=HTTP_TIMEOUT
        )
    flow.server.never_logs(machine["access_token"], other["access_token"])
    for token in (machine, other):
        assert token["token_type"] == "Bearer" and token["expires_in"] == ACCESS_SECONDS and "refresh_token" not in token
    assert machine["access_token"] != other["access_token"]
    described = flow.introspect(other["access_token"]).json()
    assert described["active"] is True and described["scope"] == "profile" and "sub" not in described


def test_revocation_of_access_and_refresh_tokens(flow: Flow) -> None:
    token = flow.issue()
    access, refresh = text(token, "access_token"), text(token, "refresh_token")
    assert flow.revoke(APP, access, "access_token").status_code == 200
    flow.refused_bearer(access)
    assert not flow.active(access)
    assert flow.active(refresh, hint="refresh_token")  # revoking an access token leaves its refresh token
    again = flow.refresh(APP, refresh)
    assert again.status_code == 200, again.text
    access, refresh = again.json()["access_token"], again.json()["refresh_token"]
    assert flow.revoke(APP, refresh, "no-such-hint").status_code == 200  # an unknown hint is ignored: found as a refresh token
    flow.refused_bearer(access)  # its access token went with it
    assert not flow.active(access) and not flow.active(refresh)
    assert error_of(flow.refresh(APP, refresh)) == "invalid_grant"
    unknown = flow.revoke(APP, "no-such-token", "refresh_token")
    assert unknown.status_code == 200 and unknown.text in ("", "{}")
    mine = text(flow.issue(), "access_token")
    assert error_of(flow.revoke(OTHER, mine), 400) == "invalid_grant"  # RFC 7009 §2.1: refused
    assert flow.me(mine).status_code == 200  # and not revoked
    anonymous = requests.post(f"{flow.base}/oauth/revoke", data={"token": mine}, timeout=HTTP_TIMEOUT)
    assert error_of(anonymous, 401) == "invalid_client"


def test_wrong_verifier_replayed_code_and_bad_clients_are_refused(flow: Flow) -> None:
    verifier, challenge = pkce_pair()
    code = flow.code(APP, challenge)
    assert error_of(flow.redeem(APP, code, pkce_pair()[0]), 400) == "invalid_grant"
    assert error_of(flow.redeem(APP, code, verifier)) == "invalid_grant"  # the failed attempt used the code up
    code = flow.code(APP, challenge)
    assert flow.redeem(APP, code, verifier).status_code == 200
    assert error_of(flow.redeem(APP, code, verifier), 400) == "invalid_grant"  # replayed
    assert error_of(flow.redeem(OTHER, flow.code(APP))) == "invalid_grant"  # another client's code
    stray = flow.redeem(APP, flow.code(APP), redirect_uri=OTHER.redirect_uri)
    assert error_of(stray) == "invalid_grant"  # another redirect URI than the authorization request's
    unnamed = flow.code(APP, redirect_uri="")  # the client's only URI, not named: a token request naming another fails
    assert error_of(flow.redeem(APP, unnamed, redirect_uri=OTHER.redirect_uri), 400) == "invalid_grant"
    assert flow.redeem(APP, flow.code(APP, redirect_uri=""), redirect_uri=APP.redirect_uri).status_code == 200  # naming it works
    unknown = flow.token(NOBODY, grant_type="client_credentials")
    assert error_of(unknown, 401) == "invalid_client" and unknown.headers["WWW-Authenticate"].startswith("Basic ")
    unknown_post = flow.token(NOBODY, basic=False, grant_type="client_credentials")
    assert unknown_post.status_code in (400, 401) and error_of(unknown_post) == "invalid_client"  # RFC 6749 §5.2 allows both
    wrong_secret = flow.token(APP._replace(secret="not-" + APP.secret), grant_type="client_credentials")
    assert error_of(wrong_secret, 401) == "invalid_client"
    both_ways = requests.post(  # RFC 6749 §2.3: one method per request
        f"{flow.base}/oauth/token", data={"grant_type": "client_credentials", "client_id": APP.client_id, "client_secret": APP.secret}, auth=APP.basic, timeout=HTTP_TIMEOUT
    )
    assert error_of(both_ways, 401) == "invalid_client"
    with AuthlibSession(NOBODY.client_id, NOBODY.secret, default_timeout=HTTP_TIMEOUT) as session, pytest.raises(OAuthError) as refused:
        session.fetch_token(f"{flow.base}/oauth/token", grant_type="client_credentials")
    assert refused.value.error == "invalid_client"


def test_the_authorization_endpoint_redirects_only_to_a_validated_uri(flow: Flow) -> None:
    for answer in (flow.authorize(NOBODY), flow.authorize(APP, redirect_uri="http://127.0.0.1/elsewhere")):
        assert error_of(answer, 400) == "invalid_request" and "Location" not in answer.headers  # never redirected
    no_user = redirect_params(flow.authorize(APP, user=None), APP)
    assert (no_user["error"], no_user["state"]) == ("access_denied", "st4te")
    assert redirect_params(flow.authorize(APP, response_type="token"), APP)["error"] == "unsupported_response_type"
    assert redirect_params(flow.authorize(APP, scope='bad"scope'), APP)["error"] == "invalid_scope"
    assert redirect_params(flow.authorize(APP, code_challenge="short", code_challenge_method="S256"), APP)["error"] == "invalid_request"
    assert error_of(requests.get(f"{flow.base}/nowhere", timeout=HTTP_TIMEOUT), 404) == "not_found"
    assert error_of(requests.get(f"{flow.base}/oauth/token", timeout=HTTP_TIMEOUT), 405) == "method_not_allowed"


def test_the_api_takes_a_bearer_token_from_the_authorization_header_only(flow: Flow) -> None:
    access = text(flow.issue(), "access_token")
    assert flow.me(access).status_code == 200
    for answer in (flow.me(), flow.me(Authorization=f"Basic {access}")):  # no bearer token: a challenge without an error (RFC 6750 §3.1)
        assert error_of(answer, 401) == "invalid_token"
        assert answer.headers["WWW-Authenticate"] == 'Bearer realm="api"'
    in_query = requests.get(f"{flow.base}/api/me", params={"access_token": access}, timeout=HTTP_TIMEOUT)
    assert error_of(in_query, 401) == "invalid_token"  # it would end up in access logs
    flow.refused_bearer("no-such-token")


def test_the_servers_answer_every_malformed_request_as_json(flow: Flow) -> None:
    garbled = requests.post(f"{flow.base}/oauth/token", data=b"grant_type=\xff", headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=HTTP_TIMEOUT)
    assert error_of(garbled) in ("invalid_request", "unsupported_grant_type")
    assert garbled.status_code == 400
    connection = http.client.HTTPConnection("127.0.0.1", urlsplit(flow.base).port, timeout=HTTP_TIMEOUT)
    try:  # a query requests would re-encode
        connection.request("GET", f"/oauth/authorize?response_type=code&client_id={APP.client_id}&user={USER}&state=%zz")
        with connection.getresponse() as raw:
            body = raw.read()
            assert raw.status in (302, 400) and b"Traceback" not in body
            if raw.status == 400:
                assert json.loads(body)["error"] == "invalid_request"
    finally:
        connection.close()


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_memcached_down_is_a_json_503_everywhere(own_memcached: MemcachedServer, name: str) -> None:
    with example_server(SCRIPTS[name], f"memcache://{own_memcached.address}?timeout=0.5") as server:
        flow = Flow(server)
        token = flow.issue()
        access, refresh = text(token, "access_token"), text(token, "refresh_token")
        verifier, challenge = pkce_pair()
        code = flow.code(APP, challenge)
        server.never_logs(verifier)
        own_memcached.kill()
        answers = {
            "client_credentials": flow.token(APP, grant_type="client_credentials"),
            "code": flow.redeem(APP, code, verifier),
            "refresh": flow.refresh(APP, refresh),
            "api": flow.me(access),
            "introspect": flow.introspect(access),
            "revoke": flow.revoke(APP, access),
        }
        for endpoint, answer in answers.items():  # never 401, never 200, never "not found"
            assert error_of(answer, 503) == "temporarily_unavailable", (endpoint, answer.text)
            assert "WWW-Authenticate" not in answer.headers, endpoint  # not "invalid token"
        # The client and redirect URI are known (clients live in the process): RFC 6749 §4.1.2.1
        # sends the failure back to the client.
        assert redirect_params(flow.authorize(APP, challenge=challenge), APP)["error"] == "temporarily_unavailable"
        assert flow.token(NOBODY, grant_type="client_credentials").status_code == 401  # still serving
        assert server.stop() == 0
    assert "token store unavailable" in server.stderr  # logged for the operator; running_example checks no secret is


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_three_servers_share_memcached_one_token_per_code_one_winner_per_refresh_and_grants_end_everywhere(memcached: MemcachedServer, name: str) -> None:
    url = f"memcache://{memcached.address}?prefix={name}-shared-{secrets.token_hex(6)}"
    script = SCRIPTS[name]
    with example_server(script, url) as first, example_server(script, url) as second, example_server(script, url) as third:
        servers = [Flow(first), Flow(second), Flow(third)]
        verifier, challenge = pkce_pair()
        issued = servers[1].redeem(APP, servers[0].code(APP, challenge), verifier)  # a code from one process, redeemed at another
        assert issued.status_code == 200, issued.text
        refreshed = servers[2].refresh(APP, issued.json()["refresh_token"])
        assert refreshed.status_code == 200, refreshed.text
        assert servers[1].me(refreshed.json()["access_token"]).status_code == 200
        assert error_of(servers[0].refresh(APP, issued.json()["refresh_token"])) == "invalid_grant"  # seen used everywhere
        for at in servers:  # the reuse ended the grant in every process
            at.refused_bearer(issued.json()["access_token"])
            at.refused_bearer(refreshed.json()["access_token"])

        def race(requests_at: list[Callable[[], requests.Response]]) -> list[requests.Response]:
            """Send the requests together, one per server, once all are ready."""
            barrier = threading.Barrier(len(requests_at))

            def send(request: Callable[[], requests.Response]) -> requests.Response:
                barrier.wait(timeout=HTTP_TIMEOUT)
                return request()

            with ThreadPoolExecutor(max_workers=len(requests_at)) as pool:
                return [future.result(timeout=3 * HTTP_TIMEOUT) for future in [pool.submit(send, request) for request in requests_at]]

        def at_most_one_winner_then_the_grant_is_over(answers: list[requests.Response], *earlier: str) -> None:
            """Of racers with one code or refresh token, at most one was issued tokens and every
            other got invalid_grant; the losers count as a replay, so the winner's tokens (and the
            grant's ``earlier`` access tokens) are refused afterwards, by every process."""
            winners = [answer.json() for answer in answers if answer.status_code == 200]
            assert len(winners) <= 1, [answer.text for answer in answers]
            assert all(error_of(answer, 400) == "invalid_grant" for answer in answers if answer.status_code != 200)
            for at in servers:
                for access_token in [*earlier, *(text(winner, "access_token") for winner in winners)]:
                    at.refused_bearer(access_token)
            for winner in winners:
                assert error_of(servers[0].refresh(APP, text(winner, "refresh_token")), 400) == "invalid_grant"

        for index in range(10):
            verifier, challenge = pkce_pair()
            code = servers[index % 3].code(APP, challenge)
            at_most_one_winner_then_the_grant_is_over(race([functools.partial(at.redeem, APP, code, verifier) for at in servers]))

        for index in range(10):
            token = servers[index % 3].issue()
            answers = race([functools.partial(at.refresh, APP, text(token, "refresh_token")) for at in servers])
            at_most_one_winner_then_the_grant_is_over(answers, text(token, "access_token"))


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_bad_options_are_a_usage_error(name: str) -> None:
    script = SCRIPTS[name]
    bad_client = subprocess.run([sys.executable, str(script), "--port", "0", "--client", "app:secret"], capture_output=True, text=True, timeout=60)
    assert bad_client.returncode == 2 and bad_client.stdout == ""
    assert bad_client.stderr.strip().splitlines()[-1].endswith("argument --client: --client takes ID:SECRET:REDIRECT_URI (SECRET may be empty)")
    bad_store = subprocess.run(
        [sys.executable, str(script), "--port", "0", "--store", "bogus://", "--client", APP.option], capture_output=True, text=True, timeout=60
    )
    assert bad_store.returncode == 2 and bad_store.stdout == ""
    assert bad_store.stderr.startswith(f"{script.stem}: bogus://: unknown scheme") and APP.secret not in bad_store.stderr


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_on_sqlite_tokens_and_clients_outlive_the_server(name: str, tmp_path: Path) -> None:
    """A server on a SQLite file stopped, and started again without any ``--client``: its client
    still authenticates (its secret hashed in the file), its tokens still work, a rotated refresh
    token is still reuse."""
    url = f"sqlite:///{tmp_path / 'durable.db'}"
    with example_server(SCRIPTS[name], url) as server:
        flow = Flow(server)
        token = flow.issue()
        access, refresh = text(token, "access_token"), text(token, "refresh_token")
        rotated = flow.refresh(APP, refresh)
        assert rotated.status_code == 200, rotated.text
        assert server.stop() == 0
    with running_example(SCRIPTS[name], ["--store", url], secrets=(APP.secret,)) as again:
        flow = Flow(again)
        new_access, new_refresh = text(rotated.json(), "access_token"), text(rotated.json(), "refresh_token")
        assert flow.me(new_access).status_code == 200
        flow.refused_bearer(access)  # rotated away before the restart
        assert error_of(flow.refresh(APP, refresh), 400) == "invalid_grant"  # reuse: the grant ends
        flow.refused_bearer(new_access)
        assert flow.token(APP, grant_type="client_credentials").status_code == 200  # the client, from the file
        assert again.stop() == 0
    stored = b"".join(path.read_bytes() for path in tmp_path.iterdir())  # the file, and its WAL if one is left
    assert stored and APP.secret.encode() not in stored
