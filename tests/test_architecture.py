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


def import_cycles(graph, modules: list[str]) -> list[list[str]]:
    """Groups of modules that import each other, directly or round a circle (lazy imports included)."""
    edges = {m: {i for i in graph.find_modules_directly_imported_by(m) if i in modules} for m in modules}
    order, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(module: str) -> None:  # Tarjan's strongly connected components
        order[module] = low[module] = len(order)
        stack.append(module)
        on_stack.add(module)
        for imported in edges[module]:
            if imported not in order:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], order[imported])
        if low[module] == order[module]:
            group = []
            while not group or group[-1] != module:
                group.append(stack.pop())
                on_stack.discard(group[-1])
            if len(group) > 1:
                groups.append(sorted(group))

    for module in modules:
        if module not in order:
            visit(module)
    return groups


def test_no_module_of_core_or_app_imports_itself_round_a_circle():
    import grimp

    graph = grimp.build_graph("core", "app", exclude_type_checking_imports=True, cache_dir=None)
    modules = sorted(m for m in graph.modules if m.split(".")[0] in ("core", "app"))
    assert import_cycles(graph, modules) == []


def test_the_cycle_check_finds_a_circle():
    import grimp

    graph = grimp.ImportGraph()
    for module in ("pkg", "pkg.a", "pkg.b", "pkg.c"):
        graph.add_module(module)
    graph.add_import(importer="pkg.a", imported="pkg.b")
    graph.add_import(importer="pkg.b", imported="pkg.a")
    graph.add_import(importer="pkg.c", imported="pkg.a")
    assert import_cycles(graph, ["pkg.a", "pkg.b", "pkg.c"]) == [["pkg.a", "pkg.b"]]


def test_every_training_profile_has_a_runner():
    """A profile named in the config (and so offered by --profile) that no runner serves would fail mid-run."""
    from core.training.config import PROFILES
    from core.training.pipeline import RUNNERS

    assert set(RUNNERS) == set(PROFILES) - {"auto"}
