"""Example servers run as subprocesses: started on a free loopback port, stopped with SIGTERM.

Every wait is bounded; output is read by threads so that a chatty server never blocks on a full pipe.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import pytest

from tests.memcached_server import MemcachedServer
from tests.redis_server import RedisServer

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
STORES = ["memory", "memcached", "redis", "sqlite"]
"""The stores every example is tested on: ``params`` of each module's store fixture."""
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
HTTP_TIMEOUT = 10.0
LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:[1-9][0-9]*)")
"""The line an example prints once it accepts requests, with its base URL."""


class ExampleServer:
    """A running example server: its process, its base URL, and what it wrote to standard error."""

    def __init__(self, process: subprocess.Popen[str], base: str, stderr: list[str], readers: list[threading.Thread]) -> None:
        self.process = process
        self.base = base
        self._stderr = stderr
        self._readers = readers
        self.secrets: list[str] = []
        """What must never appear in its standard error: checked when :func:`running_example` ends."""

    def never_logs(self, *values: str) -> None:
        """Add ``values`` (tokens, codes, verifiers it was sent or issued) to :attr:`secrets`."""
        self.secrets.extend(value for value in values if value)

    @property
    def stderr(self) -> str:
        """Standard error so far (all of it once the process has exited)."""
        return "".join(self._stderr)

    def quiesce(self) -> None:
        """Return once the server has finished every request sent so far.

        The server handles one request at a time and closes each connection when done, so a
        request read to end of file means the ones before it are over. Used before SIGTERM so
        that stopping never races a request the test has already had answered.
        """
        with socket.create_connection(("127.0.0.1", int(urlsplit(self.base).port or 0)), timeout=HTTP_TIMEOUT) as connection:
            connection.sendall(b"GET /quiesce HTTP/1.0\r\n\r\n")
            for _ in range(1000):  # bounded: a small answer, and recv times out
                if not connection.recv(65536):
                    return
        raise AssertionError("the server's answer to a quiesce request never ended")

    def stop(self) -> int:
        """Stop it with SIGTERM once idle; return its exit status (fail if it does not exit)."""
        self.quiesce()
        self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the example did not exit within {STOP_TIMEOUT} s of SIGTERM: {self.stderr}") from None
        self.close()
        return status

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=STOP_TIMEOUT)
        self.close()

    def close(self) -> None:
        """Once the process has exited: collect the rest of its output and close its pipes."""
        for reader in self._readers:
            reader.join(timeout=STOP_TIMEOUT)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def _drain(stream: IO[str] | None, put: Callable[[str], object]) -> threading.Thread:
    """Hand every line of ``stream`` to ``put`` in a thread (so the pipe never fills), then ""."""

    def read() -> None:
        for line in stream or ():
            put(line)
        put("")

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return reader


_TYPEGUARD_BOOTSTRAP = """
import os, runpy, sys
from typeguard import install_import_hook
install_import_hook("oauth2_store")
script = sys.argv.pop(1)
sys.argv[0] = script
sys.path[0] = os.path.dirname(os.path.abspath(script))  # as when the script is run directly
runpy.run_path(script, run_name="__main__")
"""


def _under_typeguard() -> list[str]:
    """In the typeguard run (``OAUTH2_STORE_TYPEGUARD=1``), the interpreter arguments that run a
    script with oauth2_store instrumented, so the servers the tests drive are checked too; else none."""
    return ["-c", _TYPEGUARD_BOOTSTRAP] if os.environ.get("OAUTH2_STORE_TYPEGUARD") == "1" else []


@contextlib.contextmanager
def running_example(script: Path, arguments: Sequence[str], secrets: Sequence[str] = ()) -> Iterator[ExampleServer]:
    """Start an example server with ``arguments`` and ``--port 0``; yield once it prints the port
    it listens on (the kernel chose it: no race for a free port); after the block, stop it with
    SIGTERM (unless the block stopped it) and check that it exited with status 0 and that its
    standard error holds none of ``secrets``."""
    command = [sys.executable, *_under_typeguard(), str(script), *arguments, "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout: queue.Queue[str] = queue.Queue()
    stderr: list[str] = []
    server = ExampleServer(process, "", stderr, [_drain(process.stdout, stdout.put), _drain(process.stderr, stderr.append)])
    deadline = time.monotonic() + START_TIMEOUT
    listening = None
    while listening is None:
        try:
            line = stdout.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            line = ""
        if not line:  # end of output (the process exited) or the deadline passed
            server.kill()
            raise AssertionError(f"the example did not start within {START_TIMEOUT} s: {server.stderr}")
        listening = LISTENING.fullmatch(line.strip())
    server.base = listening.group(1)
    try:
        yield server
    except BaseException:
        if process.poll() is None:
            server.kill()
        raise
    if process.poll() is None:
        assert server.stop() == 0, server.stderr
    else:  # the block stopped it itself
        server.close()
        assert process.returncode == 0, server.stderr
    leaked = [index for index, secret in enumerate([*secrets, *server.secrets]) if secret in server.stderr]
    assert not leaked, f"secrets {leaked} in standard error: {server.stderr}"


def store_url_for(request: pytest.FixtureRequest) -> str:
    """The store URL of a fixture parametrized over STORES: ``memory://``, the session's memcached
    or Redis under a fresh prefix (so servers of different tests never share records), or a fresh
    SQLite file (which then keeps the clients too)."""
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        factory: pytest.TempPathFactory = request.getfixturevalue("tmp_path_factory")
        return f"sqlite:///{factory.mktemp('e2e') / 'store.db'}"
    if request.param == "redis":
        redis_server: RedisServer = request.getfixturevalue("redis_server")
        return f"{redis_server.url}?prefix=e2e-{secrets.token_hex(6)}"
    memcached: MemcachedServer = request.getfixturevalue("memcached")
    return f"memcache://{memcached.address}?prefix=e2e-{secrets.token_hex(6)}"

