"""The typing promise holds for a user of the wheel: mypy --strict against what `pip install` gives.

The wheel is built and installed into a fresh virtualenv, with the extras of the three integrations and Redis
(python-oauth2, Authlib, oauthlib; redis-py) and the same mypy as this repository's; a user's program is copied outside the repository and checked
there, so neither stubs/ nor mypy.ini can help. The accepted program must pass; the rejected one
must fail at exactly its marked lines. Without the stubs the wheel ships, pymemcache's,
python-oauth2's and Authlib's types would be Any and the marked mistakes would pass.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.support import marked_errors, reported_errors

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = ROOT / "tests" / "typing"


@pytest.fixture(scope="module")
def user_mypy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The mypy of a fresh virtualenv holding only the wheel and its dependencies, and a folder
    outside the repository to check programs in."""
    home = tmp_path_factory.mktemp("wheel-user")
    quiet = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    quiet.pop("MYPYPATH", None)
    # Built from a copy: setuptools reuses a build/ folder it finds, with whatever an older build left.
    source = home / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".*", "build", "*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(home), str(source)], check=True, env=quiet)
    (wheel,) = home.glob("oauth2_store-*.whl")
    venv.create(home / "venv", with_pip=True)
    python = home / "venv" / "bin" / "python"
    mypy = f"mypy=={importlib.metadata.version('mypy')}"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", f"{wheel}[authlib,oauthlib,python-oauth2,redis]", mypy], check=True, env=quiet, timeout=600)
    work = home / "program"
    work.mkdir()
    return python, work


def _mypy(user_mypy: tuple[Path, Path], program: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    python, work = user_mypy
    path = work / program
    shutil.copy(PROGRAMS / program, path)
    env = {key: value for key, value in os.environ.items() if key not in ("MYPYPATH", "PYTHONPATH")}
    result = subprocess.run(
        [str(python), "-m", "mypy", "--strict", "--no-incremental", "--config-file", "", str(path)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return result, path


def test_a_user_program_type_checks_against_the_installed_wheel(user_mypy: tuple[Path, Path]) -> None:
    result, _ = _mypy(user_mypy, "user_program.py")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_users_mistakes_are_reported_against_the_installed_wheel(user_mypy: tuple[Path, Path]) -> None:
    result, path = _mypy(user_mypy, "reject_user_program.py")
    expected = marked_errors(path)
    assert len(expected) >= 6
    assert result.returncode == 1, result.stdout + result.stderr
    assert reported_errors(result.stdout, path) == expected, result.stdout
