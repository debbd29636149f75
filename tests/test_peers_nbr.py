"""The pure parts of the next-basket peer comparison (benchmarks/peers_nbr.py and its runner), in
chronorec.testing.peers_nbr and chronorec.testing.nbr_side: no peer repository, peer venv or benchmark
data needed."""

from __future__ import annotations

import pytest

from chronorec.testing import nbr_side as runner
from chronorec.testing import peers_nbr


def test_history_rows_number_baskets_from_one_and_drop_the_markers():
    history = {"1": [[-1], [0, 1, 2], [3], [-1]], "2": [[-1], [5, 0], [-1]]}
    assert runner.history_rows(history) == [(1, 1, 0), (1, 1, 1), (1, 1, 2), (1, 2, 3), (2, 1, 5), (2, 1, 0)]


def test_parse_repeat_eval_reads_what_model_performance_prints():
    printed = (
        "0 0.1234\n"
        "basket size: 10\n"
        "recall, ndcg, hit: 0.1234 0.1111 0.4321\n"
        "repeat-explore ratio: 0.75 0.25\n"
        "repeat-explore recall 0.3 0.01\n"
        "repeat-explore hit: 0.5 0.02\n"
    )
    assert runner.parse_repeat_eval(printed) == {
        "recall": 0.1234,
        "ndcg": 0.1111,
        "phr": 0.4321,
        "repeat_ratio": 0.75,
        "explore_ratio": 0.25,
        "recall_repeat": 0.3,
        "recall_explore": 0.01,
        "phr_repeat": 0.5,
        "phr_explore": 0.02,
    }
    with pytest.raises(SystemExit, match="printed no figures"):
        runner.parse_repeat_eval("basket size: 10\n")


def _figures(r: float) -> dict[str, float]:
    return {
        "recall": r,
        "ndcg": r / 2,
        "phr": 3 * r,
        "repeat_ratio": 0.9,
        "explore_ratio": 0.1,
        "recall_repeat": 0.3,
        "recall_explore": 0.01,
        "phr_repeat": 0.4,
        "phr_explore": 0.02,
        "recall_from_repeat_predictions": r - 0.01,
        "recall_from_explore_predictions": 0.01,
    }


def test_table_lists_every_method_and_k_with_the_command():
    result = {
        "command": "python benchmarks/peers_nbr.py",
        "started_at": "2026-01-01T00:00:00",
        "protocol": peers_nbr.PROTOCOL,
        "data": {"file": "t.json", "n_users": 10, "n_items": 5, "n_baskets": 40, "sha256": "ab" * 32},
        "split": {"how": "seeded", "n_train": 7, "n_val": 1, "n_test": 2},
        "split_file": "benchmarks/results/tafeng-reality-check-split.json",
        "peer": {"url": peers_nbr.PEER_URL, "commit": "c0ffee"},
        "versions": {"python": "3.11", "numpy": "2"},
        "published": {"source": peers_nbr.PUBLISHED_SOURCE, "figures": {}},
        "machine": {"cpu_count": 2, "loadavg_start": [3.0, 2, 1], "loadavg_end": [4.25, 2, 1]},
        "preparation": {"history_csv": "theirs, as stored"},
        "methods": {
            "P-TopFreq": {"wall_seconds": 12.3, "test": {"10": _figures(0.1), "20": _figures(0.2)}},
            "TIFU-KNN": {"wall_seconds": 99.0, "test": {"10": _figures(0.11), "20": _figures(0.21)}},
        },
    }
    text = peers_nbr.table(result)
    assert "| P-TopFreq | 0.1000 | 0.0500 | 0.3000 | 0.2000 | 0.1000 | 0.6000 | 12 |" in text
    assert "| TIFU-KNN | 20 | 0.900 | 0.3000 / 0.0100 | 0.4000 / 0.0200 | 0.2000 / 0.0100 |" in text
    assert "7 train / 1 validation / 2 test users" in text and "c0ffee" in text
    assert "load average 3.0 / 4.2 at start / end" in text and "theirs, as stored" in text
    assert text.rstrip().endswith("(started 2026-01-01T00:00:00).")
