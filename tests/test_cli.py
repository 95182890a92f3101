"""The command: demo, check and bench, on the in-memory store, a real memcached and a dead port."""

from __future__ import annotations

import io
import json
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

import oauth2_store
from oauth2_store import AccessToken, AuthorizationCode, cli
from oauth2_store.cli import check
from oauth2_store.cli.bench import run_bench
from oauth2_store.cli.demo import DemoFailed, run_demo
from oauth2_store.store import LocalTokenStore
from tests.memcached_server import MemcachedServer, free_port
from tests.redis_server import RedisCluster, RedisServer


def test_demo_runs_the_whole_lifecycle_and_exits_zero() -> None:
    result = subprocess.run([sys.executable, "-m", "oauth2_store", "demo"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines[:8]] == [f"{n}." for n in range(1, 9)]
    assert "refused: CodeReplayError" in lines[6]
    assert lines[-1] == "lifecycle complete"
    assert result.stderr == ""


class RecordingStore(LocalTokenStore):
    """Remembers every secret saved, so the test can look for them in the output."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: list[str] = []

    def save_token(self, access_token: AccessToken) -> None:
        self.secrets += [access_token.token, access_token.refresh_token or access_token.token]
        super().save_token(access_token)

    def save_code(self, authorization_code: AuthorizationCode) -> None:
        self.secrets.append(authorization_code.code)
        super().save_code(authorization_code)


def test_demo_prints_no_secret() -> None:
    store, out = RecordingStore(), io.StringIO()
    run_demo(store, out)
    assert len(store.secrets) == 5
    printed = out.getvalue()
    for secret in store.secrets:
        assert secret not in printed and secret[:8] not in printed


class ReplayableStore(LocalTokenStore):
    """Broken on purpose: consuming a code does not use it up."""

    def consume_code(self, code: str) -> AuthorizationCode:
        return self.fetch_by_code(code)


def test_demo_fails_on_a_store_that_breaks_the_contract(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(DemoFailed, match="step 7"):
        run_demo(ReplayableStore(), io.StringIO())
    monkeypatch.setattr(cli, "open_store", lambda url: ReplayableStore())
    assert cli.main(["demo"]) == 1
    assert capsys.readouterr().err.startswith("oauth2-store demo: step 7")


def test_demo_runs_on_memcached_and_redis(memcached: MemcachedServer, redis_cluster: RedisCluster, capsys: pytest.CaptureFixture[str]) -> None:
    for url in (f"memcache://{memcached.address}", redis_cluster.url):
        assert cli.main(["demo", f"{url}?prefix=demo-{secrets.token_hex(4)}"]) == 0
        assert capsys.readouterr().out.endswith("lifecycle complete\n")


@pytest.mark.parametrize(
    ("command", "text"),
    [
        ("demo", "authorization code with PKCE"),
        ("check", "fresh random prefix"),
        ("bench", "p50/p95/p99"),
    ],
)
def test_help_of_every_subcommand(capsys: pytest.CaptureFixture[str], command: str, text: str) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--help"])
    assert exit_.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert text in help_text and "memcache://host[:port][,host[:port]...]" in help_text and "python-memcached" in help_text


def test_check_passes_on_the_in_memory_store(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check", "memory://"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "10 checks: 9 passed, 0 failed, 1 skipped"
    assert [line.split()[0] for line in out[1:-1]] == ["PASS"] * 8 + ["SKIP", "PASS"]
    assert "SKIP  corrupt value" in out[9]
    assert "PASS  revocation bound       exact" in out[6]


def test_check_passes_on_memcached_and_cleans_up(memcached: MemcachedServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check", f"memcache://{memcached.address}"]) == 0
    out = capsys.readouterr().out
    assert "10 checks: 9 passed, 0 failed, 1 skipped" in out
    assert "SKIP  revocation bound       1 of 1 servers evict (no -M) and verify_grants is off" in out
    assert "the server keeps a 40-day token for 40.0 days" in out
    assert "a value that is not a record raises CodecError" in out
    assert not [key for key in memcached.keys() if key.startswith("oauth2-store-check-")]


def test_check_passes_on_redis_and_its_cluster_and_cleans_up(redis_server: RedisServer, redis_cluster: RedisCluster, capsys: pytest.CaptureFixture[str]) -> None:
    for url, servers in ((redis_server.url, [redis_server]), (redis_cluster.url, redis_cluster.servers)):
        assert cli.main(["check", url]) == 0
        out = capsys.readouterr().out
        assert "10 checks: 10 passed, 0 failed" in out, out
        assert "PASS  revocation bound       no server evicts" in out and "the server keeps a 40-day token for 40.0 days" in out
        assert not [key for server in servers for key in _keys(server.command("KEYS", "oauth2-store-check-*"))]


def test_check_on_an_evicting_redis_names_the_bound_and_both_remedies(capsys: pytest.CaptureFixture[str]) -> None:
    server = RedisServer(maxmemory_mb=100).start()
    try:
        server.command("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
        assert cli.main(["check", server.url]) == 0
        out = capsys.readouterr().out
        assert f"SKIP  revocation bound       Redis evicts keys under maxmemory on {server.address}" in out
        assert "maxmemory-policy noeviction" in out and "verify_grants=true" in out
    finally:
        server.remove()


def _keys(reply: object) -> list[bytes]:
    assert isinstance(reply, list)
    return reply


def test_check_reports_the_revocation_bound_of_a_server_that_never_evicts_or_a_store_that_verifies(
    memcached: MemcachedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    never_evicts = MemcachedServer(evict=False).start()
    try:
        assert cli.main(["check", f"memcache://{never_evicts.address}"]) == 0
        assert "PASS  revocation bound       no server evicts (-M)" in capsys.readouterr().out
    finally:
        never_evicts.stop()
    assert cli.main(["check", f"memcache://{memcached.address}?verify_grants=true"]) == 0
    out = capsys.readouterr().out
    assert "PASS  revocation bound       verify_grants" in out and "10 checks: 10 passed, 0 failed" in out


def test_check_reports_a_store_that_breaks_the_contract(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(check, "open_store", lambda url, prefix: ReplayableStore())
    assert cli.main(["check", "memory://"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  code used once" in out and "FAIL  exactly-once consume" in out
    assert out.splitlines()[-1] == "10 checks: 7 passed, 2 failed, 1 skipped"


def test_check_fails_when_any_server_of_the_list_is_dead(memcached: MemcachedServer, capsys: pytest.CaptureFixture[str]) -> None:
    dead = f"127.0.0.1:{free_port()}"
    assert cli.main(["check", f"memcache://{memcached.address},{dead}?timeout=0.5"]) == 1
    out = capsys.readouterr().out
    assert f"FAIL  reachable              store unavailable: 1 of 2 servers did not answer: {dead}" in out
    assert memcached.address not in out.split("did not answer")[1]


def test_bench_counts_one_thread_in_the_singular(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bench", "memory://", "--ops", "5", "--threads", "1"]) == 0
    assert " with 1 thread: " in capsys.readouterr().out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0 and capsys.readouterr().out == f"oauth2-store {oauth2_store.__version__}\n"


def test_check_against_a_dead_server_fails_fast_with_one_clear_line() -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "oauth2_store", "check", f"memcache://127.0.0.1:{free_port()}?timeout=0.5"], capture_output=True, text=True, timeout=60
    )
    assert time.monotonic() - started < 20
    assert result.returncode == 1
    assert "FAIL  reachable" in result.stdout and "stopped: the store cannot be reached" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("url", ["memory://", "memcache://", "redis://"])
def test_bench_prints_throughput_and_percentiles_and_writes_json(
    url: str, memcached: MemcachedServer, redis_server: RedisServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = {"memory://": url, "memcache://": f"memcache://{memcached.address}", "redis://": redis_server.url}[url]
    figures = tmp_path / "bench.json"
    assert cli.main(["bench", url, "--ops", "200", "--threads", "2", "--json", str(figures)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].startswith(f"{url}: 200 operations in ") and lines[0].endswith("ops/s")
    assert [line.split()[0] for line in lines[2:]] == ["save_token", "fetch_by_token", "fetch_by_refresh_token", "save_code", "consume_code"]
    assert all(line.split()[1] == "40" for line in lines[2:])
    assert "\r" not in captured.err  # no progress bar when standard error is not a terminal
    written = json.loads(figures.read_text())
    assert written["operations"] == 200 and written["threads"] == 2 and written["throughput_ops_per_second"] > 0
    latency = written["latency_ms"]["consume_code"]
    assert latency["count"] == 40 and 0 < latency["p50"] <= latency["p95"] <= latency["p99"]


def test_bench_reports_what_it_really_ran(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bench", "memory://", "--ops", "7", "--threads", "50", "--json", "-"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["operations"] == 10 and json.loads(captured.out)["threads"] == 2
    assert "10 operations (--ops 7 rounded up to whole rounds of 5)" in captured.err and "with 2 threads" in captured.err


def test_bench_refuses_an_unwritable_json_path_before_running(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bench", "memory://", "--ops", "5", "--json", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("oauth2-store bench: [Errno 21] Is a directory")


def test_bench_draws_progress_on_a_terminal() -> None:
    progress, out = io.StringIO(), io.StringIO()
    run_bench("memory://", 100, 1, out, progress)
    assert progress.getvalue().rstrip("\n").endswith("] 20/20 rounds") and "\r[" in progress.getvalue()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["check", "mongodb://x"], "oauth2-store check: mongodb://x: unknown scheme 'mongodb'"),
        (["bench", "memcache://h?colour=1"], "oauth2-store bench: memcache://h?colour=***: unknown option 'colour'"),
        (["demo", "memcache://u:pw-secret@h"], "oauth2-store demo: memcache://***@h: credentials are not supported"),
        (["check", "memcache://127.0.0.1:11211?prefix=bad%20prefix"], "oauth2-store check: memcache://127.0.0.1:11211?prefix=bad%20prefix: prefix must be"),
        (["bench", "memcache://127.0.0.1:11211?prefix="], "oauth2-store bench: memcache://127.0.0.1:11211?prefix=: prefix must be"),
        (["check", "bogus"], "oauth2-store check: bogus: not a store URL"),
        (["check", "memcache://127.0.0.1:"], "oauth2-store check: memcache://127.0.0.1:: server '127.0.0.1:' has an empty port"),
    ],
)
def test_errors_are_one_line_without_traceback(arguments: list[str], message: str) -> None:
    result = subprocess.run([sys.executable, "-m", "oauth2_store", *arguments], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(message)
    assert "Traceback" not in result.stderr and "pw-secret" not in result.stderr


def test_bad_numbers_are_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["bench", "memory://", "--ops", "0"])
    assert exit_.value.code == 2
    assert "'0' must be at least 1" in capsys.readouterr().err


def test_check_against_a_frozen_server_stops_at_once_with_one_failure() -> None:
    server = MemcachedServer().start()
    try:
        server.freeze()
        started = time.monotonic()
        out = io.StringIO()
        assert check.run_checks(f"memcache://{server.address}?timeout=0.5", out) is False
        assert time.monotonic() - started < 10
        assert out.getvalue().splitlines()[-1] == "stopped: the store cannot be reached"
    finally:
        server.stop()


def test_an_interrupted_bench_is_one_line_and_exit_130(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(*arguments: object) -> None:
        raise KeyboardInterrupt  # what Ctrl-C raises in the main thread

    monkeypatch.setattr(cli, "run_bench", interrupted)
    assert cli.main(["bench", "memory://"]) == 130
    assert capsys.readouterr().err == "oauth2-store bench: interrupted\n"
