"""The python-oauth2 example server, started as a subprocess and driven over HTTP by a real client.

requests-oauthlib's ``OAuth2Session`` runs the flows as a client application would; raw
``requests`` calls make the requests a client library would refuse to make (a replayed code, an
unknown client). Every server listens on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from oauthlib.oauth2 import BackendApplicationClient, LegacyApplicationClient
from requests_oauthlib import OAuth2Session

from tests.memcached_server import MemcachedServer, free_port

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "python_oauth2_server.py"
CLIENT_ID, SECRET, REDIRECT_URI = "app", "s3cret-app", "http://127.0.0.1/cb"
USER, PASSWORD = "alice", "pa55-alice"
START_TIMEOUT = 30.0


class ExampleServer:
    """A running example server: its base URL, and what it wrote to standard error once stopped."""

    def __init__(self, process: subprocess.Popen[str], base: str) -> None:
        self.process = process
        self.base = base
        self.stderr = ""

    def stop(self) -> int:
        """Stop it with SIGTERM; return its exit status."""
        self.process.send_signal(signal.SIGTERM)
        _, self.stderr = self.process.communicate(timeout=15)
        return self.process.returncode


@contextlib.contextmanager
def example_server(store_url: str, *options: str) -> Iterator[ExampleServer]:
    """Start the example on a free port; yield once it prints that it listens; stop it after,
    checking that it exits cleanly."""
    port = free_port()
    command = [sys.executable, str(EXAMPLE), "--store", store_url, "--port", str(port), "--client", f"{CLIENT_ID}:{SECRET}:{REDIRECT_URI}", "--user", f"{USER}:{PASSWORD}", *options]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    # A thread reads standard output, so the wait below is bounded and the pipe never fills.
    def read() -> None:
        for output in process.stdout or ():
            lines.put(output)

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT
    line = ""
    while not line.startswith("listening on"):
        try:
            line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            process.kill()
            raise AssertionError(f"the example did not start: {process.communicate()[1]}") from None
    assert line.strip() == f"listening on http://127.0.0.1:{port}"
    server = ExampleServer(process, f"http://127.0.0.1:{port}")
    try:
        yield server
    finally:
        if process.poll() is None:
            assert server.stop() == 0, server.stderr


@pytest.fixture(params=["memory", "memcached"])
def store_url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    memcached: MemcachedServer = request.getfixturevalue("memcached")
    return f"memcache://{memcached.address}?prefix=e2e-{secrets.token_hex(6)}"


@pytest.fixture(autouse=True)
def _loopback_http(monkeypatch: pytest.MonkeyPatch) -> None:
    # requests-oauthlib refuses plain HTTP; these servers are on loopback only.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


def _code(base: str, session: OAuth2Session | None = None) -> str:
    """Ask /authorize for a code for USER (the demo approves at once); return the code."""
    session = session or OAuth2Session(CLIENT_ID, redirect_uri=REDIRECT_URI)
    url, _ = session.authorization_url(f"{base}/authorize", user=USER)
    answer = requests.get(url, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    return parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]


def _post_token(base: str, **form: str) -> requests.Response:
    return requests.post(f"{base}/token", data=form, timeout=10)


def _redeem(base: str, code: str) -> requests.Response:
    return _post_token(base, grant_type="authorization_code", code=code, redirect_uri=REDIRECT_URI, client_id=CLIENT_ID, client_secret=SECRET)


def _error(answer: requests.Response) -> str:
    assert answer.headers["Content-Type"].startswith("application/json"), answer.text
    error: str = answer.json()["error"]
    return error


def test_authorization_code_then_refresh_with_a_new_refresh_token(store_url: str) -> None:
    with example_server(store_url) as server:
        session = OAuth2Session(CLIENT_ID, redirect_uri=REDIRECT_URI)
        url, state = session.authorization_url(f"{server.base}/authorize", user=USER)
        location = requests.get(url, allow_redirects=False, timeout=10).headers["Location"]
        token = session.fetch_token(f"{server.base}/token", authorization_response=location, client_secret=SECRET, include_client_id=True)
        assert (token["token_type"], token["expires_in"]) == ("Bearer", 3600)
        first_refresh = token["refresh_token"]
        refreshed = session.refresh_token(f"{server.base}/token", client_id=CLIENT_ID, client_secret=SECRET)
        assert refreshed["access_token"] != token["access_token"]
        assert refreshed["refresh_token"] not in (None, first_refresh)
        replayed = _post_token(server.base, grant_type="refresh_token", refresh_token=first_refresh, client_id=CLIENT_ID, client_secret=SECRET)
        assert replayed.status_code == 400 and _error(replayed) in ("invalid_request", "invalid_grant")


def test_client_credentials_and_password_grants(store_url: str) -> None:
    with example_server(store_url) as server:
        backend = OAuth2Session(client=BackendApplicationClient(client_id=CLIENT_ID))
        machine = backend.fetch_token(f"{server.base}/token", client_id=CLIENT_ID, client_secret=SECRET, include_client_id=True)
        assert machine["token_type"] == "Bearer" and machine["access_token"]
        legacy = OAuth2Session(client=LegacyApplicationClient(client_id=CLIENT_ID))
        person = legacy.fetch_token(f"{server.base}/token", username=USER, password=PASSWORD, client_id=CLIENT_ID, client_secret=SECRET, include_client_id=True)
        assert person["refresh_token"] and person["access_token"] != machine["access_token"]
        wrong = _post_token(server.base, grant_type="password", username=USER, password="wrong", client_id=CLIENT_ID, client_secret=SECRET)
        assert wrong.status_code == 401 and _error(wrong) == "invalid_client"  # python-oauth2 answers bad owner credentials so


def test_unique_token_hands_out_the_users_live_token_again(store_url: str) -> None:
    with example_server(store_url, "--unique-token") as server:
        tokens = [
            OAuth2Session(client=LegacyApplicationClient(client_id=CLIENT_ID)).fetch_token(
                f"{server.base}/token", username=USER, password=PASSWORD, client_id=CLIENT_ID, client_secret=SECRET, include_client_id=True
            )
            for _ in range(2)
        ]
        assert tokens[0]["access_token"] == tokens[1]["access_token"]
        assert tokens[0]["refresh_token"] == tokens[1]["refresh_token"]


def test_a_replayed_code_and_an_unknown_client_are_refused(store_url: str) -> None:
    with example_server(store_url) as server:
        code = _code(server.base)
        assert _redeem(server.base, code).status_code == 200
        replayed = _redeem(server.base, code)
        assert replayed.status_code == 400 and _error(replayed) in ("invalid_request", "invalid_grant")
        unknown = _post_token(server.base, grant_type="client_credentials", client_id="nobody", client_secret=SECRET)
        assert unknown.status_code == 400 and _error(unknown) == "invalid_client"


def test_memcached_down_is_a_json_server_error_never_a_traceback(own_memcached: MemcachedServer) -> None:
    with example_server(f"memcache://{own_memcached.address}?timeout=0.5") as server:
        issued = _post_token(server.base, grant_type="client_credentials", client_id=CLIENT_ID, client_secret=SECRET)
        assert issued.status_code == 200
        own_memcached.stop()
        token = _post_token(server.base, grant_type="password", username=USER, password=PASSWORD, client_id=CLIENT_ID, client_secret=SECRET)
        assert token.status_code in (400, 500) and _error(token) == "server_error"
        authorize = requests.get(f"{server.base}/authorize", params={"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI, "user": USER}, allow_redirects=False, timeout=10)
        # The client is known (clients live in the process), so the error goes back to its redirect URI.
        assert authorize.status_code == 302
        assert authorize.headers["Location"].startswith(REDIRECT_URI + "?")
        assert parse_qs(urlsplit(authorize.headers["Location"]).query)["error"] == ["server_error"]
        for answer in (token, authorize):
            assert "Traceback" not in answer.text and "<html" not in answer.text.lower()
        assert server.process.poll() is None
        assert server.stop() == 0
    assert SECRET not in server.stderr and PASSWORD not in server.stderr and issued.json()["access_token"] not in server.stderr


def test_two_servers_share_one_memcached_and_each_code_gives_one_token(memcached: MemcachedServer) -> None:
    url = f"memcache://{memcached.address}?prefix=shared-{secrets.token_hex(6)}"
    with example_server(url) as first, example_server(url) as second:
        issued = json.loads(_redeem(first.base, _code(first.base)).text)
        refreshed = _post_token(second.base, grant_type="refresh_token", refresh_token=issued["refresh_token"], client_id=CLIENT_ID, client_secret=SECRET)
        assert refreshed.status_code == 200, refreshed.text
        codes = [_code(first.base) for _ in range(30)]
        statuses: dict[str, list[int]] = {code: [] for code in codes}
        lock = threading.Lock()

        def race(code: str, barrier: threading.Barrier, base: str) -> None:
            barrier.wait(timeout=10)
            status = _redeem(base, code).status_code
            with lock:
                statuses[code].append(status)

        with ThreadPoolExecutor(max_workers=2) as pool:
            for code in codes:
                barrier = threading.Barrier(2)
                futures = [pool.submit(race, code, barrier, server.base) for server in (first, second)]
                for future in futures:
                    future.result(timeout=30)
    assert all(sorted(found) == [200, 400] for found in statuses.values()), statuses


def test_a_bad_client_option_is_one_line_and_a_non_zero_exit() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "--port", str(free_port()), "--client", "no-colons"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["python_oauth2_server: --client takes ID:SECRET:REDIRECT_URI (SECRET may be empty)"]


def test_a_request_python_oauth2_cannot_parse_is_a_json_server_error() -> None:
    """python-oauth2 decodes form bodies outside its error handling: a non-UTF-8 body would escape
    its application as an exception; the example answers it as JSON."""
    with example_server("memory://") as server:
        answer = requests.post(f"{server.base}/token", data=b"grant_type=\xff", headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=10)
        assert answer.status_code == 500 and _error(answer) == "server_error"
        assert "Traceback" not in answer.text
        assert _post_token(server.base, grant_type="client_credentials", client_id=CLIENT_ID, client_secret=SECRET).status_code == 200
