"""Static checks run as tests: the stubs match pymemcache and Authlib, and typeguard really runs when asked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from oauth2_store import Client
from tests.support import TYPEGUARD_RUN, marked_errors, reported_errors

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("library", "allowlist"), [("pymemcache", "stubtest-allowlist.txt"), ("authlib", "stubtest-allowlist-authlib.txt")])
def test_the_stubs_match_the_installed_library(library: str, allowlist: str) -> None:
    result = subprocess.run(
        [
            sys.executable, "-m", "mypy.stubtest", library,
            "--mypy-config-file", str(ROOT / "mypy.ini"),
            "--ignore-missing-stub",
            "--allowlist", str(ROOT / "stubs" / allowlist),
        ],
        cwd=ROOT,
        env={**os.environ, "MYPYPATH": str(ROOT / "stubs")},
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_typeguard_checks_the_package_exactly_in_the_typeguard_run() -> None:
    """Without the import hook this call quietly returns False; with it, the annotation fires."""
    client = Client("c", "s")
    if TYPEGUARD_RUN:
        with pytest.raises(TypeError, match="typeguard"):
            client.has_redirect_uri(42)  # type: ignore[arg-type]  # the wrong type is the point
    else:
        assert client.has_redirect_uri(42) is False  # type: ignore[arg-type]  # the wrong type is the point


def test_mypy_rejects_each_marked_mistake_and_nothing_else() -> None:
    from mypy import api

    path = ROOT / "tests" / "typing" / "reject_stores.py"
    expected = marked_errors(path)
    assert len(expected) >= 10
    stdout, stderr, status = api.run(["--config-file", str(ROOT / "mypy.ini"), "--no-incremental", str(path)])
    assert status == 1, stdout + stderr
    assert reported_errors(stdout, path) == expected, stdout
