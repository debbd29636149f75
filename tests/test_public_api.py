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
