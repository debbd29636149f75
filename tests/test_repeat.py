"""Repeat purchases: repeat share, the data-aware history protocol, buy-again and the repeat blend."""

import numpy as np
import pandas as pd
import pytest
import torch

from chronorec.data.eventlog import EventLog
from chronorec.evaluation.ranking import evaluate_ranking
from chronorec.evaluation.repeat import AUTO_MAX_REPEAT_SHARE, decide_history, repeat_stats
from chronorec.evaluation.split import EvalSet, leave_one_out
from chronorec.models.baselines.buyagain import BuyAgain
from chronorec.models.registry import load
from chronorec.models.repeat import RepeatBlend, mixture_scores


def test_repeat_share_counts_targets_in_the_history():
    ev = EvalSet.build(
        np.array([1, 2, 3]),
        [np.array([1, 2]), np.array([3]), np.array([4, 5])],
        [np.array([2]), np.array([1]), np.array([5, 6, 7])],  # repeat, new, one repeat of three
        "t",
    )
    s = repeat_stats(ev)
    assert s["repeat_share"] == pytest.approx(2 / 5)
    assert s["repeat_cases"] == pytest.approx(2 / 3)
    assert s["n_targets"] == 5


def test_auto_history_excludes_only_when_validation_never_repeats():
    never = EvalSet.build(np.array([1, 2]), [np.array([1]), np.array([2])], [np.array([3]), np.array([4])], "v")
    often = EvalSet.build(np.array([1, 2]), [np.array([1]), np.array([2])], [np.array([1]), np.array([4])], "v")
    d = decide_history("auto", never)
    assert d.exclude and "0.0% of validation targets" in d.describe() and d.validation_repeat_share == 0
    d = decide_history("auto", often)
    assert not d.exclude and "50.0%" in d.reason and d.to_dict()["used"] == "included"
    assert decide_history("include", never).exclude is False
    assert decide_history(True).exclude and decide_history(False).mode == "include"
    assert AUTO_MAX_REPEAT_SHARE == 0.01


def _repeat_log(n_users: int = 60, seed: int = 0) -> EventLog:
    """Each user has 3 staples bought again and again (the last, most often), plus random one-off items."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        staples = rng.choice(np.arange(40), 3, replace=False)
        t = 0
        for _ in range(14):
            item = staples[rng.choice(3, p=[0.2, 0.3, 0.5])] if rng.random() < 0.7 else 40 + rng.integers(60)
            rows.append((u, int(item), 1_700_000_000 + u * 10_000 + t))
            t += 60
    return EventLog.from_frame(pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]))


def test_buyagain_ranks_the_users_own_items_first_then_popularity():
    log = _repeat_log()
    model = BuyAgain(decay=0.0).fit(log)
    hist = [log.items.to_internal(np.array([5, 7, 7]))]
    scores = model.score(np.array([0]), hist)[0]
    top = torch.argsort(scores, descending=True)[:2].numpy()
    assert list(log.items.to_external(top)) == [7, 5]  # counted twice before once
    rest = scores.clone()
    rest[hist[0]] = -1
    assert int(rest.argmax()) == int(np.argmax(model.popularity))  # then the most popular item
    recent = BuyAgain(decay=5.0).fit(log).score(np.array([0]), [log.items.to_internal(np.array([7, 7, 5]))])[0]
    assert log.items.to_external([int(recent.argmax())])[0] == 5  # strong decay: the latest first


def test_buyagain_learns_repeats_and_beats_popularity_with_history_included(tmp_path):
    sp = leave_one_out(_repeat_log())
    n = sp.train.n_items
    buy = BuyAgain().fit(sp.train, validation=sp.validation)
    assert buy.fit_info["decay"] in [row["decay"] for row in buy.fit_info["decay_grid"]]
    m = evaluate_ranking(buy.score, sp.test, n_items=n, ks=(3,), exclude_history=False)
    from chronorec.models.baselines.popular import MostPopular

    pop = MostPopular().fit(sp.train)
    p = evaluate_ranking(pop.score, sp.test, n_items=n, ks=(3,), exclude_history=False)
    assert m["HR@3"] > 0.5 > p["HR@3"]  # the planted staples are found
    buy.save(tmp_path / "buy")
    again = load(tmp_path / "buy")
    assert again.decay == buy.decay
    assert torch.equal(
        again.score(sp.test.users[:5], sp.test.inputs(slice(0, 5))),
        buy.score(sp.test.users[:5], sp.test.inputs(slice(0, 5))),
    )


def test_mixture_weight_moves_between_the_model_and_buy_again():
    model_scores = torch.tensor([[0.0, 5.0, 1.0, 0.0]])
    counts = torch.tensor([[0.0, 0.0, 0.0, 2.0]])
    top = [int(mixture_scores(model_scores, counts, w, 1.0)[0].argmax()) for w in (0.0, 0.5, 0.99)]
    assert top == [1, 3, 3]
    assert torch.isneginf(mixture_scores(model_scores, counts, 0.5, 1.0)[0, 0])


def test_repeat_blend_chooses_its_weight_on_validation_and_round_trips(tmp_path):
    sp = leave_one_out(_repeat_log())
    n = sp.train.n_items
    blend = RepeatBlend(base={"kind": "itemknn"}).fit(sp.train, validation=sp.validation).record_split(sp)
    assert blend.weight > 0  # repeats matter here: validation gives them weight
    assert {"weight", "temperature", "decay", "grid"} <= set(blend.fit_info)
    b = evaluate_ranking(blend.score, sp.test, n_items=n, ks=(3,), exclude_history=False)
    knn = evaluate_ranking(blend.base.score, sp.test, n_items=n, ks=(3,), exclude_history=False)
    assert b["HR@3"] > knn["HR@3"]
    blend.save(tmp_path / "blend")
    again = load(tmp_path / "blend")
    assert (again.weight, again.temperature, again.decay) == (blend.weight, blend.temperature, blend.decay)
    assert again.base.kind == "itemknn" and again.training_data["split"]["protocol"] == "leave-one-out"
    assert evaluate_ranking(again.score, sp.test, n_items=n, ks=(3,), exclude_history=False) == b


def test_repeat_blend_wraps_a_fitted_model():
    sp = leave_one_out(_repeat_log())
    from chronorec.models.baselines.popular import MostPopular

    pop = MostPopular().fit(sp.train)
    blend = RepeatBlend.from_model(pop, validation=sp.validation, weight=0.9)
    assert blend.weight == 0.9 and blend.base is pop and blend.temperature in (0.25, 0.5, 1.0, 2.0)
    assert blend.training_data["fingerprint"] == pop.training_data["fingerprint"]


def test_calibration_leaves_unrankable_targets_out_of_the_nll_instead_of_a_fixed_loss():
    """A target in the (excluded) history used to add a loss of 50 to the NLL, which swamped the fit
    (the field report: 'validation NLL 19.8020 -> 19.8009'). Now such cases are skipped and counted."""
    from chronorec.recommend import calibrate_temperature

    rng = np.random.default_rng(0)
    n_items, n_cases, t_true = 30, 2000, 2.5
    logits = rng.normal(0, 3, size=(n_cases, n_items + 1))

    class Fake:
        def score(self, users, histories):
            return torch.from_numpy(logits[users])

    p = np.exp(logits[:, 2:] / t_true)
    p /= p.sum(1, keepdims=True)
    targets = [np.array([2 + rng.choice(n_items - 1, p=row)]) for row in p]
    repeat = np.arange(n_cases) % 3 == 0  # a third of the cases buy their history item 1 again
    targets = [np.array([1]) if r else t for r, t in zip(repeat, targets, strict=True)]
    es = EvalSet.build(np.arange(n_cases), [np.array([1])] * n_cases, targets, "validation")
    res = calibrate_temperature(Fake(), es)
    assert res["n_skipped"] == repeat.sum() and res["exclude_history"] is True
    assert res["temperature"] == pytest.approx(t_true, rel=0.1)
    rankable = EvalSet.build(
        np.flatnonzero(~repeat),
        [np.array([1])] * int((~repeat).sum()),
        [t for r, t in zip(repeat, targets, strict=True) if not r],
        "v",
    )
    alone = calibrate_temperature(Fake(), rankable)
    assert res["nll_before"] == pytest.approx(alone["nll_before"])  # the skipped cases add nothing
    assert res["nll_before"] < 10  # a fixed 50 per repeat would put it above 16
    included = calibrate_temperature(Fake(), es, exclude_history=False)
    assert included["n_skipped"] == 0 and np.isfinite(included["nll_after"])


def test_cli_trains_buyagain_and_a_blend_and_evaluate_reports_repeats(tmp_path):
    import json

    from typer.testing import CliRunner

    from chronorec.cli.main import app

    data = _repeat_log().save(tmp_path / "log")

    def invoke(*args):
        return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "250", "NO_COLOR": "1"})

    res = invoke("train", "--kind", "buyagain", "--data", data, "--out", tmp_path / "buy")
    assert res.exit_code == 0, res.output
    assert "chosen on validation: decay" in res.output
    res = invoke(
        "train", "--kind", "repeat-blend", "-p", 'base={"kind": "popular"}', "--data", data, "--out", tmp_path / "blend"
    )
    assert res.exit_code == 0, res.output
    assert "weight" in res.output and load(tmp_path / "blend").base.kind == "popular"
    out = tmp_path / "eval.json"
    res = invoke("evaluate", tmp_path / "buy", tmp_path / "blend", "--data", data, "--ks", "3", "--out", out)
    assert res.exit_code == 0, res.output
    assert "history included (auto:" in res.output and "Repeats: " in res.output
    payload = json.loads(out.read_text())
    assert payload["history_protocol"]["used"] == "included" and payload["repeat"]["repeat_share"] > 0.3
    res = invoke("evaluate", tmp_path / "buy", "--data", data, "--history", "exclude", "--out", out)
    assert res.exit_code == 0 and "history excluded (exclude:" in res.output
    assert "they can never be hit" in res.output
    assert invoke("evaluate", tmp_path / "buy", "--data", data, "--history", "sometimes").exit_code == 1


def _tiny_buyagain(tmp_path):
    # customer c bought x three times and y once; p is the best-seller, q the runner-up
    seqs = {"c": ["x", "y", "x", "x"]} | {f"u{i}": ["p"] for i in range(5)} | {f"v{i}": ["q"] for i in range(3)}
    model = BuyAgain(decay=0.0).fit(EventLog.from_sequences(seqs))
    model.save(tmp_path / "buy")
    return tmp_path / "buy"


def _cli_recommend(*args):
    from typer.testing import CliRunner

    from chronorec.cli.main import app

    res = CliRunner().invoke(app, ["recommend", *map(str, args)], env={"COLUMNS": "250", "NO_COLOR": "1"})
    assert res.exit_code == 0, res.output
    lines = res.stdout.strip().splitlines()
    return [line.split(",")[1] for line in lines[1:]], res.stderr


def test_cli_recommend_keeps_a_buyagain_models_own_items_by_default(tmp_path):
    d = _tiny_buyagain(tmp_path)
    items, note = _cli_recommend("--model", d, "--users", "c", "-k", "3")
    assert items == ["x", "y", "p"]  # the customer's own items first, then the best-seller
    assert "already has are included (the model's history protocol (auto): 100.0% of the users' last" in note
    items, note = _cli_recommend("--model", d, "--users", "c", "-k", "2", "--exclude-seen")
    assert items == ["p", "q"] and "included" not in note
    items, _ = _cli_recommend("--model", d, "--users", "c", "-k", "2", "--history", "y")
    assert items[0] == "y"  # a live history: the same default


def test_seen_default_follows_the_history_protocol_recorded_at_fit():
    from chronorec.models.baselines.popular import MostPopular
    from chronorec.recommend.filters import default_exclude_seen

    log = _repeat_log(n_users=8)
    for model in (
        BuyAgain(decay=0.0).fit(log),
        RepeatBlend(base={"kind": "popular"}, weight=0.5, temperature=1.0).fit(log),
        MostPopular().fit(log),  # any kind: the data decides (auto), not the kind
    ):
        assert model.history_protocol["exclude"] is False and default_exclude_seen(model)[0] is False
    assert MostPopular(history="exclude").fit(log).exclude_history is True
    no_repeats = EventLog.from_sequences({f"u{i}": [f"i{i}", f"i{i + 1}", f"i{i + 2}"] for i in range(10)})
    plain = MostPopular().fit(no_repeats)
    assert plain.exclude_history is True and default_exclude_seen(plain)[0] is True
    # folders saved before the protocol was recorded: the kind's old default
    plain.history_protocol = None
    assert default_exclude_seen(plain) == (True, "the model ranks items new to the user")
    old_buy = BuyAgain(decay=0.0).fit(no_repeats)
    old_buy.history_protocol = None
    assert default_exclude_seen(old_buy)[0] is False


def test_buyagain_and_blend_explanations_name_the_history_items_and_counts():
    from chronorec.recommend import RecommendOptions, RecommendPipeline

    seqs = {"c": ["x", "y", "x", "x"]} | {f"u{i}": ["p"] for i in range(5)}
    log = EventLog.from_sequences(seqs)
    hist = log.items.to_internal(np.array(["x", "y", "x", "x"]))
    opts = RecommendOptions(k=3, explain=True)
    pipe = RecommendPipeline(BuyAgain(decay=0.0).fit(log))
    ranked = pipe.rank(np.zeros(1, np.int64), [hist], opts)[0]
    assert [pipe.item_name(i) for i in ranked.items] == ["x", "y", "p"]
    assert ranked.reasons[0].startswith("bought 3 times, last 0 events ago") and "x (+3)" in ranked.reasons[0]
    assert ranked.reasons[1].startswith("bought once, last 2 events ago")
    assert ranked.reasons[2].startswith("popular: 5 events")
    assert ranked.explanations[0] == [(int(hist[0]), 3.0)]

    blend = RepeatBlend(base={"kind": "popular"}, weight=0.8, temperature=1.0).fit(log)
    pipe = RecommendPipeline(blend)
    ranked = pipe.rank(np.zeros(1, np.int64), [hist], opts)[0]
    assert all(r for r in ranked.reasons)
    reasons = dict(zip([pipe.item_name(i) for i in ranked.items], ranked.reasons, strict=True))
    assert "buy-again 100% / popular 0%" not in reasons["x"] and reasons["x"].startswith("buy-again ")
    assert reasons["p"].startswith("buy-again 0% / popular 100%")
    assert "(repeat share w = 0.8)" in reasons["x"]
