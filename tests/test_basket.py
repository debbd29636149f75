"""Baskets and sessions: basket-file ingest, the next-basket split and metrics, and its baselines."""

import json
import logging

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

import chronorec
from chronorec.cli.main import app
from chronorec.data import columns as C
from chronorec.data import read_events
from chronorec.data.eventlog import EventLog
from chronorec.errors import IngestError
from chronorec.evaluation.basket import (
    UNRANKED,
    basket_metrics,
    evaluate_baskets,
    next_basket_split,
    summarize,
)
from chronorec.evaluation.ranking import evaluate_ranking
from chronorec.evaluation.split import EvalSet, leave_one_out
from chronorec.models import registry


def _write(path, obj):
    path.write_text(json.dumps(obj))
    return path


# ---------------------------------------------------------------------- ingest
def test_basket_file_ingest_counts_shared_timestamps_and_basket_column(tmp_path):
    f = _write(tmp_path / "b.json", {"u1": [[1, 2], [3, 1]], "u2": [[4], [4, 5, 5], [6]], "u3": [[7], "oops"]})
    log = read_events(f)
    r = log.report
    # 2 + 2 + 1 + 3 + 1 + 1 items and one basket that is not a list
    assert (r.rows_read, r.rows_kept, r.rows_rejected, r.duplicates_removed) == (11, 9, 1, 1)
    assert r.rows_read == r.rows_kept + r.rows_rejected + r.duplicates_removed
    assert r.time_unit == "basket index" and "invalid basket file" in r.rejects["reason"][0]
    assert "'u3', basket 1" in r.rejects["reason"][0]
    assert log.context_columns == (C.BASKET,)
    ext = log.to_external_frame()
    u1 = ext[ext[C.USER] == "u1"]
    assert u1[C.ITEM].tolist() == [1, 2, 3, 1] and u1[C.TIME].tolist() == [0, 0, 1, 1]
    assert u1[C.BASKET].tolist() == ["0", "0", "1", "1"]
    u2 = ext[ext[C.USER] == "u2"]
    assert u2[C.TIME].tolist() == [0, 1, 1, 2]  # the repeated 5 of basket 1 is a duplicate


def test_sequence_file_and_a_keyed_object_that_is_neither_fail_or_read_short(tmp_path):
    log = read_events(_write(tmp_path / "s.json", {"a": [3, 1, 2], "b": [1]}))
    assert log.report.time_unit == "position" and log.context_columns == ()
    assert log.to_external_frame()[C.TIME].tolist() == [0, 1, 2, 0]
    wide = _write(tmp_path / "w.json", {f"k{i}": i for i in range(5000)})
    with pytest.raises(IngestError) as e:
        read_events(wide)
    msg = str(e.value)
    assert len(msg) < 1000 and "5,000 columns in all" in msg and "basket file must be one JSON object" in msg


def test_basket_and_session_columns_are_kept_canonical_and_missing_ones_rejected(tmp_path):
    f = tmp_path / "orders.csv"
    pd.DataFrame(
        {
            "cust": [1, 1, 1, 2, 2],
            "sku": ["a", "b", "a", "c", "d"],
            "ts": [10, 10, 20, 30, 30],
            "InvoiceNo": ["X1", "X1", "X2", "X3", None],
            "user_session": ["s1", "s1", "s2", "s3", "s3"],
        }
    ).to_csv(f, index=False)
    log = read_events(f, user_col="cust", item_col="sku", time_col="ts", basket_col="InvoiceNo",
                      session_col="user_session", time_unit="s")  # fmt: skip
    assert log.context_columns == (C.BASKET, C.SESSION)
    assert log.report.rejects_by_reason == {"missing basket": 1}
    assert log.to_external_frame()[C.BASKET].tolist() == ["X1", "X1", "X2", "X3"]
    with pytest.raises(IngestError, match="--basket-col"):
        read_events(f, user_col="cust", item_col="sku", time_col="ts", basket_col="Invoice")


# ---------------------------------------------------------------------- metrics
def test_metrics_on_a_hand_computed_example():
    top = np.array([[1, 2, 3], [4, 5, 0]])  # 0: an empty slot
    targets = [np.array([1, 3, 9]), np.array([6])]
    hist = [np.array([1, 7]), np.array([5])]
    per = basket_metrics(top, targets, hist, ks=(2, 3))
    idcg3 = 1 + 1 / np.log2(3) + 1 / np.log2(4)
    assert per["Recall@3"] == pytest.approx([2 / 3, 0])
    assert per["NDCG@3"] == pytest.approx([(1 + 1 / np.log2(4)) / idcg3, 0])
    assert per["NDCG@2"] == pytest.approx([1 / idcg3, 0])  # the ideal DCG of the whole basket, not cut at K
    assert per["PHR@3"].tolist() == [1, 0]
    assert per["RepRatio@3"] == pytest.approx([1 / 3, 1 / 3])
    assert per["Recall-rep@3"][0] == 1 and np.isnan(per["Recall-rep@3"][1])
    assert per["Recall-expl@3"] == pytest.approx([0.5, 0.0])
    m = summarize(per, (2, 3))
    assert m["Recall@3"] == pytest.approx(1 / 3) and m["PHR@3"] == 0.5
    assert m["Recall-rep@3"] == 1 and m["Recall-expl@3"] == pytest.approx(0.25)
    assert m["RepHitShare@3"] == pytest.approx(0.5) and m["RepHitShare@2"] == 1.0


def test_evaluate_baskets_scores_history_included_and_leaves_unranked_slots_empty():
    ev = EvalSet.build(np.array([1, 2]), [np.array([1, 7]), np.array([5])], [np.array([1, 3, 9]), np.array([6])], "t")

    def score(users, hist):
        s = torch.full((len(users), 10), UNRANKED)
        for r, u in enumerate(users):  # rows come in order of history length, not of the cases
            if u == 1:
                s[r, [1, 2, 3]] = torch.tensor([3.0, 2.0, 1.0])
            else:
                s[r, [4, 5]] = torch.tensor([2.0, 1.0])
        return s

    m = evaluate_baskets(score, ev, n_items=9, ks=(3,))
    assert m["Recall@3"] == pytest.approx(1 / 3) and m["PHR@3"] == 0.5  # item 1 (history) counts
    assert m["repeat_target_share"] == pytest.approx(1 / 4) and m["n_users"] == 2
    # with everything ranked, item 6 would fill user 2's third slot (ids in order): the empty slot stays empty
    assert m["Recall-expl@3"] == pytest.approx(0.25)


# ---------------------------------------------------------------------- split
def _baskets(n_users=30, seed=0):
    """Users with 4-6 baskets of 2-4 items (shared timestamps); the last basket repeats an old item."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        t = 1_700_000_000
        for _ in range(int(rng.integers(4, 7))):
            t += 86_400
            items = rng.choice(40, size=int(rng.integers(2, 5)), replace=False) + 1
            rows += [(u, int(i), t) for i in items]
    return EventLog.from_frame(pd.DataFrame(rows, columns=[C.USER, C.ITEM, C.TIME]))


def test_next_basket_split_holds_out_whole_baskets_without_leakage(caplog):
    log = _baskets()
    sp = next_basket_split(log)
    ev = log.events
    assert sp.protocol == "next-basket" and sp.settings["basket"] == C.TIME and len(sp.test) == 30
    for r, u in enumerate(sp.test.users):
        mine = ev[ev[C.USER_IDX] == u]
        times = np.sort(mine[C.TIME].unique())
        last = mine[mine[C.TIME] == times[-1]][C.ITEM_IDX].to_numpy()
        before = mine[mine[C.TIME] < times[-1]][C.ITEM_IDX].to_numpy()
        assert sorted(sp.test.targets([r])[0]) == sorted(last)  # the whole basket
        assert np.array_equal(sp.test.inputs([r])[0], before)  # none of its items is input
        second = mine[mine[C.TIME] == times[-2]][C.ITEM_IDX].to_numpy()
        assert sorted(sp.validation.targets([r])[0]) == sorted(second)
        assert np.array_equal(sp.validation.inputs([r])[0], mine[mine[C.TIME] < times[-2]][C.ITEM_IDX].to_numpy())
    assert sp.train.events[C.TIME].groupby(sp.train.events[C.USER_IDX]).nunique().min() >= 2
    assert len(sp.full) == len(log) - len(sp.test.target_items)
    with caplog.at_level(logging.WARNING, logger="chronorec.evaluation.split"):
        leave_one_out(log)
    assert "30 of 30 test targets" in caplog.text and "--split next-basket" in caplog.text


# ---------------------------------------------------------------------- models
def _neighbourhoods(n_users=60, seed=1):
    """Two tastes: each user buys a few items of their group's 10 again and again; the last basket
    also holds group items the user never bought, which the other users of the group did."""
    rng = np.random.default_rng(seed)
    data = {}
    for u in range(n_users):
        group = np.arange(1, 11) + 10 * (u % 2)
        own = rng.choice(group, size=4, replace=False)
        new = np.setdiff1d(group, own)
        baskets = [rng.choice(own, size=2, replace=False).tolist() for _ in range(5)]
        baskets[rng.integers(5)] += rng.choice(new, size=1).tolist()  # a taste of the group's other items
        baskets.append(rng.choice(new, size=3, replace=False).tolist())
        data[f"u{u}"] = [[int(i) for i in b] for b in baskets]
    return data


def test_tifuknn_beats_ptopfreq_where_neighbours_matter(tmp_path):
    log = read_events(_write(tmp_path / "n.json", _neighbourhoods()))
    sp = next_basket_split(log)
    res = {}
    for kind, params in (("ptopfreq", {}), ("gptopfreq", {}), ("tifuknn", {"neighbours": 10, "alpha": 0.3})):
        m = registry.get(kind)(**params).fit(sp.full)
        res[kind] = evaluate_baskets(m.score, sp.test, n_items=m.n_items, ks=(10,))
    assert res["ptopfreq"]["Recall-expl@10"] == 0  # only the user's own items
    assert res["tifuknn"]["Recall@10"] > res["ptopfreq"]["Recall@10"] + 0.3
    assert res["tifuknn"]["Recall-expl@10"] > 0.5 and res["tifuknn"]["Recall@10"] > res["gptopfreq"]["Recall@10"]


def test_tifuknn_chooses_parameters_on_validation_and_round_trips(tmp_path):
    log = read_events(_write(tmp_path / "n.json", _neighbourhoods()))
    sp = next_basket_split(log)
    m = registry.get("tifuknn")(neighbours=10, within_decay=0.9, group_decay=0.7, group_size=3).fit(
        sp.train, validation=sp.validation
    )
    assert sorted(row["alpha"] for row in m.fit_info["search"]) == [0.1, 0.3, 0.5, 0.7, 0.9, 1.0]
    assert m.fit_info["alpha"] < 1.0  # the neighbours help on this data
    m.save(tmp_path / "tifu")
    back = registry.get("tifuknn").load(tmp_path / "tifu")
    hist = sp.test.inputs(slice(0, 5))
    assert torch.allclose(m.score(sp.test.users[:5], hist), back.score(sp.test.users[:5], hist))
    with pytest.raises(ValueError):
        registry.get("tifuknn")(alpha=1.5)


def test_ptopfreq_ranks_own_items_by_count_and_gptopfreq_fills_with_popularity():
    log = EventLog.from_sequences({"a": [1, 2, 2, 3, 3, 3], "b": [4, 4, 4, 4, 5]})
    p = registry.get("ptopfreq")().fit(log)
    gp = registry.get("gptopfreq")().fit(log)
    hist = [log.items.to_internal(np.array([1, 2, 2, 3, 3, 3]))]
    sp_, sgp = p.score(np.array([1]), hist)[0], gp.score(np.array([1]), hist)[0]
    ids = log.items.to_internal(np.array([3, 2, 1, 4, 5]))
    assert torch.argsort(sp_, descending=True)[:3].tolist() == ids[:3].tolist()
    assert (sp_[ids[3:]] == UNRANKED).all()
    assert torch.argsort(sgp, descending=True)[:5].tolist() == ids.tolist()  # then 4 (4 events), 5


# ---------------------------------------------------------------------- CLI
def test_cli_trains_and_evaluates_on_the_next_basket_protocol(tmp_path):
    data = _write(tmp_path / "n.json", _neighbourhoods())

    def invoke(*args):
        return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "250", "NO_COLOR": "1"})

    for kind in ("ptopfreq", "tifuknn"):
        res = invoke("train", "--kind", kind, "--data", data, "--split", "next-basket", "--out", tmp_path / kind)
        assert res.exit_code == 0, res.output
        assert "next-basket: " in res.output
    out = tmp_path / "eval.json"
    res = invoke("evaluate", tmp_path / "ptopfreq", tmp_path / "tifuknn", "--data", data, "--split", "next-basket",
                 "--out", out)  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "next-basket on" in res.output and "| model | Recall@10 | NDCG@10 | PHR@10 |" in res.output
    payload = json.loads(out.read_text())
    assert payload["protocol"] == "next-basket" and payload["n_cases"] == 60
    r = payload["results"]
    assert r["tifuknn"]["test"]["Recall@10"] > r["ptopfreq"]["test"]["Recall@10"]
    res = invoke("evaluate", tmp_path / "ptopfreq", "--data", data, "--split", "loo")
    assert res.exit_code == 1 and "next-basket" in res.output  # trained on another protocol: refused


def test_leak_check_refuses_users_a_next_basket_model_trained_on_whole():
    from chronorec.evaluation.leak import EvaluationRefused, check_evaluation

    log = _baskets()
    trained = next_basket_split(log, min_baskets=5)
    model = registry.get("ptopfreq")().fit(trained.train).record_split(trained)
    assert check_evaluation("m", model, log, trained, trained.test)["leaks"] == []
    wider = next_basket_split(log, min_baskets=3)
    with pytest.raises(EvaluationRefused, match="min_baskets 3 < 5"):
        check_evaluation("m", model, log, wider, wider.test)


def test_training_validation_on_a_next_basket_split_is_the_number_evaluate_reports(tmp_path):
    """The epoch chooser and ``evaluate --split next-basket --part validation`` use one NDCG@10: the
    Reality Check's (whole basket in the ideal DCG), not the next-item one of evaluate_ranking."""
    rng = np.random.default_rng(3)  # two tastes of 40 items; baskets of 12, more than K = 10
    groups = [rng.choice(40, size=16, replace=False) + 1 + 40 * (u % 2) for u in range(80)]
    baskets = {
        f"u{u}": [rng.choice(g, size=12, replace=False).tolist() for _ in range(5)] for u, g in enumerate(groups)
    }
    data = _write(tmp_path / "n.json", {u: [[int(i) for i in b] for b in bs] for u, bs in baskets.items()})

    def invoke(*args):
        return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "250", "NO_COLOR": "1"})

    res = invoke(
        "train", "--kind", "sasrec", "--data", data, "--split", "next-basket", "--epochs", "3", "--no-progress",
        "-p", "dim=16", "-p", "max_len=30", "--out", tmp_path / "sasrec",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "validation next-basket NDCG@10 (ideal DCG of the whole basket) 0." in res.output
    model = chronorec.load(tmp_path / "sasrec")
    monitored = model.fit_info["best_val_ndcg10"]
    assert model.fit_info["validation_metric"].startswith("next-basket NDCG@10")
    out = tmp_path / "val.json"
    res = invoke("evaluate", tmp_path / "sasrec", "--data", data, "--split", "next-basket", "--part", "validation",
                 "--out", out)  # fmt: skip
    assert res.exit_code == 0, res.output
    evaluated = json.loads(out.read_text())["results"]["sasrec"]["validation"]["NDCG@10"]
    assert monitored > 0.05 and abs(evaluated - monitored) < 1e-6
    # the next-item NDCG (ideal DCG cut at min(10, |basket|)) is another number on the same lists
    sp = next_basket_split(read_events(data))
    next_item = evaluate_ranking(model, sp.validation, exclude_history=False)["NDCG@10"]
    assert abs(next_item - monitored) > 1e-3
