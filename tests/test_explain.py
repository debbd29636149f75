"""Explanations for every model kind, item names in the batch output, the batch command's warnings and
``source`` column, and the training curve written by ``chronorec train``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from chronorec.cli.main import app
from chronorec.data.eventlog import EventLog
from chronorec.models.baselines.ease import EASE
from chronorec.models.baselines.itemknn import ItemKNN
from chronorec.models.baselines.popular import MostPopular
from chronorec.recommend import RecommendOptions, RecommendPipeline

# a and b always come together, c and d always together; e is everywhere (popular, similar to nothing)
SEQS = {f"u{i}": ["a", "b", "e"] for i in range(6)} | {f"v{i}": ["c", "d", "e"] for i in range(4)}
NAMES = {"a": "Apple", "b": "Banana", "c": "Cherry", "d": "Date", "e": "Elder"}


@pytest.fixture(scope="module")
def log():
    return EventLog.from_sequences(SEQS, item_names=NAMES)


def rank(model, history, **opts):
    pipe = RecommendPipeline(model)
    hist = pipe.known_items(history, [])
    return pipe, pipe.rank(np.zeros(1, np.int64), [hist], RecommendOptions(explain=True, **opts))[0]


def test_itemknn_names_the_history_items_that_voted_with_their_votes(log):
    model = ItemKNN(shrink=0.0).fit(log)
    pipe, got = rank(model, ["c", "a"], k=3)
    ext = pipe.external(got.items).tolist()
    assert sorted(ext) == ["b", "d", "e"] and ext[0] == "e"  # e is near both history items
    assert got.basis == "contribution"
    why = {x: [str(pipe.external([j])[0]) for j, _ in pairs] for x, pairs in zip(ext, got.explanations, strict=True)}
    assert why["b"] == ["a"] and why["d"] == ["c"] and sorted(why["e"]) == ["a", "c"]  # who voted
    raw = model.score(np.zeros(1, np.int64), [pipe.known_items(["c", "a"], [])])[0]
    for item, pairs in zip(got.items, got.explanations, strict=True):
        assert sum(w for _, w in pairs) == pytest.approx(float(raw[item]))  # the votes add up to the score
    assert got.reasons[ext.index("b")].startswith("from your history: Apple (+")  # names, not ids


def test_ease_contributions_add_up_to_the_score(log):
    model = EASE(l2=1.0).fit(log)
    pipe, got = rank(model, ["a"], k=1, n_explain=5)
    assert pipe.external(got.items).tolist() == ["b"]
    raw = model.score(np.zeros(1, np.int64), [pipe.known_items(["a"], [])])[0]
    assert got.explanations[0][0][1] == pytest.approx(float(raw[got.items[0]]))
    assert "Apple" in got.reasons[0]


def test_popular_says_what_it_is_popular_in(log):
    pipe, got = rank(MostPopular().fit(log), ["a"], k=2)
    assert pipe.external(got.items).tolist() == ["e", "b"]
    assert got.reasons[0] == "popular: 10 training events, rank 1 of 5"
    assert got.reasons[1] == "popular: 6 training events, rank 2 of 5"
    timed = EventLog.from_frame(
        pd.DataFrame(
            {
                "user_id": ["x", "x", "y", "y"],
                "item_id": ["a", "b", "b", "c"],
                "timestamp": [0, 86400, 2 * 86400, 3 * 86400],
            }
        )
    )
    recent = MostPopular(recent_share=0.5).fit(timed)
    reason = rank(recent, [], k=1)[1]
    assert reason.strategy == "popularity" and reason.reasons[0].startswith("popular: ")
    pipe, got = rank(recent, ["a"], k=1)
    assert "most recent 50% of training (since 1970-01-02)" in got.reasons[0]


def test_a_cold_start_list_says_it_is_popular(log):
    pipe, got = rank(ItemKNN().fit(log), [], k=1)
    assert got.strategy == "popularity" and got.reasons == ["popular: 10 events (rank 1 of 5)"]


def test_neural_explanations_keep_their_embedding_similarity():
    from chronorec.data.idmap import IdMap
    from chronorec.models.sequential.sasrec import SASRec

    model = SASRec.__new__(SASRec)  # a neural model's item embedding alone: the rows of 3 items
    model.module = torch.nn.Module()
    model.module.item_emb = torch.nn.Embedding(4, 2)
    with torch.no_grad():
        model.module.item_emb.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    model.items = IdMap(["a", "b", "c"])
    p = RecommendPipeline.__new__(RecommendPipeline)
    p.model, p._emb, p.item_table = model, False, None
    assert [j for j, _ in p.explain(np.array([1, 2]), np.array([3]), n=2)[0]] == [2, 1]


# ---------------------------------------------------------------------- the batch command
@pytest.fixture(scope="module")
def knn_dir(log, tmp_path_factory):
    d = tmp_path_factory.mktemp("m") / "knn"
    ItemKNN(shrink=0.0).fit(log).save(d)
    return d


def test_cli_explanations_show_item_names(knn_dir, tmp_path):
    out = tmp_path / "r.csv"
    res = CliRunner().invoke(
        app,
        ["recommend", "-m", str(knn_dir), "--users", "u0", "-k", "2", "--explain", "--include-seen", "-o", str(out)],
    )
    assert res.exit_code == 0, res.output
    got = pd.read_csv(out)
    assert list(got.columns) == ["user_id", "item_id", "score", "rank", "source", "item_name", "explanation"]
    assert got["explanation"].str.contains("Apple|Banana|Elder").all()
    assert not got["explanation"].str.contains(r"\ba\b|\bb\b").any()  # names, not bare ids


def test_cli_batch_warns_and_marks_the_popularity_rows(knn_dir, tmp_path):
    res = CliRunner().invoke(app, ["recommend", "-m", str(knn_dir), "--history", "a,zzz", "-k", "2"])
    assert res.exit_code == 0, res.output
    assert "warning: history: 1 unknown item ids ignored: ['zzz']" in res.output
    out = tmp_path / "r.csv"
    res = CliRunner().invoke(app, ["recommend", "-m", str(knn_dir), "--history", "zzz,yyy", "-k", "2", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "none of its items is known" in res.output and "answered from popularity" in res.output
    assert set(pd.read_csv(out)["source"]) == {"popularity"}
    out = tmp_path / "mixed.csv"
    res = CliRunner().invoke(app, ["recommend", "-m", str(knn_dir), "--users", "u0,nobody", "-k", "2", "-o", str(out)])
    got = pd.read_csv(out)
    assert dict(zip(got["user_id"], got["source"], strict=False)) == {"u0": "model", "nobody": "popularity"}
    assert "1 of 2 users are unknown to the model" in res.output


# ---------------------------------------------------------------------- training curve
def test_train_writes_a_training_curve_and_the_service_still_accepts_the_folder(tmp_path):
    from chronorec.datasets.synthetic import make_sequences
    from chronorec.serving.service import check_model_dir

    events = tmp_path / "events.csv"
    make_sequences(n_users=40, n_items=20, seed=0, mean_length=8).events.rename(
        columns={"user_idx": "u", "item_idx": "i"}
    )[["u", "i", "timestamp"]].to_csv(events, index=False)
    out = tmp_path / "model"
    args = ["train", "--data", str(events), "--user-col", "u", "--item-col", "i", "--time-col", "timestamp"]
    res = CliRunner().invoke(app, [*args, "--kind", "gru4rec", "--epochs", "2", "-p", "dim=8", "-o", str(out)])
    assert res.exit_code == 0, res.output
    png = out / "training_curve.png"
    assert f"Training curve (loss and validation per epoch): {png}" in res.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert check_model_dir(out)["kind"] == "gru4rec"
    res = CliRunner().invoke(app, [*args, "--kind", "popular", "-o", str(tmp_path / "pop")])
    assert res.exit_code == 0 and not (tmp_path / "pop" / "training_curve.png").exists()  # no epochs, no curve
