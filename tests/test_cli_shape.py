"""The command line stays a thin layer: each command parses its options, calls a use case
(chronorec.workflows.run and the other workflows) and prints what it returns.

Bars, measured with ``ast`` so that they cannot drift back: no module of ``chronorec.cli`` over
250 lines, no function there over 40 lines (from its first decorator, or its ``def``, to its last
line, signature included), and no ``locals()`` (options reach the config as typed option groups,
chronorec.cli.options).
"""

from __future__ import annotations

import ast
from pathlib import Path

CLI = Path(__file__).resolve().parents[1] / "src" / "chronorec" / "cli"
MAX_MODULE_LINES = 250
MAX_FUNCTION_LINES = 40


def _modules() -> list[Path]:
    return sorted(CLI.glob("*.py"))


def function_sizes(path: Path) -> dict[str, int]:
    """Lines of each function of a module (``Class.method`` for methods), decorators and signature included."""
    sizes: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                sizes[prefix + child.name] = child.end_lineno - first + 1
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")

    visit(ast.parse(path.read_text()), "")
    return sizes


def test_the_cli_package_is_where_the_test_looks():
    assert (CLI / "main.py").exists() and len(_modules()) > 5


def test_no_cli_module_is_over_250_lines():
    long = {p.name: n for p in _modules() if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, f"cli modules over {MAX_MODULE_LINES} lines (split them): {long}"


def test_no_cli_function_is_over_40_lines():
    long = {
        f"{p.stem}.{name}": n for p in _modules() for name, n in function_sizes(p).items() if n > MAX_FUNCTION_LINES
    }
    assert not long, f"cli functions over {MAX_FUNCTION_LINES} lines (move the work to a use case): {long}"


def test_no_cli_module_calls_locals():
    calls = [
        f"{p.name}:{node.lineno}"
        for p in _modules()
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "locals"
    ]
    assert not calls, f"locals() in the command line (use an option group): {calls}"


def test_the_measure_counts_decorators_and_signatures(tmp_path):
    source = tmp_path / "m.py"
    source.write_text(
        "@a\n@b(\n    1,\n)\ndef f(\n    x,\n):\n    return x\n\n\nclass C:\n    def g(self):\n        pass\n"
    )
    assert function_sizes(source) == {"f": 8, "C.g": 2}
