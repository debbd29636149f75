"""The package layout is a contract: the layers of pyproject.toml's [tool.importlinter] hold, and no
two modules import each other, directly or through others (lazy imports inside functions count)."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import grimp
import pytest
from importlinter import cli as importlinter_cli


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph("chronorec", exclude_type_checking_imports=True)


def _cycles(graph) -> list[str]:
    """The modules left after repeatedly removing modules that import nothing left, or that nothing
    left imports: empty exactly when the import graph has no cycle (every cycle survives the pruning)."""
    out = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    inc = {m: set() for m in out}
    for m, targets in out.items():
        for t in targets:
            inc.setdefault(t, set()).add(m)
            out.setdefault(t, set())
    alive = set(out)
    changed = True
    while changed:
        dead = {m for m in alive if not (out[m] & alive) or not (inc[m] & alive)}
        alive -= dead
        changed = bool(dead)
    return sorted(alive)


def test_the_layer_contracts_hold():
    config = Path(__file__).resolve().parents[1] / "pyproject.toml"
    # lint_imports configures logging and so disables every logger that exists: re-enable them after it
    loggers = [lg for lg in logging.root.manager.loggerDict.values() if isinstance(lg, logging.Logger)]
    enabled = [lg for lg in loggers if not lg.disabled]
    try:
        assert importlinter_cli.lint_imports(config_filename=str(config)) == importlinter_cli.EXIT_STATUS_SUCCESS
    finally:
        for lg in enabled:
            lg.disabled = False


def test_no_import_cycles(graph):
    assert _cycles(graph) == []


def test_cycle_finder_finds_a_planted_cycle():
    g = grimp.ImportGraph()
    for m in ("p", "p.a", "p.b", "p.c", "p.d"):
        g.add_module(m)
    g.add_import(importer="p.a", imported="p.b")
    g.add_import(importer="p.b", imported="p.c")
    g.add_import(importer="p.c", imported="p.a")
    g.add_import(importer="p.d", imported="p.a")
    assert _cycles(g) == ["p.a", "p.b", "p.c"]


def test_a_violation_of_the_layers_is_reported(tmp_path, monkeypatch):
    """The contract can fail: a data module importing the CLI breaks it."""
    g = grimp.build_graph("chronorec")
    g.add_import(importer="chronorec.data.columns", imported="chronorec.cli")
    chains = g.find_illegal_dependencies_for_layers(layers=("chronorec.cli", "chronorec.data"))
    assert chains, "importing the CLI from the data layer must be illegal"


SRC = Path(__file__).resolve().parents[1] / "src" / "chronorec"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80  # from the first statement (docstring included) to the end; signatures not counted


def _oversized(root: Path) -> list[str]:
    """Modules over MAX_MODULE_LINES and functions over MAX_FUNCTION_LINES without a reason at their
    top (a docstring or first comment saying ``Long: <why>``)."""
    found = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text()
        lines = text.splitlines()
        if len(lines) > MAX_MODULE_LINES and "Long:" not in (ast.get_docstring(ast.parse(text)) or ""):
            found.append(f"{path.relative_to(root)}: {len(lines)} lines")
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            start = node.body[0].lineno
            size = node.end_lineno - start + 1
            top = "\n".join(lines[node.lineno - 1 : start + 2])
            if size > MAX_FUNCTION_LINES and "Long:" not in top:
                found.append(f"{path.relative_to(root)}:{node.lineno} {node.name}: {size} lines")
    return found


def test_no_module_or_function_is_oversized_without_a_reason():
    assert _oversized(SRC) == []


def test_the_size_check_catches_a_long_function_and_accepts_a_stated_reason(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES + 1))
    (tmp_path / "long.py").write_text(f"def f():\n{body}\n")
    (tmp_path / "reasoned.py").write_text(f'def g():\n    """Long: one table of constants."""\n{body}\n')
    assert _oversized(tmp_path) == ["long.py:1 f: 81 lines"]
