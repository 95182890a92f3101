"""The python-oauth2 example server, started as a subprocess and driven over HTTP by a real client.

requests-oauthlib's ``OAuth2Session`` runs the flows as a client application would; raw
``requests`` calls make the requests a client library would refuse to make (a replayed code, a
rotated refresh token presented again, an unknown client). A replay or reuse ends the whole grant,
so after one the tests check that the grant's tokens are refused at the demo's ``/api/me``. Every
server listens on 127.0.0.1 only, and every wait is bounded.
"""

from __future__ import annotations

import contextlib
import queue
import secrets
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from oauthlib.oauth2 import BackendApplicationClient, LegacyApplicationClient
from requests_oauthlib import OAuth2Session

from tests.example_servers import EXAMPLES, HTTP_TIMEOUT, STOP_TIMEOUT, STORES, ExampleServer, running_example, store_url_for
from tests.memcached_server import MemcachedServer, free_port

EXAMPLE = EXAMPLES / "python_oauth2_server.py"
CLIENT_ID, SECRET, REDIRECT_URI = "app", "s3cret-app", "http://127.0.0.1/cb"
USER, PASSWORD = "alice", "pa55-alice"
REFUSED_CODE = ("invalid_request", "invalid_grant")
"""What python-oauth2 may answer a code or refresh token that is gone (RFC 6749 says invalid_grant;
python-oauth2 says invalid_request for one it does not find). A replayed code and a reused refresh
token are always invalid_grant."""


@contextlib.contextmanager
def example_server(store_url: str, *options: str) -> Iterator[ExampleServer]:
    """The example on ``store_url`` with CLIENT_ID and USER registered (see running_example)."""
    client = f"{CLIENT_ID}:{SECRET}:{REDIRECT_URI}"
    arguments = ["--store", store_url, "--client", client, "--user", f"{USER}:{PASSWORD}", *options]
    with running_example(EXAMPLE, arguments, secrets=(SECRET, PASSWORD)) as server:
        yield server


pytestmark = pytest.mark.usefixtures("plain_http_to_loopback")


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest) -> str:
    """Each test runs on the in-memory store and on the session's memcached (its own prefix)."""
    return store_url_for(request)


def _code(base: str) -> str:
    """Ask /authorize for a code for USER (the demo approves at once); return the code."""
    url, _ = OAuth2Session(CLIENT_ID, redirect_uri=REDIRECT_URI).authorization_url(f"{base}/authorize", user=USER)
    answer = requests.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert answer.status_code == 302, answer.text
    return parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]


def _post_token(base: str, **form: str) -> requests.Response:
    return requests.post(f"{base}/token", data=form, timeout=HTTP_TIMEOUT)


def _redeem(base: str, code: str) -> requests.Response:
    return _post_token(base, grant_type="authorization_code", code=code, redirect_uri=REDIRECT_URI, client_id=CLIENT_ID, client_secret=SECRET)


def _refresh(base: str, refresh_token: str) -> requests.Response:
    return _post_token(base, grant_type="refresh_token", refresh_token=refresh_token, client_id=CLIENT_ID, client_secret=SECRET)


def _me(base: str, access_token: str) -> requests.Response:
    return requests.get(f"{base}/api/me", headers={"Authorization": f"Bearer {access_token}"}, timeout=HTTP_TIMEOUT)


def _refused_bearer(base: str, access_token: str) -> None:
    """/api/me answers 401 invalid_token, with a Bearer challenge naming the error."""
    answer = _me(base, access_token)
    assert answer.status_code == 401 and _error(answer) == "invalid_token", answer.text
    assert answer.headers["WWW-Authenticate"] == 'Bearer realm="api", error="invalid_token"'


def _error(answer: requests.Response) -> str:
    """The ``error`` of a JSON error answer (failing if the answer is anything else)."""
    assert answer.headers["Content-Type"].startswith("application/json"), answer.text
    error: str = answer.json()["error"]
    return error


def _password_token(base: str) -> dict[str, object]:
    session = OAuth2Session(client=LegacyApplicationClient(client_id=CLIENT_ID))
    token: dict[str, object] = session.fetch_token(
        f"{base}/token", username=USER, password=PASSWORD, client_id=CLIENT_ID, client_secret=SECRET, include_client_id=True
    )
    return token


def test_authorization_code_then_refresh_with_a_new_refresh_token(store_url: str) -> None:
    with example_server(store_url) as server:
        session = OAuth2Session(CLIENT_ID, redirect_uri=REDIRECT_URI)
        url, _ = session.authorization_url(f"{server.base}/authorize", user=USER)
        location = requests.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT).headers["Location"]
        token = session.fetch_token(f"{server.base}/token", authorization_response=location, client_secret=SECRET, include_client_id=True)
        assert token["access_token"] and token["refresh_token"]
        assert (token["token_type"], token["expires_in"]) == ("Bearer", 3600)
        assert _me(server.base, token["access_token"]).json() == {"user": USER, "client_id": CLIENT_ID, "scope": ""}
        first_refresh = token["refresh_token"]
        refreshed = session.refresh_token(f"{server.base}/token", client_id=CLIENT_ID, client_secret=SECRET)
        assert refreshed["access_token"] not in ("", token["access_token"])
        assert refreshed["refresh_token"] not in (None, "", first_refresh)
        _refused_bearer(server.base, token["access_token"])  # rotation revoked the old pair
        assert _me(server.base, refreshed["access_token"]).status_code == 200
        newest = _refresh(server.base, refreshed["refresh_token"])  # the new one works
        assert newest.status_code == 200 and _me(server.base, newest.json()["access_token"]).status_code == 200, newest.text


def test_a_rotated_refresh_token_presented_again_is_invalid_grant_and_ends_the_newest_token(store_url: str) -> None:
    with example_server(store_url) as server:
        first = _redeem(server.base, _code(server.base)).json()
        second = _refresh(server.base, first["refresh_token"]).json()
        newest = _refresh(server.base, second["refresh_token"])
        assert newest.status_code == 200, newest.text
        assert _me(server.base, newest.json()["access_token"]).status_code == 200
        other = _redeem(server.base, _code(server.base)).json()  # another grant of the same client and user
        reused = _refresh(server.base, first["refresh_token"])
        assert reused.status_code == 400 and _error(reused) == "invalid_grant", reused.text  # RFC 9700 §4.14.2: reuse ...
        _refused_bearer(server.base, newest.json()["access_token"])  # ... ends the grant, the newest token included
        gone = _refresh(server.base, newest.json()["refresh_token"])
        assert gone.status_code == 400 and _error(gone) in REFUSED_CODE
        assert _me(server.base, other["access_token"]).status_code == 200


def test_client_credentials_and_password_grants(store_url: str) -> None:
    with example_server(store_url) as server:
        backend = OAuth2Session(client=BackendApplicationClient(client_id=CLIENT_ID))
        machine = backend.fetch_token(f"{server.base}/token", client_id=CLIENT_ID, client_secret=SECRET, include_client_id=True)
        assert machine["token_type"] == "Bearer" and machine["access_token"]
        person = _password_token(server.base)
        assert person["token_type"] == "Bearer" and person["expires_in"] == 3600 and person["refresh_token"]
        assert person["access_token"] not in ("", machine["access_token"])
        wrong = _post_token(server.base, grant_type="password", username=USER, password="wrong", client_id=CLIENT_ID, client_secret=SECRET)
        assert wrong.status_code == 401 and _error(wrong) == "invalid_client"  # python-oauth2 answers bad owner credentials so


def test_unique_token_hands_out_the_users_live_token_again(store_url: str, tmp_path: Path) -> None:
    if not store_url.startswith("memory:"):  # a shared store keeps a token to hand out again only sealed under a reissue key
        refused = subprocess.run([sys.executable, str(EXAMPLE), "--store", store_url, "--unique-token", "--port", "0"], capture_output=True, text=True, timeout=60)
        assert refused.returncode == 2 and "reissue_key_file" in refused.stderr, refused.stderr
        key_file = tmp_path / "reissue.key"
        key_file.write_bytes(secrets.token_bytes(32))
        store_url += f"{'&' if '?' in store_url else '?'}reissue_key_file={key_file}"
    with example_server(store_url, "--unique-token") as server:
        first, second = _password_token(server.base), _password_token(server.base)
        assert first["access_token"] == second["access_token"]
        assert first["refresh_token"] == second["refresh_token"]
    with example_server(store_url) as server:  # without the option, a new token every time
        assert _password_token(server.base)["access_token"] != _password_token(server.base)["access_token"]


def test_a_replayed_code_is_invalid_grant_and_ends_the_token_first_issued_from_it(store_url: str) -> None:
    with example_server(store_url) as server:
        code = _code(server.base)
        issued = _redeem(server.base, code)
        assert issued.status_code == 200 and issued.json()["access_token"], issued.text
        assert _me(server.base, issued.json()["access_token"]).status_code == 200
        replayed = _redeem(server.base, code)
        assert replayed.status_code == 400 and _error(replayed) == "invalid_grant", replayed.text  # RFC 6749 §4.1.2: a replay ...
        _refused_bearer(server.base, issued.json()["access_token"])  # ... revokes what the code issued
        gone = _refresh(server.base, issued.json()["refresh_token"])
        assert gone.status_code == 400 and _error(gone) in REFUSED_CODE
        assert _me(server.base, _redeem(server.base, _code(server.base)).json()["access_token"]).status_code == 200  # other grants live


def test_an_unknown_client_and_a_missing_bearer_token_are_refused(store_url: str) -> None:
    with example_server(store_url) as server:
        unknown = _post_token(server.base, grant_type="client_credentials", client_id="nobody", client_secret=SECRET)
        assert unknown.status_code == 400 and _error(unknown) == "invalid_client"
        wrong_secret = _post_token(server.base, grant_type="client_credentials", client_id=CLIENT_ID, client_secret="not-" + SECRET)
        assert wrong_secret.status_code == 400 and _error(wrong_secret) == "invalid_client"
        for headers in ({}, {"Authorization": "Basic abc"}):  # no bearer token: a challenge without an error (RFC 6750 §3.1)
            missing = requests.get(f"{server.base}/api/me", headers=headers, timeout=HTTP_TIMEOUT)
            assert missing.status_code == 401 and _error(missing) == "invalid_token"
            assert missing.headers["WWW-Authenticate"] == 'Bearer realm="api"'
        _refused_bearer(server.base, "no-such-token")


def test_memcached_down_is_a_json_server_error_never_a_traceback(own_memcached: MemcachedServer) -> None:
    with example_server(f"memcache://{own_memcached.address}?timeout=0.5") as server:
        code = _code(server.base)
        issued = _redeem(server.base, code)
        assert issued.status_code == 200, issued.text
        access_token, refresh_token = issued.json()["access_token"], issued.json()["refresh_token"]
        own_memcached.kill()
        token = _post_token(server.base, grant_type="password", username=USER, password=PASSWORD, client_id=CLIENT_ID, client_secret=SECRET)
        assert token.status_code in (400, 500) and _error(token) == "server_error"
        refresh = _refresh(server.base, refresh_token)
        assert refresh.status_code in (400, 500) and _error(refresh) == "server_error"  # not "no such token"
        api = _me(server.base, access_token)
        assert api.status_code == 503 and _error(api) == "temporarily_unavailable" and "WWW-Authenticate" not in api.headers
        authorize = requests.get(
            f"{server.base}/authorize",
            params={"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI, "user": USER},
            allow_redirects=False,
            timeout=HTTP_TIMEOUT,
        )
        # The client is known (clients live in the process), so python-oauth2 sends the error back
        # to its redirect URI (RFC 6749 4.1.2.1) rather than answering 500 itself.
        assert authorize.status_code == 302, authorize.text
        assert authorize.headers["Location"].startswith(REDIRECT_URI + "?")
        assert parse_qs(urlsplit(authorize.headers["Location"]).query)["error"] == ["server_error"]
        for answer in (token, refresh, api, authorize):
            assert "Traceback" not in answer.text and "<html" not in answer.text.lower()
        assert server.process.poll() is None  # still serving
        assert _post_token(server.base, grant_type="client_credentials", client_id="nobody", client_secret=SECRET).status_code == 400
        assert server.stop() == 0
    # python-oauth2 logs the store's failures with their tracebacks (for the operator, not the
    # client): they name the error but no secret, password or token.
    assert "StoreUnavailableError" in server.stderr
    for secret in (SECRET, PASSWORD, access_token, refresh_token, code):
        assert secret not in server.stderr


def test_two_servers_share_one_memcached_and_each_code_gives_at_most_one_token(memcached: MemcachedServer) -> None:
    url = f"memcache://{memcached.address}?prefix=shared-{secrets.token_hex(6)}"
    with example_server(url) as first, example_server(url) as second:
        issued = _redeem(first.base, _code(first.base)).json()
        refreshed = _refresh(second.base, issued["refresh_token"])
        assert refreshed.status_code == 200 and refreshed.json()["refresh_token"] != issued["refresh_token"], refreshed.text
        assert _me(first.base, refreshed.json()["access_token"]).status_code == 200
        again = _refresh(first.base, issued["refresh_token"])  # the first server sees it was used ...
        assert again.status_code == 400 and _error(again) == "invalid_grant"
        for server in (first, second):  # ... and the reuse ended the grant for both
            _refused_bearer(server.base, refreshed.json()["access_token"])

        codes = [_code(first.base if index % 2 else second.base) for index in range(30)]
        tokens: list[str] = []
        refusals: list[str] = []
        lock = threading.Lock()

        def race(code: str, barrier: threading.Barrier, base: str) -> None:
            barrier.wait(timeout=HTTP_TIMEOUT)  # both requests leave together
            answer = _redeem(base, code)
            with lock:
                if answer.status_code == 200:
                    tokens.append(answer.json()["access_token"])
                else:
                    assert answer.status_code == 400, answer.text
                    refusals.append(_error(answer))

        with ThreadPoolExecutor(max_workers=2) as pool:
            for code in codes:
                barrier = threading.Barrier(2)
                for future in [pool.submit(race, code, barrier, server.base) for server in (first, second)]:
                    future.result(timeout=3 * HTTP_TIMEOUT)
        # The loser of each race is a replay, so the grant ends: a token its winner got is refused
        # everywhere, whichever of the two came first (the winner's save may even be refused).
        for token in tokens:
            for server in (first, second):
                _refused_bearer(server.base, token)
    assert len(tokens) == len(set(tokens)) <= len(codes)
    assert len(refusals) == 2 * len(codes) - len(tokens) and set(refusals) == {"invalid_grant"}, refusals


def test_a_bad_client_option_is_a_usage_error() -> None:
    for bad in ("no-colons", "app:secret", ":secret:http://127.0.0.1/cb"):
        result = subprocess.run(
            [sys.executable, str(EXAMPLE), "--port", str(free_port()), "--client", bad], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 2, bad
        assert result.stderr.strip().splitlines()[-1].endswith("argument --client: --client takes ID:SECRET:REDIRECT_URI (SECRET may be empty)")
        assert result.stdout == ""


def test_a_request_python_oauth2_cannot_parse_is_a_json_server_error() -> None:
    """python-oauth2 decodes form bodies outside its error handling: a non-UTF-8 body would escape
    its application as an exception; the example answers it as JSON."""
    with example_server("memory://") as server:
        answer = requests.post(
            f"{server.base}/token", data=b"grant_type=\xff", headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=HTTP_TIMEOUT
        )
        assert answer.status_code == 500 and _error(answer) == "server_error"
        assert "Traceback" not in answer.text
        assert _post_token(server.base, grant_type="client_credentials", client_id=CLIENT_ID, client_secret=SECRET).status_code == 200


def test_a_sigterm_during_a_request_stops_the_server() -> None:
    """A SIGTERM while a request is inside the application ends the server (status 0), after that
    request is answered.

    A listener that never answers stands in for memcached: once it has received the store's
    command, the request is inside python-oauth2's application, deterministically. The store's
    short timeout then fails the request, which must still get its JSON answer.
    """
    with socket.create_server(("127.0.0.1", 0)) as fake_memcached:
        fake_memcached.settimeout(HTTP_TIMEOUT)
        fake_port = fake_memcached.getsockname()[1]
        with example_server(f"memcache://127.0.0.1:{fake_port}?timeout=2") as server:
            answers: queue.Queue[requests.Response | BaseException] = queue.Queue()

            def request() -> None:
                try:
                    answers.put(_post_token(server.base, grant_type="client_credentials", client_id=CLIENT_ID, client_secret=SECRET))
                except requests.RequestException as error:  # kept for the failure message below
                    answers.put(error)

            client = threading.Thread(target=request, daemon=True)
            client.start()
            connection, _ = fake_memcached.accept()
            with connection:
                connection.settimeout(HTTP_TIMEOUT)
                assert connection.recv(1), "the store sent nothing"
                server.process.send_signal(signal.SIGTERM)
                try:
                    status: int | None = server.process.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    status = None
            client.join(timeout=2 * HTTP_TIMEOUT)
            answer = answers.get(timeout=HTTP_TIMEOUT)
            assert status == 0, f"still running after SIGTERM; the client got {answer!r}: {getattr(answer, 'text', '')!r}; stderr: {server.stderr}"
            assert isinstance(answer, requests.Response), f"the request in hand was dropped: {answer!r}"
            # python-oauth2 answers a failing store as server_error, with its own 400 (see above)
            assert answer.status_code in (400, 500) and _error(answer) == "server_error", answer.text
