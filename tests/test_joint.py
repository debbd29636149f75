"""The joint what-and-when sequence model (models/sequential/joint.py) learns planted structure: the next
item follows the last one, a cart is followed by a buy within the hour and a page view is not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from chronorec.data.eventlog import EventLog
from chronorec.errors import ConfigError
from chronorec.evaluation.classification import roc_auc
from chronorec.models.registry import load
from chronorec.models.sequential.joint import JointSASRec, event_time_targets

N_ITEMS = 40
T0 = 1_700_000_000


def _user(rng: np.random.Generator, n: int) -> list[tuple[int, str, int]]:
    """(item, behaviour, time) events: items step +1 (mod N_ITEMS); a page view is followed by another
    page view or a cart hours later; a cart by a buy of its item 5-30 minutes later."""
    item, t, out = int(rng.integers(N_ITEMS)), T0 + int(rng.integers(86_400)), []
    beh = "pv"
    for _ in range(n):
        out.append((item, beh, t))
        if beh == "cart":
            beh, t = "buy", t + int(rng.integers(300, 1800))
        else:
            item = (item + 1) % N_ITEMS
            beh = "cart" if rng.random() < 0.3 else "pv"
            t += int(rng.integers(3 * 3600, 9 * 3600))
    return out


def _log(n_users: int, seed: int, length: int = 24) -> tuple[pd.DataFrame, dict[str, list]]:
    rng = np.random.default_rng(seed)
    rows, seqs = [], {}
    for u in range(n_users):
        ev = _user(rng, length)
        seqs[f"u{u}"] = ev
        rows += [(f"u{u}", f"i{i}", t, b) for i, b, t in ev]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "behavior"]), seqs


@pytest.fixture(scope="module")
def fitted():
    torch.set_num_threads(1)
    df, _ = _log(160, seed=1)
    log = EventLog.from_frame(df)
    params = {"dim": 32, "max_len": 20, "epochs": 25, "patience": 25, "lr": 5e-3, "dropout": 0.1}
    model = JointSASRec(**params, context_features=["behavior", "gap"], seed=0, progress=False).fit(log)
    return model, log


def _cases(model: JointSASRec, log: EventLog, seed: int):
    """Held-out users cut after a random event: internal histories, their context, the cut-off (60 s
    after the last event), the next item and whether a buy follows within the hour."""
    _, seqs = _log(120, seed=seed)
    rng = np.random.default_rng(seed)
    beh_code = {b: i + 1 for i, b in enumerate(model.context_vocab["behavior"])}
    hist, ctx, at, nxt, buy = [], [], [], [], []
    for ev in seqs.values():
        k = int(rng.integers(4, len(ev) - 1))
        past = ev[:k]
        hist.append(log.items.to_internal(np.array([f"i{i}" for i, _, _ in past])))
        ctx.append(
            {"behavior": np.array([beh_code[b] for _, b, _ in past]), "timestamp": np.array([t for *_, t in past])}
        )
        at.append(past[-1][2] + 60)
        nxt.append(int(log.items.to_internal(np.array([f"i{ev[k][0]}"]))[0]))
        buy.append(ev[k][1] == "buy" and ev[k][2] < at[-1] + 3600)
    return hist, ctx, np.array(at), np.array(nxt), np.array(buy)


def test_the_joint_model_learns_planted_items_behaviours_and_buy_timing(fitted):
    model, log = fitted
    hist, ctx, at, nxt, buy = _cases(model, log, seed=7)
    users = np.zeros(len(hist), np.int64)
    scores = model.score(users, hist, ctx).numpy()
    scores[:, 0] = -np.inf
    top = np.argsort(-scores, 1)[:, :10]
    hr = np.mean([t in row for t, row in zip(nxt, top, strict=True)])
    pop_top = np.argsort(-model.popularity)[:10]
    hr_pop = np.mean(np.isin(nxt, pop_top))
    assert hr > hr_pop + 0.4, (hr, hr_pop)

    out = model.event_outlook(users, hist, ctx, at, horizons_s=(3600, 86_400))
    b = out["behaviors"].index("buy")
    p = out["within"][:, b, 0]
    assert 0.1 < buy.mean() < 0.8
    assert roc_auc(buy.astype(int), p) > 0.9
    assert np.all(out["within"][:, :, 1] >= out["within"][:, :, 0] - 1e-6)  # a longer horizon never less likely
    # next behaviour: after a cart always a buy
    last_cart = np.array([c["behavior"][-1] == model.context_vocab["behavior"].index("cart") + 1 for c in ctx])
    assert out["next_behavior"][last_cart, b].mean() > 0.8
    assert out["next_behavior"][~last_cart, b].mean() < 0.2
    assert model.fit_info["time_head"] and 0 < model.fit_info["censored_share"] < 1


def test_save_and_load_give_the_same_outlook(fitted, tmp_path):
    model, log = fitted
    hist, ctx, at, _, _ = _cases(model, log, seed=3)
    users = np.zeros(len(hist), np.int64)
    model.save(tmp_path / "joint")
    loaded = load(tmp_path / "joint", device="cpu")
    assert isinstance(loaded, JointSASRec)
    a = model.event_outlook(users, hist, ctx, at)
    b = loaded.event_outlook(users, hist, ctx, at)
    np.testing.assert_allclose(a["within"], b["within"], atol=1e-5)
    np.testing.assert_allclose(a["next_behavior"], b["next_behavior"], atol=1e-5)


def test_outlook_inputs_are_checked(fitted):
    model, log = fitted
    hist, ctx, at, _, _ = _cases(model, log, seed=4)
    users = np.zeros(len(hist), np.int64)
    with pytest.raises(ConfigError, match="before its history's last event"):
        model.event_outlook(users, hist, ctx, at - 3600)
    with pytest.raises(ConfigError, match="positive seconds"):
        model.event_outlook(users, hist, ctx, at, horizons_s=(0,))
    with pytest.raises(ConfigError, match="positive seconds"):
        model.event_outlook(users, hist, ctx, at, horizons_s=3600)
    with pytest.raises(ConfigError, match="differ"):
        model.event_outlook(users, hist, ctx, at[:-1])


def test_time_targets_are_the_next_event_of_each_mark_or_censored_at_the_window_end():
    # two users: marks 0,1,0 at 0,10,30 and mark 1 at 5
    offsets = np.array([0, 0, 3, 4])
    ts = np.array([0, 10, 30, 5])
    marks = np.array([0, 1, 0, 1])
    dt, obs = event_time_targets(offsets, ts, marks, 2, end=100, min_gap=1.0)
    np.testing.assert_array_equal(obs, [[True, True], [True, False], [False, False], [False, False]])
    np.testing.assert_allclose(dt, [[30, 10], [20, 90], [70, 70], [95, 95]])


def test_bounded_options_are_rejected_with_one_line():
    with pytest.raises(ValueError, match="time_components"):
        JointSASRec(time_components=0)
    with pytest.raises(ValueError, match="behavior_weight"):
        JointSASRec(behavior_weight=-1)
