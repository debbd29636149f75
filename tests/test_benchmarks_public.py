"""benchmarks/ runs on chronorec's public API only, and tests never load a benchmark script by path.

A benchmark that needs a library internal gets a public way to it (a configuration field, the
trainer's ``on_phase`` hook, ``training_parts``, a ``chronorec.testing`` helper) instead of reaching
into private names; what tests share with benchmarks lives in ``chronorec.testing``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = sorted((ROOT / "benchmarks").glob("*.py"))
# ``_``-prefixed attributes of standard-library objects a script may use: (object name, attribute)
ALLOWED_PRIVATE: set[tuple[str, str]] = {("sys", "_getframe"), ("os", "_exit")}
# calls that load a Python file by path (or put a folder on the import path)
LOADERS = {"spec_from_file_location", "SourceFileLoader", "exec_module"}  # by their last name
PATH_CALLS = {"runpy.run_path", "sys.path.insert", "sys.path.append", "importlib.import_module"}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _dotted(node: ast.AST) -> str:
    """``a.b.c`` of a Name/Attribute chain ('' when it is not one)."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


class PrivateUses(ast.NodeVisitor):
    """Private names of chronorec imported, and ``_``-prefixed attributes read, written or called on
    anything but ``self``/``cls`` inside a class of the script itself."""

    def __init__(self, path: Path):
        self.path = path
        self.found: list[str] = []
        self.classes = 0
        self.chronorec_names: set[str] = set()  # names bound by imports from chronorec

    def _flag(self, node: ast.AST, what: str) -> None:
        self.found.append(f"{self.path.name}:{node.lineno}: {what}")

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.classes += 1
        self.generic_visit(node)
        self.classes -= 1

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name.split(".")[0] == "chronorec":
                self.chronorec_names.add(alias.asname or "chronorec")
                if any(map(_private, alias.name.split("."))):
                    self._flag(node, f"import {alias.name}")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if module.split(".")[0] == "chronorec":
            if any(map(_private, module.split("."))):
                self._flag(node, f"from {module} import ...")
            for alias in node.names:
                self.chronorec_names.add(alias.asname or alias.name)
                if _private(alias.name):
                    self._flag(node, f"from {module} import {alias.name}")

    def visit_Assign(self, node: ast.Assign) -> None:
        # a module setting of the library flipped from outside (blocks.ATTENTION = ...): a global
        # switch for benchmarks, where a configuration field or an argument belongs
        for target in node.targets:
            if isinstance(target, ast.Attribute) and target.attr.isupper():
                owner = _dotted(target.value)
                if owner.split(".")[0] in self.chronorec_names:
                    self._flag(node, f"{owner}.{target.attr} = ...")
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if _private(node.attr):
            owner = _dotted(node.value)
            own = owner in ("self", "cls") and self.classes > 0
            if not own and (owner, node.attr) not in ALLOWED_PRIVATE:
                self._flag(node, f"{owner or '<expression>'}.{node.attr}")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        # getattr(obj, "_name") / setattr / hasattr / delattr reach private members too
        if isinstance(node.func, ast.Name) and node.func.id in ("getattr", "setattr", "hasattr", "delattr"):
            if len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str):
                owner = _dotted(node.args[0])
                if _private(node.args[1].value) and not (owner in ("self", "cls") and self.classes > 0):
                    self._flag(node, f"{node.func.id}({owner or '<expression>'}, {node.args[1].value!r})")
        self.generic_visit(node)


def private_uses(path: Path) -> list[str]:
    visitor = PrivateUses(path)
    visitor.visit(ast.parse(path.read_text(), filename=str(path)))
    return visitor.found


def test_there_are_benchmarks_to_check():
    assert len(BENCHMARKS) >= 10 and ROOT / "benchmarks" / "profile_epoch.py" in BENCHMARKS


@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda p: p.name)
def test_benchmark_uses_public_names_only(path):
    assert private_uses(path) == []


def test_the_check_catches_each_kind_of_private_use(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from chronorec.models.sequential.losses import _ChunkedSoftmaxCE\n"
        "from chronorec.training._internal import thing\n"
        "import chronorec.nn.blocks as blocks\n"
        "model._remember(log)\n"
        "blocks._sdpa = None\n"
        "x = getattr(model, '_item_loss')\n"
        "blocks.ATTENTION = 'manual'\n"
        "def f(self):\n"
        "    return self._private\n"
        "class Mine:\n"
        "    def ok(self):\n"
        "        return self._own, cls._too, sys._getframe(), type(self).__name__\n"
    )
    found = private_uses(bad)
    assert [f.split(": ", 1)[1] for f in found] == [
        "from chronorec.models.sequential.losses import _ChunkedSoftmaxCE",
        "from chronorec.training._internal import ...",
        "model._remember",
        "blocks._sdpa",
        "getattr(model, '_item_loss')",
        "blocks.ATTENTION = ...",
        "self._private",  # a function's self outside any class of the script is someone else's object
    ]


def _loads_by_path(path: Path) -> list[str]:
    """Calls in a test file that load a file by path or put a folder on ``sys.path``, when the file
    names ``benchmarks``."""
    text = path.read_text()
    if "benchmarks" not in text:
        return []
    out = []
    for node in ast.walk(ast.parse(text, filename=str(path))):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        last = name.rsplit(".", 1)[-1]
        if last in LOADERS or name in PATH_CALLS:
            out.append((node.lineno, f"{path.name}:{node.lineno}: {name}(...)"))
    return [hit for _, hit in sorted(out)]


def test_no_test_loads_a_benchmark_script_by_path():
    files = [p for p in sorted((ROOT / "tests").rglob("*.py")) if p.name != Path(__file__).name]
    assert files
    assert [hit for p in files for hit in _loads_by_path(p)] == []


def test_the_path_check_catches_a_loader(tmp_path):
    t = tmp_path / "test_loader.py"
    t.write_text(
        "import importlib.util, sys\n"
        "spec = importlib.util.spec_from_file_location('x', 'benchmarks/peers.py')\n"
        "sys.path.insert(0, 'benchmarks')\n"
    )
    assert [h.split(": ", 1)[1] for h in _loads_by_path(t)] == [
        "importlib.util.spec_from_file_location(...)",
        "sys.path.insert(...)",
    ]
    (tmp_path / "test_fine.py").write_text("import subprocess\nsubprocess.run(['python', 'benchmarks/x.py'])\n")
    assert _loads_by_path(tmp_path / "test_fine.py") == []
