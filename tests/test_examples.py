"""The examples the README points to run as shown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_dependency_injection_example_redeems_a_code() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "dependency_injection.py")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "redeemed\n"
