"""What users install: the wheel ships the package with its py.typed marker, and no pickle."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "oauth2_store"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(out), str(ROOT)],
        check=True,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    (path,) = out.glob("oauth2_store-*.whl")
    return zipfile.ZipFile(path)


def test_wheel_ships_py_typed_and_every_module(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    assert "oauth2_store/py.typed" in names
    modules = {f"oauth2_store/{path.relative_to(PACKAGE).as_posix()}" for path in PACKAGE.rglob("*.py")}
    assert modules and modules <= names
    assert not any(name.startswith("tests/") for name in names)


def test_wheel_metadata_declares_typed_and_runtime_dependencies(wheel: zipfile.ZipFile) -> None:
    (metadata_name,) = [name for name in wheel.namelist() if name.endswith(".dist-info/METADATA")]
    metadata = wheel.read(metadata_name).decode()
    assert "Name: oauth2-store" in metadata
    assert "Classifier: Typing :: Typed" in metadata
    assert "Requires-Python: >=3.10" in metadata
    assert "License-Expression: MIT" in metadata
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in wheel.namelist())
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert sorted(line.split()[1].split(">")[0].split("<")[0] for line in requires) == ["attrs", "cryptography", "pymemcache"]


FORBIDDEN_MODULES = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "cloudpickle", "jsonpickle"}
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}


@pytest.mark.reliability
@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.name)
def test_package_never_unpickles_or_evaluates(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert not {alias.name.split(".")[0] for alias in node.names} & FORBIDDEN_MODULES, ast.dump(node)
        elif isinstance(node, ast.ImportFrom):
            assert (node.module or "").split(".")[0] not in FORBIDDEN_MODULES, ast.dump(node)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in FORBIDDEN_CALLS, f"{path.name}:{node.lineno} calls {node.func.id}"
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            # importlib.import_module("pickle") imports it too
            assert node.value.split(".")[0] not in FORBIDDEN_MODULES, f"{path.name}:{node.lineno} names {node.value!r}"


def test_the_conformance_suite_without_pytest_names_the_extra() -> None:
    program = "import sys; sys.modules['pytest'] = None; import oauth2_store.testing"
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "ImportError: oauth2_store.testing needs pytest: pip install 'oauth2-store[testing]'"
