"""The pure parts of the peer comparison (benchmarks/peers.py, benchmarks/peers_replay.py), in
chronorec.testing.peers and chronorec.testing.replay_side: no peer venv and no benchmark data needed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chronorec.testing import peers
from chronorec.testing import replay_side as runner


def test_runner_split_matches_chronorec_leave_one_out(tmp_path):
    from chronorec.datasets.formats import load_sequence_file
    from chronorec.evaluation.split import leave_one_out

    f = tmp_path / "seq.txt"
    f.write_text("1 5 6 7 8\n2 9 5 6\n3 4 4 2\n1 2\n4 3\n")  # user 1 continues on a later line; user 4 too short
    _, seqs = runner.read_sequences(f)
    ours = runner.leave_one_out(seqs)
    theirs = leave_one_out(load_sequence_file(f))
    back = lambda idx: theirs.train.items.to_external(idx).tolist()  # noqa: E731
    assert len(ours["rows"]) == len(theirs.test) == 3
    for r in range(3):
        assert ours["test_inputs"][r].tolist() == back(theirs.test.inputs([r])[0])
        assert int(ours["test_targets"][r]) == back(theirs.test.targets([r])[0])[0]
        assert ours["val_inputs"][r].tolist() == back(theirs.validation.inputs([r])[0])
    assert ours["test_inputs"][0].tolist() == [5, 6, 7, 8]
    assert int(ours["test_targets"][0]) == 2  # user 1's two lines are one sequence
    assert ours["train"][3].tolist() == [3]  # too short to evaluate: kept whole in training


def test_runner_ranks_match_chronorec_evaluation():
    from chronorec.evaluation.ranking import evaluate_ranking
    from chronorec.evaluation.split import EvalSet

    rng = np.random.default_rng(0)
    n_items, n_users = 30, 40
    scores = torch.from_numpy(rng.integers(0, 6, size=(n_users, n_items)).astype(np.float32))  # many ties
    hist = [rng.choice(n_items, size=rng.integers(1, 6), replace=False) for _ in range(n_users)]
    targets = rng.integers(0, n_items, size=n_users)
    # chronorec's ids are the runner's codes + 1 (0 is padding there)
    evalset = EvalSet.build(np.arange(1, n_users + 1), [h + 1 for h in hist], [[t + 1] for t in targets], "test")

    def score_fn(users, _hist):
        full = torch.zeros(len(users), n_items + 1)
        full[:, 1:] = scores[torch.as_tensor(users - 1)]
        return full

    for exclude in (True, False):
        want = evaluate_ranking(score_fn, evalset, n_items=n_items, ks=(10,), exclude_history=exclude)
        ranks = runner.pessimistic_ranks(scores.clone(), targets, hist if exclude else None)
        got = runner.figures(ranks)
        assert got["NDCG@10"] == pytest.approx(want["NDCG@10"])
        assert got["HR@10"] == pytest.approx(want["HR@10"])


def test_left_pad_keeps_the_last_items():
    out = runner.left_pad([np.array([1, 2, 3, 4]), np.array([7]), np.array([], dtype=np.int64)], 3, 9)
    assert out.tolist() == [[2, 3, 4], [9, 9, 7], [9, 9, 9]]


def _side(model, secs, vals, ndcg):
    return {
        "model": model,
        "history": [
            {"epoch": i + 1, "seconds": s, "val_ndcg10": v} for i, (s, v) in enumerate(zip(secs, vals, strict=True))
        ],
        "best_epoch": int(np.argmax(vals)) + 1,
        "test": {"NDCG@10": ndcg, "HR@10": 2 * ndcg},
        "test_filtered": {"NDCG@10": ndcg + 0.01, "HR@10": 2 * ndcg + 0.01},
        "loadavg_start": [2.0, 2.0, 2.0],
        "loadavg_end": [3.0, 2.0, 2.0],
        "cpu_share": 0.5,
        "threads": 2,
    }


def test_time_to_common_quality_and_ratios():
    chrono = _side("chronorec", [10, 10, 10, 10], [0.05, 0.08, 0.10, 0.12], 0.09)
    replay = _side("replay", [50, 50], [0.04, 0.09], 0.045)
    c = peers.compare(chrono, replay)
    assert c["common_val_ndcg10"] == pytest.approx(0.09)  # the lower of the two bests
    assert c["seconds_to_common"] == {"chronorec": 30.0, "peer": 100.0}  # end of the first epoch reaching it
    assert c["time_to_common_speedup"] == pytest.approx(100 / 30)
    assert c["epoch_speedup"] == pytest.approx(5.0)
    assert c["ndcg_ratio_unfiltered"] == pytest.approx(2.0)
    assert c["chronorec"]["epoch_cpu_seconds_est"] == pytest.approx(10.0)  # 10 s x 0.5 share x 2 threads
    assert c["epoch_cpu_speedup_est"] == pytest.approx(5.0)
    assert all(c["bars"].values())
    slow = peers.compare(_side("chronorec", [30], [0.05], 0.05), replay)
    assert not any(slow["bars"].values())
    assert peers.time_to_quality(peers.curve(replay["history"]), 0.5) is None


def test_table_names_figures_protocol_and_command():
    chrono = _side("chronorec SASRec preset (3 x 64, bfloat16)", [10, 12, 11], [0.05, 0.08, 0.1], 0.0762)
    replay = _side("RePlay SasRec (2 x 64, 2 heads, fp32)", [70, 71], [0.04, 0.06], 0.0548)
    result = {
        "command": "python benchmarks/peers.py --budget-s 420",
        "started_at": "2026-12-03T08:00:00+0000",
        "protocol": peers.PROTOCOL,
        "data": {"file": "ml-1m/ml-1m.txt", "n_users": 6040, "n_items": 3416},
        "budget_s": 420.0,
        "threads": 2,
        "order": ["chronorec", "replay"],
        "machine": {"cpu_count": 2},
        "sides": {"chronorec": chrono, "replay": replay},
        "comparison": peers.compare(chrono, replay),
    }
    text = peers.table(result)
    assert "| training seconds per epoch (median) | 11.0 | 70.5 | 6.41x shorter |" in text
    assert "0.0762 / 0.1524" in text and "0.0548 / 0.1096" in text
    assert "1.39x" in text  # 0.0762 / 0.0548
    assert "leave-one-out" in text and "python benchmarks/peers.py --budget-s 420" in text
    assert "| load average (1 min) at start / end | 2.0 / 3.0 | 2.0 / 3.0 |  |" in text
    assert "not met" in text  # the quality ratio is below 1.6


def test_common_quality_needs_every_curve():
    assert peers.common_quality([[(1.0, 0.1)], []]) is None
    assert peers.median([3.0, 1.0, 2.0, 10.0]) == 2.5
