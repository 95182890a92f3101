"""Real memcached processes for the tests, on free loopback ports.

No oauth2_store import here: conftest.py uses this module before typeguard instruments the package.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from urllib.parse import unquote

import pytest

STARTUP_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def memcached_binary() -> str:
    """The memcached executable. A missing one fails the test run, in CI and everywhere else."""
    binary = shutil.which("memcached")
    if binary is None:
        pytest.fail("memcached is not installed: `make test` installs it (apt-get install memcached)", pytrace=False)
    return binary


class MemcachedServer:
    """One memcached process on 127.0.0.1, which a test can kill, restart, freeze and thaw."""

    def __init__(self, port: int | None = None, memory_mb: int = 64, max_item_size: int | None = None, evict: bool = True) -> None:
        self.port = port or free_port()
        self.memory_mb = memory_mb
        self.max_item_size = max_item_size
        self.evict = evict
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> MemcachedServer:
        command = [memcached_binary(), "-l", "127.0.0.1", "-p", str(self.port), "-U", "0", "-m", str(self.memory_mb), "-t", "2"]
        # The segmented LRU's maintainer moves an item read twice between segments in the
        # background, and lru_crawler metadump (keys()) leaves it out meanwhile: one plain LRU.
        command += ["-o", "no_lru_maintainer"]
        if self.max_item_size:
            # slab_chunk_max must not exceed the item size limit.
            command += ["-I", str(self.max_item_size), "-o", f"slab_chunk_max={self.max_item_size}"]
        if not self.evict:
            command.append("-M")  # a full server refuses writes (out of memory) instead of evicting
        if os.geteuid() == 0:
            command += ["-u", "root"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if self.process.poll() is not None:
                error = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"memcached on port {self.port} exited at start: {error}")
            try:
                if self.command(b"version\r\n").startswith(b"VERSION"):
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"memcached on port {self.port} did not answer within {STARTUP_TIMEOUT} s")
            time.sleep(0.02)  # polling for readiness, not waiting out a race

    def stop(self) -> None:
        """End the process if it is running, frozen or not. SIGKILL: a graceful stop costs
        memcached a second, and no test needs what it would save."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(timeout=10)
            self._close_pipe()

    def kill(self) -> None:
        """Kill the process at once (memcached loses everything), as a fault."""
        assert self.process is not None
        self.stop()

    def _close_pipe(self) -> None:
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()

    def freeze(self) -> None:
        """SIGSTOP: connections stay open, nothing answers. Returns once every thread is stopped:
        the signal is delivered asynchronously, and a request sent before that is still served."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)
        tasks = f"/proc/{self.process.pid}/task"
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not all(_state(f"{tasks}/{task}/stat") in ("T", "t") for task in os.listdir(tasks)):
            if time.monotonic() > deadline:
                raise RuntimeError(f"memcached on port {self.port} did not stop within {STARTUP_TIMEOUT} s")
            time.sleep(0.001)  # polling for the stop to take effect, not waiting out a race

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def command(self, request: bytes, end: bytes = b"\r\n") -> bytes:
        """Send raw protocol text and read the reply up to ``end`` (for inspecting the server)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as connection:
            connection.sendall(request)
            reply = b""
            while not reply.endswith(end):
                chunk = connection.recv(65536)
                if not chunk:
                    break
                reply += chunk
            return reply

    def keys(self) -> list[str]:
        """Every key the server holds (lru_crawler metadump)."""
        reply = self.command(b"lru_crawler metadump all\r\n", end=b"END\r\n")
        return [unquote(line.split(" ")[0].removeprefix("key=")) for line in reply.decode().splitlines() if line.startswith("key=")]

    def ttl(self, key: str) -> int | None:
        """Seconds the key has left (-1: never expires), None if it does not exist (meta get)."""
        reply = self.command(f"mg {key} t\r\n".encode())
        if reply.startswith(b"EN"):
            return None
        assert reply.startswith(b"HD"), reply
        (flag,) = [part for part in reply.split() if part.startswith(b"t")]
        return int(flag[1:])

    def stats(self) -> dict[str, str]:
        """The server's general statistics (``stats``), by name."""
        reply = self.command(b"stats\r\n", end=b"END\r\n").decode()
        return {parts[1]: parts[2] for parts in (line.split(" ", 2) for line in reply.splitlines()) if parts[0] == "STAT"}


def _state(stat_path: str) -> str:
    """The state letter of a task in /proc (R running, S sleeping, T stopped, ...)."""
    with open(stat_path) as stat:
        return stat.read().rpartition(")")[2].split()[0]
