"""The command: ``python -m oauth2_store demo`` on the embedded in-memory store."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from oauth2_store import AccessToken, AuthorizationCode
from oauth2_store import cli
from oauth2_store.demo import DemoFailed, run_demo
from oauth2_store.store import LocalTokenStore


def test_demo_runs_the_whole_lifecycle_and_exits_zero() -> None:
    result = subprocess.run([sys.executable, "-m", "oauth2_store", "demo"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines[:8]] == [f"{n}." for n in range(1, 9)]
    assert "refused: AuthCodeNotFound" in lines[3]
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
    with pytest.raises(DemoFailed, match="step 4"):
        run_demo(ReplayableStore(), io.StringIO())
    monkeypatch.setattr(cli, "LocalTokenStore", ReplayableStore)
    assert cli.main(["demo"]) == 1
    assert capsys.readouterr().err.startswith("oauth2-store demo: step 4")


def test_help_describes_the_demo(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["demo", "--help"])
    assert exit_.value.code == 0
    assert "authorization code with PKCE" in capsys.readouterr().out
