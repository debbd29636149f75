"""``chronorec calibrate`` on a global time split, and its leak check (the one ``evaluate`` runs).

The model is trained on a time split; calibrate on the same split fits the temperature on each
validation user's next item (the first event after the validation cut-off), which the test rebuilds
from the raw events and scores itself. Calibrating on data the model trained on is refused in one
line with exit code 1, naming the split to use.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from chronorec.cli.main import app

WIDE = {"COLUMNS": "250", "TERMINAL_WIDTH": "250", "NO_COLOR": "1"}
VAL, TEST = "2024-02-15", "2024-03-15"
SPLIT = ["--split", "temporal", "--cutoff", TEST, "--validation-cutoff", VAL]


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], env=WIDE)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Events of a synthetic shop (2024-01-01 .. 2024-04-01) and a SASRec trained on the time split."""
    from chronorec.datasets.synthetic import make_ecommerce_log

    d = tmp_path_factory.mktemp("calsplit")
    df = make_ecommerce_log(n_users=80, n_items=30, n_clusters=2, mean_length=12, seed=7, return_frame=True)
    df.to_csv(d / "events.csv", index=False)
    model_dir = d / "sas"
    res = invoke(
        "train", "--data", d / "events.csv", "--kind", "sasrec", "-p", "epochs=3", "-p", "dim=16",
        "-p", "max_len=20", "--seed", 0, *SPLIT, "--out", model_dir,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    return d, df, model_dir


def _next_item_cases(df: pd.DataFrame) -> tuple[list[str], list[list[str]], list[str], int]:
    """From the raw events: each user with events before VAL and in [VAL, TEST) -- its history before
    VAL and its first item in the window -- and the number of (user, distinct item) window targets."""
    v, t = (int(pd.Timestamp(x, tz="UTC").timestamp()) for x in (VAL, TEST))
    s = df.sort_values(["user_id", "timestamp"], kind="stable")
    users, inputs, firsts, n_targets = [], [], [], 0
    for u, g in s.groupby("user_id", sort=True):
        before, window = g[g.timestamp < v], g[(g.timestamp >= v) & (g.timestamp < t)]
        if len(before) and len(window):
            users.append(u)
            inputs.append(before["item_id"].tolist())
            firsts.append(window["item_id"].iloc[0])
            n_targets += window["item_id"].nunique()
    return users, inputs, firsts, n_targets


def test_multi_target_cases_calibrate_the_next_item_not_the_later_ones():
    """A window's first target follows softmax(z / 2.5), its later ones a flatter softmax(z / 8) (they
    are further from the input): the fitted temperature is the next item's, with one case per user."""
    import torch

    from chronorec.evaluation.split import EvalSet
    from chronorec.recommend import calibrate_temperature, next_item_cases

    rng = np.random.default_rng(1)
    n_items, n_cases = 30, 3000
    logits = rng.normal(0, 3, size=(n_cases, n_items + 1))

    class Fake:
        def score(self, users, histories):
            return torch.from_numpy(logits[users])

    def draw(row, temp, size):
        p = np.exp(row[2:] / temp)
        return 2 + rng.choice(n_items - 1, size=size, p=p / p.sum(), replace=False)

    targets = [np.concatenate([draw(row, 2.5, 1), draw(row, 8.0, 3)]) for row in logits]
    targets = [pd.unique(t) for t in targets]
    es = EvalSet.build(np.arange(n_cases), [np.array([1])] * n_cases, targets, "validation")
    assert not es.single_target
    firsts = next_item_cases(es)
    assert firsts.single_target and [t[0] for t in firsts.targets(slice(None))] == [t[0] for t in targets]
    res = calibrate_temperature(Fake(), es, exclude_history=True)
    assert res["temperature"] == pytest.approx(2.5, rel=0.1)
    assert res["n_cases"] == n_cases and res["targets"] == "first"
    assert res["n_targets"] == sum(len(t) for t in targets)
    pairs = EvalSet.build(
        np.repeat(np.arange(n_cases), [len(t) for t in targets]),
        [np.array([1])] * sum(len(t) for t in targets),
        [np.array([x]) for t in targets for x in t],
        "pairs",
    )
    assert (
        calibrate_temperature(Fake(), pairs, exclude_history=True)["temperature"] > 4.0
    )  # every pair a case: far too flat


def test_calibrate_fits_the_temperature_on_each_users_next_item_of_a_time_split(trained, tmp_path):
    d, df, model_dir = trained
    out = tmp_path / "recommend.json"
    res = invoke("calibrate", "--model", model_dir, "--data", d / "events.csv", *SPLIT, "--out", out)
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "recommend.report.json").read_text())
    cal, settings = report["calibration"], json.loads(out.read_text())
    assert report["protocol"] == "global-temporal"
    assert report["leak_check"]["checked"] is True and report["leak_check"]["leaks"] == []
    users, inputs, firsts, n_targets = _next_item_cases(df)
    assert report["validation_cases"] == {
        "n_cases": len(users),
        "n_targets": n_targets,
        "targets": "first after the cut-off per user",
    }
    assert n_targets > len(users) and cal["n_cases"] == len(users)  # several targets per user: one case each
    T = settings["temperature"]
    assert cal["nll_after"] < cal["nll_before"] and T != pytest.approx(1.0)

    # the NLL of the next item at T = 1 and at the fitted T, scored here on the cases rebuilt above
    import torch

    from chronorec.models.registry import load

    model = load(model_dir)
    hist = [model.items.to_internal(np.array(h)) for h in inputs]
    hist = [h[h > 0] for h in hist]
    with torch.inference_mode():
        scores = model.score(model.users.to_internal(np.array(users)), hist).double().numpy()
    target = model.items.to_internal(np.array(firsts))
    scores[:, 0] = -np.inf
    if model.exclude_history:  # the model's history protocol, as served: history items get no probability
        for r, h in enumerate(hist):
            scores[r, h] = -np.inf
    rankable = (target > 0) & np.isfinite(scores[np.arange(len(users)), target])
    assert cal["n_skipped"] == int((~rankable).sum()) and rankable.sum() >= 10

    def nll(temp):
        z = scores[rankable] / temp
        m = z.max(1, keepdims=True)
        lse = m[:, 0] + np.log(np.exp(z - m).sum(1))
        return float((lse - z[np.arange(len(z)), target[rankable]]).mean())

    assert cal["nll_before"] == pytest.approx(nll(1.0), rel=1e-6)
    assert cal["nll_after"] == pytest.approx(nll(T), rel=1e-6)
    assert nll(T) <= min(nll(T * 0.8), nll(T * 1.25))  # the fitted T is the minimum, not just better than 1


@pytest.mark.parametrize(
    ("split", "problem"),
    [
        (
            ["--split", "temporal", "--cutoff", TEST, "--validation-cutoff", "2024-02-01"],
            "is at or after the validation cut-off (2024-02-01 00:00:00 UTC)",
        ),
        ([], "it was trained on a 'global-temporal' split, evaluated on 'leave-one-out'"),
    ],
)
def test_calibrate_refuses_validation_data_the_model_trained_on(trained, tmp_path, split, problem):
    d, _, model_dir = trained
    out = tmp_path / "recommend.json"
    res = invoke("calibrate", "--model", model_dir, "--data", d / "events.csv", *split, "--out", out)
    assert res.exit_code == 1
    lines = res.output.strip().splitlines()
    assert len(lines) == 1, res.output
    assert lines[0].startswith(f"error: {model_dir}: refusing a leaked calibration: ") and problem in lines[0]
    assert lines[0].endswith(
        "(calibrate on the split it was trained on: --split temporal --cutoff 2024-03-15T00:00:00Z "
        "--validation-cutoff 2024-02-15T00:00:00Z)"
    )
    assert not out.exists() and not list(tmp_path.iterdir())  # nothing written


def test_calibrate_refuses_a_model_trained_on_all_events(trained, tmp_path):
    d, _, _ = trained
    model_dir = tmp_path / "knn"
    res = invoke("train", "--data", d / "events.csv", "--kind", "itemknn", "--full", "--out", model_dir)
    assert res.exit_code == 0, res.output
    res = invoke("calibrate", "--model", model_dir, "--data", d / "events.csv", "--out", tmp_path / "r.json")
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1, res.output
    assert "refusing a leaked calibration: it was trained on a 'all events' split" in res.output
    assert (
        "trained on all events (train --full or --refit-from), so no held-out data is left to calibrate on: "
        "calibrate the model trained on a split (the one it was refit from) on that split" in res.output
    )
    assert not (tmp_path / "r.json").exists()


def test_calibrate_says_when_a_time_split_has_no_validation_window(trained, tmp_path):
    d, _, model_dir = trained
    res = invoke("calibrate", "--model", model_dir, "--data", d / "events.csv", "--split", "temporal",
                 "--cutoff", VAL, "--out", tmp_path / "r.json")  # fmt: skip
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1, res.output
    assert "has no validation case to calibrate on (its validation window is empty: give --validation-cutoff" in (
        res.output
    )
