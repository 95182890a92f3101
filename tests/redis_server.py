"""Real redis-server processes for the tests, on free loopback ports: a single server (optionally
with an ACL user, or TLS only) and a 3-master Redis Cluster whose slots the fixture assigns.

No oauth2_store import here: conftest.py uses this module before typeguard instruments the package.
"""

from __future__ import annotations

import datetime
import io
import ipaddress
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.memcached_server import free_port

STARTUP_TIMEOUT = 15.0
SLOTS = 16384

ACL_USER = "oauth2-store"
ACL_PASSWORD = "s3cret-acl-password-%!@"


def redis_binary() -> str:
    """The redis-server executable. A missing one fails the test run, in CI and everywhere else."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: `make test` installs it (apt-get install redis-server)", pytrace=False)
    return binary


class RedisServer:
    """One redis-server on 127.0.0.1, in its own temporary directory, which a test can kill,
    restart (with its data, from the append-only file), freeze and thaw.

    Args:
        cluster: Start it with ``cluster-enabled yes`` (slots are assigned by :func:`start_cluster`).
        acl: Require the ACL user :data:`ACL_USER` (the default user is disabled).
        tls: Listen with TLS only; ``tls_files`` holds the CA and the server's certificate.
    """

    def __init__(self, *, cluster: bool = False, acl: bool = False, tls: TlsFiles | None = None, maxmemory_mb: int | None = None) -> None:
        self.port = free_port()
        self.cluster = cluster
        self.cluster_port = free_port()  # the bus port: the port + 10000 unless given, and none past 55535
        self.acl = acl
        self.tls = tls
        self.maxmemory_mb = maxmemory_mb
        self.directory = Path(tempfile.mkdtemp(prefix="oauth2-store-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """A store URL naming this server (credentials and scheme included)."""
        scheme = "rediss" if self.tls else "redis"
        credentials = f"{ACL_USER}:{ACL_PASSWORD.replace('%', '%25').replace('!', '%21').replace('@', '%40')}@" if self.acl else ""
        return f"{scheme}://{credentials}{self.address}"

    def start(self) -> RedisServer:
        config = [
            "bind 127.0.0.1",
            "protected-mode no",
            f"dir {self.directory}",
            "appendonly yes",
            "appendfsync always",  # a SIGKILL loses nothing acknowledged: restarts are tested
            'save ""',
            # A rewritten append-only file in plain commands, uncompressed: what a dump scan reads.
            "aof-use-rdb-preamble no",
            "rdbcompression no",
            "loglevel warning",
        ]
        if self.tls:
            config += ["port 0", f"tls-port {self.port}", f"tls-cert-file {self.tls.cert}", f"tls-key-file {self.tls.key}", f"tls-ca-cert-file {self.tls.ca}", "tls-auth-clients no"]
        else:
            config.append(f"port {self.port}")
        if self.cluster:
            config += ["cluster-enabled yes", f"cluster-port {self.cluster_port}", f"cluster-config-file {self.directory}/nodes.conf", "cluster-node-timeout 2000", "cluster-require-full-coverage yes"]
        if self.acl:
            config += ["user default off", f"user {ACL_USER} on >{ACL_PASSWORD} ~* &* +@all"]
        if self.maxmemory_mb:
            config += [f"maxmemory {self.maxmemory_mb}mb", "maxmemory-policy noeviction"]
        (self.directory / "redis.conf").write_text("\n".join(config) + "\n")
        self.process = subprocess.Popen([redis_binary(), str(self.directory / "redis.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if self.process.poll() is not None:
                error = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"redis-server on port {self.port} exited at start: {error}")
            try:
                if self.command("PING") == b"PONG":
                    return self
            except (OSError, RuntimeError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} did not answer within {STARTUP_TIMEOUT} s")
            time.sleep(0.02)  # polling for readiness, not waiting out a race

    def stop(self) -> None:
        """End the process if it is running, frozen or not (SIGKILL)."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGCONT)
                self.process.kill()
                self.process.wait(timeout=10)
            if self.process.stderr is not None:
                self.process.stderr.close()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def freeze(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def command(self, *args: str | bytes) -> object:
        """Send one command (RESP) and read its reply: bytes, int, list or None; an error reply
        raises RuntimeError. For inspecting the server, independently of redis-py."""
        request = _resp(*args)
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as raw:
            connection: socket.socket = raw
            if self.tls:
                context = ssl.create_default_context(cafile=str(self.tls.ca))
                connection = context.wrap_socket(raw, server_hostname="127.0.0.1")
            with connection, connection.makefile("rb") as reader:
                if self.acl:
                    connection.sendall(_resp("AUTH", ACL_USER, ACL_PASSWORD))
                    _read_reply(reader)
                connection.sendall(request)
                return _read_reply(reader)

    def dump(self) -> bytes:
        """Everything the server wrote to disk (the append-only files, after a rewrite is asked
        for), for scanning what a stolen backup would reveal."""
        self.command("BGREWRITEAOF")
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while b"aof_rewrite_in_progress:1" in _bytes(self.command("INFO", "persistence")) or b"aof_rewrite_scheduled:1" in _bytes(self.command("INFO", "persistence")):
            if time.monotonic() > deadline:
                raise RuntimeError("the append-only file rewrite did not finish")
            time.sleep(0.02)  # polling for the rewrite to finish, not waiting out a race
        return b"".join(path.read_bytes() for path in sorted(self.directory.rglob("*")) if path.is_file() and path.name != "redis.conf")


def _bytes(value: object) -> bytes:
    assert isinstance(value, bytes), value
    return value


def _resp(*args: str | bytes) -> bytes:
    request = f"*{len(args)}\r\n".encode()
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else arg
        request += b"$%d\r\n%s\r\n" % (len(data), data)
    return request


def _read_reply(reader: io.BufferedReader) -> object:
    line = reader.readline()
    if not line:
        raise RuntimeError("connection closed")
    kind, body = line[:1], line[1:-2]
    if kind == b"+":
        return body
    if kind == b"-":
        raise RuntimeError(body.decode())
    if kind == b":":
        return int(body)
    if kind == b"$":
        size = int(body)
        if size < 0:
            return None
        data = reader.read(size + 2)
        return data[:-2]
    if kind == b"*":
        count = int(body)
        return None if count < 0 else [_read_reply(reader) for _ in range(count)]
    raise RuntimeError(f"unexpected reply {line!r}")


class RedisCluster:
    """Three masters, no replicas, slots split in three ranges by the fixture."""

    def __init__(self, servers: list[RedisServer]) -> None:
        self.servers = servers

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(server.address for server in self.servers)

    def server_of_slot(self, slot: int) -> RedisServer:
        return self.servers[min(slot * len(self.servers) // SLOTS, len(self.servers) - 1)]


def start_cluster(count: int = 3) -> RedisCluster:
    """Start ``count`` cluster-enabled servers, give each a third of the slots, introduce them,
    and return once every node reports ``cluster_state:ok``."""
    servers = [RedisServer(cluster=True).start() for _ in range(count)]
    try:
        for index, server in enumerate(servers):
            first, last = index * SLOTS // count, (index + 1) * SLOTS // count - 1
            server.command("CLUSTER", "ADDSLOTSRANGE", str(first), str(last))
        for server in servers[1:]:
            server.command("CLUSTER", "MEET", "127.0.0.1", str(servers[0].port), str(servers[0].cluster_port))
        deadline = time.monotonic() + STARTUP_TIMEOUT * 2
        while not all(b"cluster_state:ok" in _bytes(server.command("CLUSTER", "INFO")) and _known_nodes(server) == count for server in servers):
            if time.monotonic() > deadline:
                raise RuntimeError("the Redis Cluster did not reach cluster_state:ok")
            time.sleep(0.05)  # polling for the gossip to converge, not waiting out a race
    except BaseException:
        for server in servers:
            server.remove()
        raise
    return RedisCluster(servers)


def _known_nodes(server: RedisServer) -> int:
    for line in _bytes(server.command("CLUSTER", "INFO")).decode().splitlines():
        if line.startswith("cluster_known_nodes:"):
            return int(line.split(":")[1])
    return 0


class TlsFiles:
    """A throw-away CA and a server certificate for 127.0.0.1 signed by it, as PEM files."""

    def __init__(self, directory: Path) -> None:
        self.ca, self.cert, self.key = directory / "ca.pem", directory / "server.pem", directory / "server.key"
        now = datetime.datetime.now(datetime.timezone.utc)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "oauth2-store test CA")])
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        self.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        self.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        os.chmod(self.key, 0o600)
