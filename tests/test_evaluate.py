import math

import numpy as np
import pytest
import torch

from chronorec.evaluation.ranking import evaluate_ranking, ranking_metrics_from_ranks
from chronorec.evaluation.split import EvalSet


def test_metrics_from_ranks_hand_computed():
    m = ranking_metrics_from_ranks(np.array([1, 3, 11]), ks=(10,))
    assert m["HR@10"] == pytest.approx(2 / 3)
    assert m["NDCG@10"] == pytest.approx((1.0 + 1 / math.log2(4)) / 3)
    assert m["MRR@10"] == pytest.approx((1.0 + 1 / 3) / 3)


def _fixed_scores(table):
    table = torch.tensor(table, dtype=torch.float32)

    def score(users, histories):
        return table[torch.as_tensor(users) - 1].clone()

    return score


def test_full_ranking_excludes_history_and_padding():
    # 5 items (+ padding column 0). User 1 history [1], target 3; item 1 has the top score
    # but is excluded, item 2 outranks the target -> rank 2.
    scores = [[99.0, 10.0, 5.0, 4.0, 1.0, 0.0]]
    ev = EvalSet.build(np.array([1]), [np.array([1])], [np.array([3])], "t")
    m = evaluate_ranking(_fixed_scores(scores), ev, n_items=5, ks=(1, 2))
    assert m["HR@1"] == 0.0
    assert m["HR@2"] == 1.0
    assert m["NDCG@2"] == pytest.approx(1 / math.log2(3))
    # without exclusion item 1 counts too -> rank 3
    m2 = evaluate_ranking(_fixed_scores(scores), ev, n_items=5, ks=(2, 3), exclude_history=False)
    assert m2["HR@2"] == 0.0 and m2["MRR@3"] == pytest.approx(1 / 3)


def test_ties_count_against_the_target():
    scores = [[0.0, 1.0, 1.0, 1.0, 0.5, 0.0]]
    ev = EvalSet.build(np.array([1]), [np.array([], dtype=np.int64)], [np.array([2])], "t")
    m = evaluate_ranking(_fixed_scores(scores), ev, n_items=5, ks=(1, 2, 3))
    # two other items tie with the target -> pessimistic rank 3
    assert (m["HR@2"], m["HR@3"]) == (0.0, 1.0)


def test_multi_target_recall_and_coverage():
    scores = [[0.0, 5.0, 4.0, 3.0, 2.0, 1.0], [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]]
    ev = EvalSet.build(np.array([1, 2]), [np.array([], dtype=np.int64)] * 2, [np.array([2, 5]), np.array([5, 4])], "t")
    m = evaluate_ranking(_fixed_scores(scores), ev, n_items=5, ks=(2,))
    # user 1: top2 = [1, 2] -> one of two targets; user 2: top2 = [5, 4] -> both
    assert m["Recall@2"] == pytest.approx((0.5 + 1.0) / 2)
    assert m["HR@2"] == 1.0
    ideal = 1 + 1 / math.log2(3)
    assert m["NDCG@2"] == pytest.approx(((1 / math.log2(3)) / ideal + 1.0) / 2)
    assert m["Coverage@2"] == pytest.approx(4 / 5)


def test_multi_target_metrics_match_a_per_case_count_on_random_cases():
    """The batched multi-target metrics against a plain per-case computation (MRR, NDCG with the
    ideal DCG of min(K, n targets) hits, Recall over min(K, n targets))."""
    rng = np.random.default_rng(0)
    n_items, n = 40, 300
    table = rng.normal(size=(n, n_items + 1)).astype(np.float32)
    targets = [rng.choice(np.arange(1, n_items + 1), rng.integers(1, 15), replace=False) for _ in range(n)]
    ev = EvalSet.build(np.arange(1, n + 1), [np.array([], dtype=np.int64)] * n, targets, "t")
    m, per = evaluate_ranking(
        _fixed_scores(table), ev, n_items=n_items, ks=(5, 10), return_per_user=True, batch_size=64
    )
    for k in (5, 10):
        expect = {"HR": [], "Recall": [], "NDCG": [], "MRR": []}
        for r, t in enumerate(targets):
            order = np.argsort(-table[r, 1:], kind="stable")[:k] + 1
            hit = np.isin(order, t)
            expect["HR"].append(float(hit.any()))
            expect["Recall"].append(hit.sum() / min(k, len(t)))
            dcg = (hit / np.log2(np.arange(2, k + 2))).sum()
            expect["NDCG"].append(dcg / (1 / np.log2(np.arange(2, min(k, len(t)) + 2))).sum())
            expect["MRR"].append(1 / (np.argmax(hit) + 1) if hit.any() else 0.0)
        for name, values in expect.items():
            assert per[f"{name}@{k}"] == pytest.approx(np.array(values)), (name, k)
            assert m[f"{name}@{k}"] == pytest.approx(np.mean(values))


def test_paired_test_detects_a_real_difference_and_not_a_null_one():
    from chronorec.evaluation.stats import paired_test

    rng = np.random.default_rng(0)
    base = (rng.random(2000) < 0.2).astype(float)
    better = np.where(rng.random(2000) < 0.15, 1.0, base)  # strictly more hits on the same users
    res = paired_test(base, better)
    assert res["diff"] > 0 and res["ci_low"] > 0
    assert res["t_test_p"] < 1e-6 and res["wilcoxon_p"] < 1e-6
    assert abs(res["diff"] - (better.mean() - base.mean())) < 1e-12
    same = paired_test(base, base.copy())
    assert same["t_test_p"] == 1.0 and same["wilcoxon_p"] == 1.0 and same["ci_low"] == same["ci_high"] == 0.0
    shuffled = paired_test(base, rng.permutation(base))  # same distribution, no real difference
    assert shuffled["ci_low"] < 0 < shuffled["ci_high"] and shuffled["t_test_p"] > 0.01


def test_benchmark_aggregate_groups_seeds_with_sample_std(tmp_path):
    import json

    from typer.testing import CliRunner

    from chronorec.cli import app

    runs = tmp_path / "runs"
    runs.mkdir()
    base = {"dataset": "ml-1m", "train_seconds": 1.0, "eval_seconds": 1.0, "peak_rss_mb": 1.0}
    for seed, ndcg in ((0, 0.17), (1, 0.18), (2, 0.19)):
        t = {"HR@10": 2 * ndcg, "NDCG@10": ndcg, "MRR@10": ndcg / 2}
        (runs / f"ml-1m-sasrec-seed{seed}-h.json").write_text(json.dumps({**base, "seed": seed, "test": t}))
    t = {"HR@10": 0.1, "NDCG@10": 0.05, "MRR@10": 0.03}
    (runs / "ml-1m-popular-seed0-a.json").write_text(json.dumps({**base, "seed": 0, "test": t}))
    (runs / "cold_start-x.json").write_text(json.dumps({"kind": "cold"}))  # not a benchmark run: skipped
    res = CliRunner().invoke(app, ["benchmark", "--aggregate", "--out", str(tmp_path), "--tag", "all"])
    assert res.exit_code == 0, res.output
    assert "| ml-1m | sasrec-h | 0,1,2 | 0.1800 | 0.0100 |" in res.output  # the summary table is printed
    groups = json.loads((tmp_path / "summary-all.json").read_text())["seed_groups"]
    assert len(groups) == 1 and groups[0]["model"] == "sasrec-h" and groups[0]["seeds"] == [0, 1, 2]
    assert groups[0]["NDCG@10_mean"] == pytest.approx(0.18) and groups[0]["NDCG@10_std"] == pytest.approx(0.01)
    assert "| ml-1m | sasrec-h | 0,1,2 | 0.1800 | 0.0100 |" in (tmp_path / "summary-all.md").read_text()
