"""Every public name of ``chronorec`` imports, and ``from chronorec import *`` works."""

import importlib

import chronorec


def test_every_name_in_all_resolves():
    missing = [name for name in chronorec.__all__ if not hasattr(chronorec, name)]
    assert missing == []
    assert chronorec.read_events is importlib.import_module("chronorec.data.eventlog").read_events
    assert chronorec.BuyAgain().config.kind == "buyagain"


def test_star_import():
    namespace: dict = {}
    exec("from chronorec import *", namespace)  # noqa: S102 - the statement under test, a fixed string
    assert {"EventLog", "SASRec", "read_events", "load", "evaluate_ranking"} <= set(namespace)


def test_type_checkers_see_every_public_name_where_it_loads_from():
    """The ``if TYPE_CHECKING:`` imports name every lazy export, from the module it loads from, so
    ``from chronorec import EASE`` has a type for mypy / pyright and IDEs; a py.typed marker ships."""
    import ast
    from pathlib import Path

    src = Path(chronorec.__file__)
    tree = ast.parse(src.read_text(encoding="utf-8"))
    guarded: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom)
                guarded |= {a.name: imp.module for a in imp.names}
    assert guarded == chronorec._EXPORTS
    assert (src.parent / "py.typed").exists()
