"""The Authlib example server, started as a subprocess and driven over HTTP by real clients.

Authlib's own ``OAuth2Session`` (on requests) and requests-oauthlib's ``OAuth2Session`` run the
flows as client applications would; raw ``requests`` calls (:class:`Flow`) make the requests a
client library would refuse to make: a replayed code, a wrong verifier, an unknown client. Each
test runs on the in-memory store and on the session's memcached (its own prefix), against one
server per store for the module; the failure and race scenarios start their own. Every server
listens on 127.0.0.1 only, and every wait is bounded.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
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
from tests.memcached_server import MemcachedServer, free_port

EXAMPLE = EXAMPLES / "authlib_server.py"
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


APP = DemoApp("app", "s3cret-app", "http://127.0.0.1/cb")
OTHER = DemoApp("other", "s3cret-other", "http://127.0.0.1/other")
SPA = DemoApp("spa", "", "http://127.0.0.1/spa")  # a public client
NOBODY = DemoApp("nobody", "s3cret-nobody", "http://127.0.0.1/nobody")  # never registered


@contextlib.contextmanager
def authlib_example(store_url: str) -> Iterator[ExampleServer]:
    """The example on ``store_url`` with APP, OTHER and SPA registered (see running_example)."""
    arguments = ["--store", store_url, *(f"--client={app.option}" for app in (APP, OTHER, SPA))]
    with running_example(EXAMPLE, arguments, secrets=(APP.secret, OTHER.secret)) as server:
        yield server


def pkce_pair() -> tuple[str, str]:
    """A fresh PKCE code verifier (RFC 7636 §4.1) and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    return verifier, create_s256_code_challenge(verifier)


def error_of(answer: requests.Response) -> str:
    """The ``error`` of a JSON error answer, failing if it is anything else (HTML, a traceback)."""
    assert answer.headers["Content-Type"].startswith("application/json"), answer.text
    assert "Traceback" not in answer.text
    error: str = answer.json()["error"]
    return error


def redirect_params(answer: requests.Response, app: DemoApp) -> dict[str, str]:
    """The query of a 302 to ``app``'s redirect URI."""
    assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    assert location.startswith(app.redirect_uri + "?"), location
    return {name: values[0] for name, values in parse_qs(urlsplit(location).query).items()}


class Flow:
    """Raw HTTP requests to one example server, as a client library would make them (or would not)."""

    def __init__(self, base: str) -> None:
        self.base = base

    def authorize(self, app: DemoApp, *, challenge: str | None = None, user: str | None = USER, **extra: str) -> requests.Response:
        params = {"response_type": "code", "client_id": app.client_id, "redirect_uri": app.redirect_uri, "scope": SCOPE, "state": "st4te"}
        if challenge is not None:
            params.update(code_challenge=challenge, code_challenge_method="S256")
        if user is not None:
            params["user"] = user
        params.update(extra)
        return requests.get(f"{self.base}/oauth/authorize", params=params, allow_redirects=False, timeout=HTTP_TIMEOUT)

    def code(self, app: DemoApp, challenge: str | None = None) -> str:
        params = redirect_params(self.authorize(app, challenge=challenge), app)
        assert params["state"] == "st4te"
        return params["code"]

    def token(self, app: DemoApp | None, *, basic: bool = True, **form: str) -> requests.Response:
        """POST /oauth/token as ``app``: HTTP Basic, its secret in the form, or (public) its id alone."""
        auth = None
        if app is not None and app.secret and basic:
            auth = app.basic
        elif app is not None:
            form.update(client_id=app.client_id, **({"client_secret": app.secret} if app.secret else {}))
        return requests.post(f"{self.base}/oauth/token", data=form, auth=auth, timeout=HTTP_TIMEOUT)

    def redeem(self, app: DemoApp, code: str, verifier: str | None = None, *, basic: bool = True) -> requests.Response:
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": app.redirect_uri}
        if verifier is not None:
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
        return requests.post(f"{self.base}/oauth/introspect", data=form, auth=app.basic, timeout=HTTP_TIMEOUT)

    def active(self, token: str, app: DemoApp = APP, hint: str | None = None) -> bool:
        answer = self.introspect(token, app, hint)
        assert answer.status_code == 200, answer.text
        active: bool = answer.json()["active"]
        return active

    def me(self, access_token: str) -> requests.Response:
        return requests.get(f"{self.base}/api/me", headers={"Authorization": f"Bearer {access_token}"}, timeout=HTTP_TIMEOUT)

    def refused_bearer(self, access_token: str) -> None:
        """/api/me answers 401 invalid_token with a Bearer challenge."""
        answer = self.me(access_token)
        assert answer.status_code == 401 and error_of(answer) == "invalid_token", answer.text
        assert answer.headers["WWW-Authenticate"].startswith("Bearer "), answer.headers


def text(token: dict[str, object], field: str) -> str:
    value = token[field]
    assert isinstance(value, str) and value, token
    return value


@pytest.fixture(scope="module", params=STORES)
def server(request: pytest.FixtureRequest) -> Iterator[ExampleServer]:
    """One example server per store for the module: in memory, and on the session's memcached."""
    with authlib_example(store_url_for(request)) as running:
        yield running


@pytest.fixture
def flow(server: ExampleServer) -> Flow:
    return Flow(server.base)


pytestmark = pytest.mark.usefixtures("plain_http_to_loopback")


def test_authlib_client_code_flow_with_pkce_then_the_api_and_introspection(flow: Flow) -> None:
    before = int(time.time())
    with AuthlibSession(APP.client_id, APP.secret, scope=SCOPE, redirect_uri=APP.redirect_uri, code_challenge_method="S256", default_timeout=HTTP_TIMEOUT) as session:
        verifier = secrets.token_urlsafe(48)
        url, state = session.create_authorization_url(f"{flow.base}/oauth/authorize", code_verifier=verifier, user=USER)
        assert "code_challenge=" in url
        location = requests.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT).headers["Location"]
        token = session.fetch_token(f"{flow.base}/oauth/token", authorization_response=location, state=state, code_verifier=verifier)
        assert (token["token_type"], token["expires_in"], token["scope"]) == ("Bearer", ACCESS_SECONDS, SCOPE)
        me = session.get(f"{flow.base}/api/me")
        assert me.status_code == 200 and me.json() == {"user": USER, "client_id": APP.client_id, "scope": SCOPE}
        described = session.introspect_token(f"{flow.base}/oauth/introspect", token=token["access_token"]).json()
        refresh = session.introspect_token(f"{flow.base}/oauth/introspect", token=token["refresh_token"], token_type_hint="refresh_token").json()
    after = int(time.time())
    assert described.keys() == {"active", "scope", "client_id", "token_type", "exp", "iat", "sub"}
    assert (described["active"], described["scope"], described["client_id"], described["token_type"], described["sub"]) == (True, SCOPE, APP.client_id, "Bearer", USER)
    assert before <= described["iat"] <= after and described["exp"] - described["iat"] == ACCESS_SECONDS
    assert refresh["active"] is True and refresh["exp"] - refresh["iat"] == REFRESH_SECONDS  # the refresh token's own lifetime
    assert not flow.active(text(token, "access_token"), OTHER)  # another client's token: active false


def test_authlib_client_refresh_rotates_and_revokes_the_old_tokens(flow: Flow) -> None:
    first = flow.issue()
    old_access, old_refresh = text(first, "access_token"), text(first, "refresh_token")
    with AuthlibSession(APP.client_id, APP.secret, token=first, default_timeout=HTTP_TIMEOUT) as session:
        refreshed = session.refresh_token(f"{flow.base}/oauth/token", refresh_token=old_refresh)
    assert refreshed["access_token"] not in ("", old_access) and refreshed["refresh_token"] not in ("", old_refresh)
    assert refreshed["scope"] == SCOPE
    replayed = flow.refresh(APP, old_refresh)
    assert replayed.status_code == 400 and error_of(replayed) == "invalid_grant", replayed.text
    flow.refused_bearer(old_access)
    assert not flow.active(old_access) and not flow.active(old_refresh, hint="refresh_token")
    assert flow.me(refreshed["access_token"]).json()["user"] == USER
    assert flow.refresh(APP, refreshed["refresh_token"]).status_code == 200  # the new one works, once


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
            assert refreshed["refresh_token"] not in ("", old_refresh)
        assert error_of(flow.refresh(APP, old_refresh)) == "invalid_grant"
        flow.refused_bearer(token["access_token"])


def test_a_public_client_uses_pkce_and_no_secret(flow: Flow) -> None:
    with AuthlibSession(SPA.client_id, scope=SCOPE, redirect_uri=SPA.redirect_uri, code_challenge_method="S256", default_timeout=HTTP_TIMEOUT) as session:
        assert session.token_endpoint_auth_method == "none"
        verifier = secrets.token_urlsafe(48)
        url, state = session.create_authorization_url(f"{flow.base}/oauth/authorize", code_verifier=verifier, user=USER)
        location = requests.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT).headers["Location"]
        token = session.fetch_token(f"{flow.base}/oauth/token", authorization_response=location, state=state, code_verifier=verifier)
        assert session.get(f"{flow.base}/api/me").json() == {"user": USER, "client_id": SPA.client_id, "scope": SCOPE}
        refreshed = session.refresh_token(f"{flow.base}/oauth/token", refresh_token=token["refresh_token"])  # auth "none"
        assert refreshed["refresh_token"] != token["refresh_token"]
        revoked = session.revoke_token(f"{flow.base}/oauth/revoke", token=refreshed["access_token"], token_type_hint="access_token")
        assert revoked.status_code == 200, revoked.text
    flow.refused_bearer(refreshed["access_token"])
    without_pkce = flow.redeem(SPA, flow.code(SPA))  # a public client MUST use PKCE
    assert without_pkce.status_code == 400 and error_of(without_pkce) == "invalid_request", without_pkce.text
    machine = flow.token(SPA, grant_type="client_credentials")  # confidential clients only
    assert machine.status_code == 401 and error_of(machine) == "invalid_client", machine.text
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
    assert flow.revoke(APP, refresh).status_code == 200  # no hint: found as a refresh token
    flow.refused_bearer(access)  # its access token went with it
    assert not flow.active(access) and not flow.active(refresh)
    assert error_of(flow.refresh(APP, refresh)) == "invalid_grant"
    unknown = flow.revoke(APP, "no-such-token", "refresh_token")
    assert unknown.status_code == 200 and unknown.json() == {}
    mine = text(flow.issue(), "access_token")
    theirs = flow.revoke(OTHER, mine)
    assert theirs.status_code == 400 and error_of(theirs) == "invalid_grant"  # Authlib's answer: refused
    assert flow.me(mine).status_code == 200  # and not revoked
    anonymous = requests.post(f"{flow.base}/oauth/revoke", data={"token": mine}, timeout=HTTP_TIMEOUT)
    assert anonymous.status_code == 401 and error_of(anonymous) == "invalid_client"


def test_wrong_verifier_replayed_code_and_bad_clients_are_refused(flow: Flow) -> None:
    verifier, challenge = pkce_pair()
    code = flow.code(APP, challenge)
    wrong = flow.redeem(APP, code, pkce_pair()[0])
    assert wrong.status_code == 400 and error_of(wrong) == "invalid_grant", wrong.text
    assert error_of(flow.redeem(APP, code, verifier)) == "invalid_grant"  # the code was used up
    code = flow.code(APP, challenge)
    assert flow.redeem(APP, code, verifier).status_code == 200
    replayed = flow.redeem(APP, code, verifier)
    assert replayed.status_code == 400 and error_of(replayed) == "invalid_grant"
    assert error_of(flow.redeem(OTHER, flow.code(APP))) == "invalid_grant"  # another client's code
    stray = flow.token(APP, grant_type="authorization_code", code=flow.code(APP), redirect_uri=OTHER.redirect_uri)
    assert error_of(stray) == "invalid_grant"  # another redirect URI than the authorization request's
    unknown = flow.token(NOBODY, grant_type="client_credentials")
    assert unknown.status_code == 401 and error_of(unknown) == "invalid_client"
    assert unknown.headers["WWW-Authenticate"].startswith("Basic ")
    unknown_post = flow.token(NOBODY, basic=False, grant_type="client_credentials")
    assert unknown_post.status_code == 400 and error_of(unknown_post) == "invalid_client"
    wrong_secret = flow.token(APP._replace(secret="not-" + APP.secret), grant_type="client_credentials")
    assert wrong_secret.status_code == 401 and error_of(wrong_secret) == "invalid_client"
    with AuthlibSession(NOBODY.client_id, NOBODY.secret, default_timeout=HTTP_TIMEOUT) as session, pytest.raises(OAuthError) as refused:
        session.fetch_token(f"{flow.base}/oauth/token", grant_type="client_credentials")
    assert refused.value.error == "invalid_client"


def test_the_authorization_endpoint_answers_what_it_cannot_redirect_as_json(flow: Flow) -> None:
    unknown = flow.authorize(NOBODY)
    assert unknown.status_code == 400 and error_of(unknown) == "invalid_client"
    stray = flow.authorize(APP, redirect_uri="http://127.0.0.1/elsewhere")  # never redirected there
    assert stray.status_code == 400 and error_of(stray) == "invalid_request"
    assert redirect_params(flow.authorize(APP, user=None), APP) == {"error": "access_denied", "error_description": "The resource owner or authorization server denied the request", "state": "st4te"}
    assert redirect_params(flow.authorize(APP, response_type="token"), APP)["error"] == "unsupported_response_type"
    assert redirect_params(flow.authorize(APP, scope='bad"scope'), APP)["error"] == "invalid_scope"
    assert redirect_params(flow.authorize(APP, code_challenge="short", code_challenge_method="S256"), APP)["error"] == "invalid_request"
    for answer in (requests.get(f"{flow.base}/nowhere", timeout=HTTP_TIMEOUT), requests.get(f"{flow.base}/oauth/token", timeout=HTTP_TIMEOUT)):
        assert answer.status_code in (404, 405) and error_of(answer) in ("not_found", "method_not_allowed")
    assert flow.me("").status_code == 401 and flow.me("no-such-token").status_code == 401
    missing = requests.get(f"{flow.base}/api/me", timeout=HTTP_TIMEOUT)
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].lower().startswith("bearer ")


def test_memcached_down_is_a_json_503_everywhere(own_memcached: MemcachedServer) -> None:
    with authlib_example(f"memcache://{own_memcached.address}?timeout=0.5") as server:
        flow = Flow(server.base)
        token = flow.issue()
        access, refresh = text(token, "access_token"), text(token, "refresh_token")
        verifier, challenge = pkce_pair()
        code = flow.code(APP, challenge)
        own_memcached.kill()
        answers = {
            "client_credentials": flow.token(APP, grant_type="client_credentials"),
            "code": flow.redeem(APP, code, verifier),
            "refresh": flow.refresh(APP, refresh),
            "api": flow.me(access),
            "introspect": flow.introspect(access),
            "revoke": flow.revoke(APP, access),
        }
        for name, answer in answers.items():
            assert (answer.status_code, error_of(answer)) == (503, "temporarily_unavailable"), (name, answer.text)
            assert "WWW-Authenticate" not in answer.headers, name  # not "invalid token"
        # The client and redirect URI are known (clients live in the process): RFC 6749 §4.1.2.1
        # sends the failure back to the client.
        assert redirect_params(flow.authorize(APP), APP)["error"] == "temporarily_unavailable"
        assert flow.token(NOBODY, grant_type="client_credentials").status_code == 401  # still serving
        assert server.stop() == 0
    assert "token store unavailable" in server.stderr  # logged for the operator, with no secret in it
    for secret in (APP.secret, access, refresh, code, verifier):
        assert secret not in server.stderr


def test_three_servers_share_memcached_and_each_code_gives_one_token(memcached: MemcachedServer) -> None:
    url = f"memcache://{memcached.address}?prefix=authlib-shared-{secrets.token_hex(6)}"
    with authlib_example(url) as first, authlib_example(url) as second, authlib_example(url) as third:
        servers = [Flow(first.base), Flow(second.base), Flow(third.base)]
        issued = servers[0].issue()
        refreshed = servers[1].refresh(APP, text(issued, "refresh_token"))
        assert refreshed.status_code == 200, refreshed.text
        assert error_of(servers[2].refresh(APP, text(issued, "refresh_token"))) == "invalid_grant"  # the third sees it used
        servers[2].refused_bearer(text(issued, "access_token"))
        assert servers[0].me(refreshed.json()["access_token"]).status_code == 200

        pairs = [pkce_pair() for _ in range(20)]
        codes = [(servers[index % 3].code(APP, challenge), verifier) for index, (verifier, challenge) in enumerate(pairs)]
        tokens: list[str] = []
        refusals: list[str] = []
        lock = threading.Lock()

        def race(code: str, verifier: str, barrier: threading.Barrier, at: Flow) -> None:
            barrier.wait(timeout=HTTP_TIMEOUT)  # the three requests leave together
            answer = at.redeem(APP, code, verifier)
            with lock:
                if answer.status_code == 200:
                    tokens.append(answer.json()["access_token"])
                else:
                    refusals.append(error_of(answer))

        with ThreadPoolExecutor(max_workers=3) as pool:
            for code, verifier in codes:
                barrier = threading.Barrier(3)
                for future in [pool.submit(race, code, verifier, barrier, at) for at in servers]:
                    future.result(timeout=3 * HTTP_TIMEOUT)
    assert len(tokens) == len(set(tokens)) == len(codes)
    assert refusals == ["invalid_grant"] * (2 * len(codes))


def test_a_bad_client_option_is_a_usage_error() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "--port", str(free_port()), "--client", "app:secret"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines()[-1].endswith("argument --client: --client takes ID:SECRET:REDIRECT_URI (SECRET may be empty)")
