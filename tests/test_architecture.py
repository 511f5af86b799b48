"""Architecture contracts, checked by import-linter on the real import graph (pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def lint_imports(*args: str) -> subprocess.CompletedProcess:
    executable = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if executable is None:
        pytest.fail("import-linter is not installed: pip install -e '.[test]'")
    return subprocess.run([executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_the_contracts_of_pyproject_are_kept():
    result = lint_imports()
    assert result.returncode == 0, result.stdout[-3000:]
    assert "broken" in result.stdout and "0 broken" in result.stdout


def test_a_broken_contract_is_reported(tmp_path):
    """The checker itself can fail: the GUI does import the engine, so forbidding that must break."""
    config = tmp_path / "importlinter.ini"
    config.write_text("[importlinter]\nroot_packages =\n    core\n    app\n\n"
                      "[importlinter:contract:gui-without-engine]\nname = GUI without engine\ntype = forbidden\n"
                      "source_modules =\n    app\nforbidden_modules =\n    core\n", encoding="utf-8")
    result = lint_imports("--config", str(config))
    assert result.returncode == 1 and "BROKEN" in result.stdout


def test_ruff_finds_nothing():
    """Unused imports and variables, undefined names and syntax slips (ruff, configured in pyproject.toml)."""
    executable = shutil.which("ruff", path=str(Path(sys.executable).parent))
    if executable is None:
        pytest.fail("ruff is not installed: pip install -e '.[test]'")
    result = subprocess.run([executable, "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
