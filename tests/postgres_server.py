"""A real PostgreSQL server for the tests, on a free loopback port, in its own temporary directory:
initdb, ``pg_ctl start``, a database :data:`DATABASE` owned by the superuser :data:`USER`, who logs
in with a random password (scram-sha-256). A test can kill it (SIGKILL), stop it, restart it on the
same data directory (PostgreSQL recovers from its write-ahead log) and dump the database.

PostgreSQL refuses to run as root: under root (CI), initdb, pg_ctl, the server and pg_dump run as
the unprivileged user ``nobody``, who owns the temporary directory.

No oauth2_store import here: conftest.py uses this module before typeguard instruments the package.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import NoReturn
from urllib.parse import quote

import psycopg
import pytest
from psycopg.rows import TupleRow

from tests.memcached_server import free_port

STARTUP_TIMEOUT = 30.0
"""Seconds the server has to accept connections after a start or restart (recovery included)."""
STOP_TIMEOUT = 30.0
"""Seconds a fast shutdown, or the exit of every server process after a kill, may take."""
COMMAND_TIMEOUT = 120.0
"""Seconds initdb or pg_dump may take."""

USER = "oauth2"
"""The superuser initdb creates, the one the URL logs in as."""
DATABASE = "oauth2_store"
"""The database :meth:`PostgresServer.start` creates, the one the URL names."""

UNPRIVILEGED_USER = "nobody"
"""Whom the server runs as when the tests run as root."""

REQUIRED = ("initdb", "pg_ctl", "postgres", "pg_dump")
"""The PostgreSQL programs the fixture runs, all taken from one installation."""

_LOG_TAIL_LINES = 40


def _missing() -> NoReturn:
    """Fail the test run: a missing PostgreSQL is never a reason to skip."""
    pytest.fail("PostgreSQL is not installed: `make test` installs it (apt-get install postgresql)", pytrace=False)


def _version_key(directory: Path) -> tuple[int, ...]:
    """The version in /usr/lib/postgresql/<version>/bin, as numbers (() for a name that is none)."""
    try:
        return tuple(int(part) for part in directory.parent.name.split("."))
    except ValueError:
        return ()


def postgres_binaries() -> dict[str, str]:
    """Paths of :data:`REQUIRED`, by name, from one PostgreSQL installation: the one whose ``pg_ctl``
    is on PATH (symbolic links followed to its own bin directory), else the programs on PATH if all
    are there, else the highest version in /usr/lib/postgresql/*/bin (Debian and Ubuntu keep them
    off PATH).

    Raises:
        pytest.fail.Exception: PostgreSQL is not installed (never a skip).
    """
    on_path = shutil.which("pg_ctl")
    if on_path is not None:
        directory = Path(on_path).resolve().parent
        if all((directory / name).is_file() for name in REQUIRED):
            return {name: str(directory / name) for name in REQUIRED}
    found = {name: shutil.which(name) for name in REQUIRED}
    if all(path is not None for path in found.values()):
        return {name: path for name, path in found.items() if path is not None}
    installed = [directory for directory in Path("/usr/lib/postgresql").glob("*/bin") if _version_key(directory) and all((directory / name).is_file() for name in REQUIRED)]
    if not installed:
        _missing()
    directory = max(installed, key=_version_key)
    return {name: str(directory / name) for name in REQUIRED}


class PostgresServer:
    """One PostgreSQL server on 127.0.0.1 at a free port, with its data directory, log file and
    unix socket in a temporary directory of its own. Nothing runs until :meth:`start`;
    :meth:`remove` stops it and deletes the directory.

    fsync is on (and synchronous_commit): what a commit acknowledged survives :meth:`kill`.
    """

    def __init__(self) -> None:
        self._port = free_port()
        self._password = secrets.token_urlsafe(24) + "-%@:/!"  # URL-special characters: the URL must quote them
        self.directory = Path(tempfile.mkdtemp(prefix="oauth2-store-postgres-"))
        """The temporary directory: ``data`` (the cluster), ``postgres.log``, the unix socket."""
        self._binaries: dict[str, str] | None = None
        if os.geteuid() == 0:
            account = pwd.getpwnam(UNPRIVILEGED_USER)
            self._uid: int | None = account.pw_uid
            self._gid: int | None = account.pw_gid
            os.chown(self.directory, account.pw_uid, account.pw_gid)
        else:
            self._uid = self._gid = None

    @property
    def port(self) -> int:
        """The TCP port on 127.0.0.1."""
        return self._port

    @property
    def password(self) -> str:
        """The password of :data:`USER`, random for each server. Never put it in a message."""
        return self._password

    @property
    def url(self) -> str:
        """A SQLAlchemy URL of the database (psycopg 3 driver), the password URL-quoted."""
        return f"postgresql+psycopg://{USER}:{quote(self._password, safe='')}@127.0.0.1:{self._port}/{DATABASE}"

    @property
    def dsn_without_password(self) -> str:
        """The database's address and user without the password, for messages."""
        return f"postgresql://{USER}@127.0.0.1:{self._port}/{DATABASE}"

    @property
    def data_directory(self) -> Path:
        """The cluster's data directory (PGDATA)."""
        return self.directory / "data"

    @property
    def log_file(self) -> Path:
        """The server's log (pg_ctl -l), appended to by every start."""
        return self.directory / "postgres.log"

    @property
    def running(self) -> bool:
        """Whether the postmaster is alive."""
        pid = self._postmaster_pid()
        return pid is not None and pid in self._server_pids()

    def connect(self, *, password: str | None = None, dbname: str = DATABASE, autocommit: bool = False) -> psycopg.Connection[TupleRow]:
        """A psycopg connection as :data:`USER` over TCP (``password``: instead of the right one).

        Raises:
            psycopg.OperationalError: the server refused the connection or is not there.
        """
        return psycopg.connect(
            host="127.0.0.1",
            port=self._port,
            user=USER,
            password=self._password if password is None else password,
            dbname=dbname,
            connect_timeout=5,
            autocommit=autocommit,
        )

    def start(self) -> PostgresServer:
        """Create the cluster (initdb), start the server, wait until it accepts connections and
        create the database :data:`DATABASE`. Returns the server. On a failure, stops whatever
        started and deletes the directory.

        Raises:
            pytest.fail.Exception: PostgreSQL is not installed, or initdb, the start or the database
                creation failed (the message has the output and the log's tail).
        """
        try:
            self._initdb()
            self._start_postmaster()
            with self.connect(dbname="postgres", autocommit=True) as connection:
                connection.execute(f'CREATE DATABASE "{DATABASE}"')
        except _StartFailure as failure:
            self.remove()
            pytest.fail(str(failure), pytrace=False)
        except psycopg.Error as error:
            message = f"creating {DATABASE} on PostgreSQL at {self.dsn_without_password} failed: {error}\n{self._log_tail()}"
            self.remove()
            pytest.fail(message, pytrace=False)
        return self

    def restart(self) -> PostgresServer:
        """Start the server again on the same data directory, after :meth:`kill` or :meth:`stop`
        (a running server is stopped first), and wait until it accepts connections: after a kill,
        PostgreSQL replays its write-ahead log first. Returns the server.

        Raises:
            RuntimeError: a running server did not stop.
            pytest.fail.Exception: the server did not come back (the message has the log's tail).
        """
        if self.running:
            self.stop()
        try:
            self._start_postmaster()
        except _StartFailure as failure:
            pytest.fail(str(failure), pytrace=False)
        return self

    def kill(self) -> None:
        """SIGKILL the postmaster, as a crash, and wait until every server process has exited (its
        children notice the postmaster's death). Nothing is cleaned up: :meth:`restart` recovers.

        Raises:
            RuntimeError: the server is not running, or its processes did not exit within
                :data:`STOP_TIMEOUT` seconds.
        """
        pid = self._postmaster_pid()
        if pid is None or pid not in self._server_pids():
            raise RuntimeError(f"PostgreSQL at {self.dsn_without_password} is not running")
        os.kill(pid, signal.SIGKILL)
        self._wait_for_exit()
        if Path(f"/proc/{pid}").exists():
            # A zombie, not reaped yet (the postmaster is no child of ours, and an init process in
            # a container may never reap it): the new postmaster would take the lock files' PID
            # for a live server. Every server process is gone: the lock files are stale.
            (self.data_directory / "postmaster.pid").unlink(missing_ok=True)
            (self.directory / f".s.PGSQL.{self._port}.lock").unlink(missing_ok=True)

    def stop(self) -> None:
        """Stop the server (``pg_ctl stop -m fast``: sessions end, a shutdown checkpoint is written)
        if it is running, and wait until every server process has exited.

        Raises:
            RuntimeError: the shutdown failed or did not finish within :data:`STOP_TIMEOUT` seconds.
        """
        if not self.running:
            return
        binaries = self._find_binaries()
        command = [binaries["pg_ctl"], "stop", "-D", str(self.data_directory), "-m", "fast", "-w", "-t", str(int(STOP_TIMEOUT))]
        result = self._run(command, timeout=STOP_TIMEOUT + 10)
        if result.returncode != 0:
            raise RuntimeError(f"pg_ctl stop of PostgreSQL at {self.dsn_without_password} failed: {_text(result)}")
        self._wait_for_exit()

    def dump(self) -> bytes:
        """The database as plain SQL (pg_dump), as the server's own user; the password goes in the
        environment (PGPASSWORD), never on the command line.

        Raises:
            RuntimeError: pg_dump failed (the message has its output).
        """
        binaries = self._find_binaries()
        command = [binaries["pg_dump"], "--format=plain", "--no-password", "-h", "127.0.0.1", "-p", str(self._port), "-U", USER, "-d", DATABASE]
        environment = self._environment()
        environment["PGPASSWORD"] = self._password
        result = self._run(command, environment=environment, timeout=COMMAND_TIMEOUT)
        if result.returncode != 0:
            raise RuntimeError(f"pg_dump of {self.dsn_without_password} failed: {result.stderr.decode(errors='replace')}")
        return result.stdout

    def remove(self) -> None:
        """Stop the server if it is running (SIGKILL if the fast shutdown fails), then delete the
        temporary directory with the data. Never raises for a server that is already gone."""
        try:
            self.stop()
        except (RuntimeError, OSError, subprocess.TimeoutExpired):
            if self.running:
                self.kill()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _find_binaries(self) -> dict[str, str]:
        if self._binaries is None:
            self._binaries = postgres_binaries()
        return self._binaries

    def _environment(self) -> dict[str, str]:
        """The programs' environment: no PG* variable of the caller's, and under root a HOME that
        ``nobody`` can read (libpq looks for ~/.pgpass there)."""
        environment = {name: value for name, value in os.environ.items() if not name.startswith("PG")}
        environment["LC_ALL"] = "C"
        if self._uid is not None:
            environment["HOME"] = str(self.directory)
        return environment

    def _run(self, command: list[str], *, timeout: float, environment: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
        """Run a PostgreSQL program to its end, as ``nobody`` under root, in the temporary directory."""
        return subprocess.run(
            command,
            cwd=self.directory,
            env=self._environment() if environment is None else environment,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
            user=self._uid,
            group=self._gid,
            extra_groups=[] if self._uid is not None else None,
        )

    def _initdb(self) -> None:
        binaries = self._find_binaries()
        password_file = self.directory / "pwfile"
        password_file.touch(mode=0o600)
        if self._uid is not None and self._gid is not None:
            os.chown(password_file, self._uid, self._gid)
        password_file.write_text(self._password + "\n")
        command = [
            binaries["initdb"],
            "-D", str(self.data_directory),
            "-U", USER,
            f"--pwfile={password_file}",
            "--auth-host=scram-sha-256",
            "--auth-local=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",  # initdb only: the server itself runs with fsync on
            "--no-instructions",
        ]  # fmt: skip
        try:
            result = self._run(command, timeout=COMMAND_TIMEOUT)
        except subprocess.TimeoutExpired as error:
            raise _StartFailure(f"initdb for PostgreSQL on port {self._port} did not finish within {COMMAND_TIMEOUT} s") from error
        finally:
            password_file.unlink(missing_ok=True)
        if result.returncode != 0:
            raise _StartFailure(f"initdb for PostgreSQL on port {self._port} failed (exit {result.returncode}):\n{_text(result)}")
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self._port),
            "unix_socket_directories": _quoted(str(self.directory)),
            "fsync": "on",  # a kill -9 test relies on it
            "synchronous_commit": "on",
            "full_page_writes": "on",
            "shared_buffers": "'16MB'",
            "max_connections": "100",
            "password_encryption": "'scram-sha-256'",
            "timezone": "'UTC'",
            "logging_collector": "off",
        }
        with (self.data_directory / "postgresql.conf").open("a") as config:
            config.write("\n# oauth2-store tests\n" + "".join(f"{name} = {value}\n" for name, value in settings.items()))

    def _start_postmaster(self) -> None:
        """``pg_ctl start`` (logging to :attr:`log_file`), then poll until a session opens.

        Raises:
            _StartFailure: the server did not start or accept a session in time.
        """
        binaries = self._find_binaries()
        command = [binaries["pg_ctl"], "start", "-D", str(self.data_directory), "-l", str(self.log_file), "-w", "-t", str(int(STARTUP_TIMEOUT))]
        deadline = time.monotonic() + STARTUP_TIMEOUT
        try:
            result = self._run(command, timeout=STARTUP_TIMEOUT + 10)
        except subprocess.TimeoutExpired as error:
            raise _StartFailure(f"pg_ctl start of PostgreSQL on port {self._port} did not return within {STARTUP_TIMEOUT} s\n{self._log_tail()}") from error
        if result.returncode != 0:
            raise _StartFailure(f"pg_ctl start of PostgreSQL on port {self._port} failed (exit {result.returncode}):\n{_text(result)}\n{self._log_tail()}")
        while True:
            try:
                with self.connect(dbname="postgres"):
                    return
            except psycopg.OperationalError as error:
                if not self.running:
                    raise _StartFailure(f"PostgreSQL on port {self._port} exited at start: {error}\n{self._log_tail()}") from error
                if time.monotonic() > deadline:
                    raise _StartFailure(f"PostgreSQL on port {self._port} did not accept a session within {STARTUP_TIMEOUT} s: {error}\n{self._log_tail()}") from error
            time.sleep(0.02)  # polling for readiness, not waiting out a race

    def _postmaster_pid(self) -> int | None:
        """The PID in postmaster.pid, None without one."""
        try:
            first_line = (self.data_directory / "postmaster.pid").read_text().split("\n", 1)[0]
        except OSError:
            return None
        return int(first_line) if first_line.strip().isdigit() else None

    def _server_pids(self) -> set[int]:
        """Every live process whose working directory is the data directory: the postmaster and its
        children (zombies have none)."""
        data = str(self.data_directory.resolve())
        pids = set()
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.readlink(f"/proc/{entry}/cwd") == data:
                        pids.add(int(entry))
                except OSError:
                    pass  # gone meanwhile, or someone else's process
        return pids

    def _wait_for_exit(self) -> None:
        deadline = time.monotonic() + STOP_TIMEOUT
        while remaining := self._server_pids():
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL processes {sorted(remaining)} of {self.dsn_without_password} did not exit within {STOP_TIMEOUT} s")
            time.sleep(0.01)  # polling for the processes to exit, not waiting out a race

    def _log_tail(self) -> str:
        try:
            lines = self.log_file.read_text(errors="replace").splitlines()[-_LOG_TAIL_LINES:]
        except OSError:
            return f"(no server log at {self.log_file})"
        return f"last lines of {self.log_file}:\n" + "\n".join(lines)


class _StartFailure(Exception):
    """initdb or the start failed; the message says why (never with the password)."""


def _text(result: subprocess.CompletedProcess[bytes]) -> str:
    return (result.stdout + result.stderr).decode(errors="replace").strip()


def _quoted(value: str) -> str:
    """A postgresql.conf string literal."""
    return "'" + value.replace("'", "''") + "'"
