"""The ``oauth2-store`` command (also ``python -m oauth2_store``): demo, check and bench a store;
migrate and purge a SQL store.

Every subcommand takes a store URL (see :mod:`oauth2_store.urls`). Errors are one line on
standard error and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import textwrap
from collections.abc import Callable, Sequence
from typing import TextIO

from oauth2_store import __version__
from oauth2_store.cli.bench import run_bench, write_json
from oauth2_store.cli.check import run_checks
from oauth2_store.cli.demo import DemoFailed, run_demo
from oauth2_store.error import StoreError
from oauth2_store.urls import open_store

__all__ = ["build_parser", "main"]

URL_HELP = "store URL (see below)"

URLS = """store URLs:
  memory://                      the embedded in-memory store
  memcache://host[:port][,host[:port]...][?prefix=...&client=...&timeout=...]
                                 memcached servers (port 11211 when none; [::1]:11211 for IPv6)
      prefix=PREFIX              put before every key (default: oauth2)
      client=LIBRARY             pymemcache (default), pylibmc or python-memcached
      timeout=SECONDS            connect and read timeout (default: 1)
  redis://[user:password@]host[:port][/db][?prefix=...&timeout=...]
                                 one Redis server (port 6379, database 0 when none)
  rediss://...[?ca_file=PEM]     the same over TLS
  redis+cluster://host:port[,host:port...][?...]
                                 a Redis Cluster (rediss+cluster:// over TLS)
  memcache and redis URLs also take verify_grants=true|false and reissue_key_file=PATH
  sqlite:///relative/path | sqlite:////absolute/path [?prefix=...&timeout=...]
                                 a SQLite file (created when missing)
  postgresql://[user:password@]host[:port]/database[?...]
                                 PostgreSQL (psycopg 3)
      prefix=PREFIX              put before every table name (a-z 0-9 _; default: oauth2)
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the command, with one sub-parser per subcommand."""
    parser = argparse.ArgumentParser(
        prog="oauth2-store",
        description="Storage for an OAuth 2.0 provider: walk through it, check a deployment, measure it.",
        epilog=URLS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"oauth2-store {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = _subcommand(
        commands.add_parser,
        "demo",
        summary="walk through the authorization-code lifecycle on a store",
        description=(
            "Register a client, issue an authorization code with PKCE, consume it and show that a "
            "replay fails, issue an access token with a refresh token, look it up, refresh it and "
            "revoke it. Secrets are printed as fingerprints. Exit status 0 when every step behaved "
            "as the store contract says."
        ),
    )
    demo.add_argument("url", nargs="?", default="memory://", metavar="URL", help="store URL (default: memory://; see below)")
    check = _subcommand(
        commands.add_parser,
        "check",
        summary="check that a live deployment honours the store contract",
        description=(
            "Run the contract checks against a live store under a fresh random prefix (real records "
            "are never read or touched; what the checks write is deleted): round trips of every "
            "operation, misses, revocation, a token living longer than 30 days (and its TTL on the "
            "server), exactly-once consume_code under concurrent callers, a corrupt value giving "
            "CodecError, and the round-trip time. Prints a pass/fail table. Exit status 0 only when "
            "every check passed; a store that cannot be reached fails at once."
        ),
    )
    check.add_argument("url", metavar="URL", help=URL_HELP)
    bench = _subcommand(
        commands.add_parser,
        "bench",
        summary="measure throughput and latency of a mixed workload",
        description=(
            "Run a mixed workload (save_token, fetch_by_token, fetch_by_refresh_token, save_code, "
            "consume_code) under a fresh random prefix, with a progress bar on a terminal, then "
            "print throughput and p50/p95/p99 latency per operation."
        ),
    )
    bench.add_argument("url", metavar="URL", help=URL_HELP)
    migrate = _subcommand(
        commands.add_parser,
        "migrate",
        summary="create or check a SQL store's tables",
        description=(
            "Create the tables of a SQL store (sqlite:// or postgresql://) when the database has none, "
            "and print the schema version. A database whose schema is newer than this release's is "
            "left as it is, and the command fails."
        ),
    )
    migrate.add_argument("url", metavar="URL", help=URL_HELP)
    purge = _subcommand(
        commands.add_parser,
        "purge",
        summary="delete a SQL store's expired rows",
        description=(
            "Delete the expired rows of a SQL store (tokens, refresh tokens, codes, their replay "
            "markers, and grants once everything in them expired), in batches on the indexed expiry "
            "columns, and print how many were deleted."
        ),
    )
    purge.add_argument("url", metavar="URL", help=URL_HELP)
    purge.add_argument("--batch", type=_positive, default=10_000, metavar="N", help="rows per table per transaction (default: 10000)")
    bench.add_argument("--ops", type=_positive, default=5000, metavar="N", help="operations to run (default: 5000)")
    bench.add_argument("--threads", type=_positive, default=1, metavar="T", help="concurrent callers (default: 1)")
    bench.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE (-: JSON on standard output, the table on standard error)")
    return parser


def _subcommand(add_parser: Callable[..., argparse.ArgumentParser], name: str, summary: str, description: str) -> argparse.ArgumentParser:
    # The description is wrapped here and the URL grammar kept as laid out: argparse would re-wrap
    # both, and break "pylibmc" across lines.
    return add_parser(
        name, help=summary, description=textwrap.fill(description, 88), epilog=URLS, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with ``argv`` (default: the process arguments); return the exit status."""
    arguments = build_parser().parse_args(argv)
    command: str = arguments.command
    try:
        if command == "demo":
            run_demo(open_store(arguments.url), sys.stdout)
            return 0
        if command == "check":
            return 0 if run_checks(arguments.url, sys.stdout) else 1
        if command in ("migrate", "purge"):
            return _sql_command(command, arguments.url, getattr(arguments, "batch", 0))
        return _bench(arguments.url, arguments.ops, arguments.threads, arguments.json)
    except (DemoFailed, StoreError, ValueError, ImportError, OSError) as error:
        print(f"oauth2-store {command}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"oauth2-store {command}: interrupted", file=sys.stderr)
        return 130


def _bench(url: str, ops: int, threads: int, json_path: str | None) -> int:
    # The JSON file is opened before the run, so a bad path fails at once, not after it; with
    # "-" the JSON alone goes to standard output and the table to standard error.
    with contextlib.ExitStack() as files:
        json_file: TextIO | None = None
        if json_path == "-":
            json_file, table = sys.stdout, sys.stderr
        else:
            table = sys.stdout
            if json_path is not None:
                json_file = files.enter_context(open(json_path, "w", encoding="utf-8"))
        progress = sys.stderr if sys.stderr.isatty() else None
        result = run_bench(url, ops, threads, table, progress)
        if json_file is not None:
            write_json(result, json_file)
    return 0


SQL_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg")

PURGE_PASSES = 100_000
"""At most this many batches in one ``purge``: bounded, however fast rows expire meanwhile."""


def _sql_command(command: str, url: str, batch: int) -> int:
    if url.partition("://")[0] not in SQL_SCHEMES:
        raise ValueError(f"{command} is for SQL stores (sqlite:// or postgresql://); the others need no schema and expire records themselves")
    store = open_store(url)
    from oauth2_store.store.sql import SqlTokenStore  # here, not above: SQLAlchemy is an extra (open_store just imported it)

    assert isinstance(store, SqlTokenStore)
    try:
        if command == "migrate":
            print(f"schema version {store.migrate()} under prefix {store.prefix} at {store.where}")
            return 0
        deleted = 0
        for _ in range(PURGE_PASSES):
            purged = store.purge(limit=batch)
            deleted += purged
            if purged == 0:
                break
        print(f"deleted {deleted:,} expired rows under prefix {store.prefix} at {store.where}")
        return 0
    finally:
        store.close()


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value
