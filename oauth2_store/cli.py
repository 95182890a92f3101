"""The ``oauth2-store`` command (also ``python -m oauth2_store``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from oauth2_store.demo import DemoFailed, run_demo
from oauth2_store.error import StoreError
from oauth2_store.store.memory import LocalTokenStore

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the command, with one sub-parser per subcommand."""
    parser = argparse.ArgumentParser(prog="oauth2-store", description="Storage for an OAuth 2.0 provider.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "demo",
        help="walk through the authorization-code lifecycle on the in-memory store",
        description=(
            "Register a client, issue an authorization code with PKCE, consume it and show that a "
            "replay fails, issue an access token with a refresh token, look it up, refresh it and "
            "revoke it, on the embedded in-memory store. Secrets are printed as fingerprints. "
            "Exit status 0 when every step behaved as the store contract says."
        ),
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with ``argv`` (default: the process arguments); return the exit status."""
    arguments = build_parser().parse_args(argv)
    if arguments.command == "demo":
        try:
            run_demo(LocalTokenStore(), sys.stdout)
        except (DemoFailed, StoreError) as error:
            print(f"oauth2-store demo: {error}", file=sys.stderr)
            return 1
    return 0
