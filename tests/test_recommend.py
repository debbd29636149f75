"""chronorec.recommend: filters, re-ranking, blending, explanations, calibration and offline evaluation.

The hand-built catalogue: items a..f (internal ids 1..6) with training counts a=5, b=4, c=3,
d=2, e=1, f=1, categories a,b: X; c,e: Y; d,f: Z; d unavailable; prices 10..50 and f unknown.
With temperature 1 a most-popular model gives p proportional to exp(count).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from chronorec.data.eventlog import EventLog
from chronorec.evaluation.reliability_curves import expected_calibration_error, reliability_curve
from chronorec.evaluation.split import EvalSet
from chronorec.models.baselines.popular import MostPopular
from chronorec.recommend import (
    BlendOptions,
    FilterOptions,
    HistoryEvents,
    ItemTable,
    PopularityIndex,
    RecommendOptions,
    RecommendPipeline,
    RecommendSettings,
    RerankOptions,
    calibrate_temperature,
    context_keys,
    evaluate_postprocessing,
    to_internal,
)

SEQS = {
    "u1": list("abcdef"),
    "u2": list("abcd"),
    "u3": list("abc"),
    "u4": list("ab"),
    "u5": list("a"),
}
TABLE = pd.DataFrame(
    {
        "item_id": list("abcdef"),
        "category": ["X", "X", "Y", "Z", "Y", "Z"],
        "available": [True, True, True, False, True, True],
        "price": [10.0, 20.0, 30.0, 40.0, 50.0, np.nan],
        "name": ["Apple", "Banana", "Cherry", "Date", "Elder", "Fig"],
    }
)


@pytest.fixture(scope="module")
def pop():
    return MostPopular().fit(EventLog.from_sequences(SEQS))


@pytest.fixture(scope="module")
def pipe(pop):
    return RecommendPipeline(pop, items=ItemTable.from_frame(TABLE, pop.items))


def ids(pipe, lst):
    return [str(x) for x in pipe.external(lst.items)]


def rank_history(pipe, history, **opts):
    internal = to_internal(pipe.model.items, history)
    return pipe.rank(np.zeros(1, np.int64), [internal], RecommendOptions(**opts))[0]


def test_catalogue_is_as_documented(pop):
    assert pop.items.external_ids.tolist() == list("abcdef")
    assert pop.popularity.tolist() == [0, 5, 4, 3, 2, 1, 1]


def test_plain_ranking_matches_the_library_and_scores_are_probabilities(pop, pipe):
    lib = pop.recommend(["u5", "u3"], k=3)
    ours = pipe.recommend(["u5", "u3"], options=RecommendOptions(k=3))
    assert ours["item_id"].tolist() == lib["item_id"].tolist() == ["b", "c", "d", "d", "e", "f"]
    # u5 saw a: softmax(counts) over b..f
    z = np.exp(np.array([4, 3, 2, 1, 1], float))
    np.testing.assert_allclose(ours["score"].iloc[:3], (z / z.sum())[:3], rtol=1e-9)
    raw = pipe.recommend(["u5"], options=RecommendOptions(k=3), score="raw")
    assert raw["score"].tolist() == [4.0, 3.0, 2.0]
    assert ours["item_name"].tolist()[:3] == ["Banana", "Cherry", "Date"]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, ["b", "c", "d"]),
        ({"deny": ["c"]}, ["b", "d", "e"]),
        ({"allow": ["e", "f", "c", "zzz"]}, ["c", "e", "f"]),
        ({"categories": ["Y"]}, ["c", "e"]),
        ({"exclude_categories": ["X", "Y"]}, ["d", "f"]),
        ({"available_only": True}, ["b", "c", "e"]),
        ({"min_price": 25, "max_price": 45}, ["c", "d"]),
        ({"exclude_seen": False}, ["a", "b", "c"]),
    ],
)
def test_filters_give_exact_lists(pipe, filters, expected):
    got = rank_history(pipe, ["a"], k=3, filters=FilterOptions(**filters))
    assert ids(pipe, got) == expected


def test_filter_warnings(pipe):
    got = rank_history(pipe, ["a"], k=3, filters=FilterOptions(categories=["Y", "Nope"], allow=["c", "e", "zzz"]))
    assert ids(pipe, got) == ["c", "e"]
    text = " ".join(got.warnings)
    assert "unknown categories ['Nope']" in text
    assert "1 unknown item ids ignored" in text
    assert "only 2 items pass the filters (k=3)" in text


def test_attribute_filters_without_item_table_are_ignored_with_a_warning(pop):
    p = RecommendPipeline(pop)
    got = rank_history(p, ["a"], k=2, filters=FilterOptions(categories=["Y"]))
    assert ids(p, got) == ["b", "c"]
    assert any("no item table" in w for w in got.warnings)


def test_exclude_seen_per_behaviour_type(pipe):
    internal = to_internal(pipe.model.items, ["a", "b", "c"])
    hist = HistoryEvents(internal, ["view", "buy", "view"])
    only_bought = RecommendOptions(k=3, filters=FilterOptions(exclude_behaviors=["buy"]))
    got = pipe.rank(np.zeros(1, np.int64), [hist], only_bought)[0]
    assert ids(pipe, got) == ["a", "c", "d"]  # b was bought: dropped; a and c were only viewed: kept
    every = pipe.rank(np.zeros(1, np.int64), [hist], RecommendOptions(k=3))[0]
    assert ids(pipe, every) == ["d", "e", "f"]
    # a training history carries no behaviour types: nothing is excluded by a behaviour list
    untyped = pipe.rank(np.zeros(1, np.int64), [HistoryEvents(internal)], only_bought)[0]
    assert ids(pipe, untyped) == ["a", "b", "c"]


def test_interest_reranking(pipe):
    # history [e] (category Y): relevance a=1, b=e^-1, c=e^-2, ...; with weight .5 c (Y) gains .5
    plain = rank_history(pipe, ["e"], k=3)
    assert ids(pipe, plain) == ["a", "b", "c"]
    got = rank_history(pipe, ["e"], k=3, rerank=RerankOptions(interest_weight=0.5))
    assert ids(pipe, got) == ["c", "a", "b"]
    # the reported scores stay the calibrated probabilities of those items
    np.testing.assert_allclose(got.scores, plain.scores[[2, 0, 1]])


def test_mmr_diversity_over_categories(pipe):
    # MMR, lambda .5: a; then c (Y) beats b (X, same as a); then d (Z); then b; then f
    got = rank_history(pipe, ["e"], k=5, rerank=RerankOptions(diversity_weight=0.5, diversity_by="category"))
    assert ids(pipe, got) == ["a", "c", "d", "b", "f"]
    none = rank_history(pipe, ["e"], k=5, rerank=RerankOptions(diversity_weight=0.0))
    assert ids(pipe, none) == ["a", "b", "c", "d", "f"]


def test_diversity_without_embeddings_or_categories_warns(pop):
    p = RecommendPipeline(pop)
    got = rank_history(p, ["e"], k=3, rerank=RerankOptions(diversity_weight=0.5))
    assert ids(p, got) == ["a", "b", "c"]
    assert any("diversity_weight ignored" in w for w in got.warnings)


def test_content_blend_for_sparse_histories(pipe):
    # content from category affinity: history [e] -> all content mass on c (the other Y item)
    blend = BlendOptions(model=1, content=1, sparse_below=5)
    got = rank_history(pipe, ["e"], k=3, blend=blend)
    assert ids(pipe, got) == ["c", "a", "b"]
    assert got.strategy == "blend"
    z = np.exp(np.array([5, 4, 3, 2, 1], float))  # a b c d f
    p_model = z / z.sum()
    np.testing.assert_allclose(got.scores, [(p_model[2] + 1) / 2, p_model[0] / 2, p_model[1] / 2])
    # a history as long as sparse_below is not blended
    long = rank_history(pipe, list("abcde"), k=1, blend=BlendOptions(model=1, content=1, sparse_below=5))
    assert long.strategy == "model"


def test_cold_start_uses_context_popularity(pop):
    ctx = np.zeros(7)
    ctx[6] = 10  # f is what mobile users take
    index = PopularityIndex(pop.popularity, {"device=mobile": ctx})
    p = RecommendPipeline(pop, popularity=index)
    opts = RecommendOptions(k=3, blend=BlendOptions(popularity_source="context"))
    got = p.rank(np.zeros(1, np.int64), [np.zeros(0, np.int64)], opts, contexts=[{"device": "mobile"}])[0]
    assert ids(p, got) == ["f", "a", "b"]
    assert got.strategy == "popularity"
    glob = p.rank(np.zeros(1, np.int64), [np.zeros(0, np.int64)], RecommendOptions(k=3))[0]
    assert ids(p, glob) == ["a", "b", "c"]
    np.testing.assert_allclose(glob.scores, np.array([5, 4, 3]) / 16)
    assert context_keys({"device": "mobile", "time": 19 * 3600}) == ["device=mobile", "daypart=evening"]


def test_explanations_by_category_without_embeddings(pipe):
    got = rank_history(pipe, ["e", "a", "c"], k=2, explain=True, filters=FilterOptions(exclude_seen=True))
    assert ids(pipe, got) == ["b", "d"]
    assert got.explanations == [[(1, 1.0)], []]  # b is X like a; d (Z) has no history item of its category


def test_explanations_by_embedding_similarity():
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
    # history [1, 2]; item 3 is at 45 degrees from both, item 1 equals history item 1
    out = p.explain(np.array([1, 2]), np.array([3, 1]), n=2)
    assert [j for j, _ in out[0]] == [2, 1]  # equal similarity: most recent first
    assert out[0][0][1] == pytest.approx(1 / math.sqrt(2))
    assert out[1] == [(1, pytest.approx(1.0))]  # item 2 is orthogonal to item 1: left out


def test_k_above_catalogue_is_clamped(pipe):
    got = rank_history(pipe, ["a"], k=50)
    assert ids(pipe, got) == list("bcdef")
    assert any("clamped to 6" in w for w in got.warnings)


def test_reliability_curve_and_ece():
    curve = reliability_curve(np.array([0.05, 0.15, 0.95, 0.95]), np.array([0, 0, 1, 0]), n_bins=10)
    assert curve["count"].tolist() == [1, 1, 0, 0, 0, 0, 0, 0, 0, 2]
    assert curve.loc[9, "accuracy"] == 0.5
    # ECE = (1*.05 + 1*.15 + 2*.45) / 4
    assert expected_calibration_error(curve) == pytest.approx(0.275)


def test_calibrate_temperature_recovers_a_planted_temperature():
    rng = np.random.default_rng(0)
    n_items, n_cases, t_true = 30, 3000, 2.5
    logits = rng.normal(0, 3, size=(n_cases, n_items + 1))

    class Fake:
        def score(self, users, histories):
            return torch.from_numpy(logits[users])

    p = np.exp(logits[:, 2:] / t_true)
    p /= p.sum(1, keepdims=True)
    targets = [np.array([2 + rng.choice(n_items - 1, p=row)]) for row in p]  # item 1 is the (excluded) history
    es = EvalSet.build(np.arange(n_cases), [np.array([1])] * n_cases, targets, "validation")
    res = calibrate_temperature(Fake(), es)
    assert res["temperature"] == pytest.approx(t_true, rel=0.1)
    assert res["nll_after"] < res["nll_before"]
    assert res["ece_after"] < res["ece_before"]
    assert res["n_cases"] == n_cases


def test_settings_round_trip(tmp_path):
    s = RecommendSettings(temperature=2.0, blend=BlendOptions(popularity=0.5), rerank=RerankOptions(candidates=50))
    again = RecommendSettings.load(s.save(tmp_path / "recommend.json"))
    assert again == s
    with pytest.raises(ValueError):
        RecommendSettings.model_validate({"temperature": 0})


def test_evaluate_postprocessing_reuses_the_ranking_metrics(pop, pipe):
    from chronorec.evaluation.ranking import evaluate_ranking

    # cases: history [a] -> target c (rank 2 in b,c,d,...), history [b] -> target f (rank 5)
    a, b, c, f = to_internal(pop.items, ["a", "b", "c", "f"])
    es = EvalSet.build(np.zeros(2, np.int64), [np.array([a]), np.array([b])], [np.array([c]), np.array([f])], "v")
    variants = {
        "plain": RecommendOptions(),
        "diverse": RecommendOptions(rerank=RerankOptions(diversity_weight=0.5, diversity_by="category")),
    }
    table = evaluate_postprocessing(pipe, es, variants, k=10).set_index("variant")
    ref = evaluate_ranking(pipe.model.score, es, n_items=6, ks=(5,))  # both targets within 5: NDCG@5 = NDCG@10
    # f ties with e in count; the pessimistic reference ranks it after e as the id tie-break does
    assert table.loc["plain", "NDCG@10"] == pytest.approx(ref["NDCG@5"])
    assert table.loc["plain", "NDCG@10"] == pytest.approx((1 / math.log2(3) + 1 / math.log2(6)) / 2)
    assert table.loc["plain", "Coverage@10"] == pytest.approx(1.0)
    assert table.loc["diverse", "ILD"] == pytest.approx(table.loc["plain", "ILD"])  # same items, other order
    # novelty: mean -log2((count + 1) / (16 + 6)) over the 10 shown items
    share = (np.array([5, 4, 3, 2, 1, 1]) + 1) / 22
    shown = [1, 2, 3, 4, 5, 0, 2, 3, 4, 5]  # [b c d e f] and [a c d e f] as positions in a..f
    assert table.loc["plain", "novelty"] == pytest.approx(float(np.mean(-np.log2(share[shown]))))


def test_one_top_k_order_for_planted_ties(tmp_path):
    """Library, pipeline and the batch CLI rank tied scores alike: higher score first, then the lower internal id.

    40 items seen once each tie; ``torch.topk`` alone returns such ties in no particular order.
    """
    from typer.testing import CliRunner

    from chronorec.cli import app

    seqs = {"filler": [f"i{j:02d}" for j in range(39, -1, -1)], "a": ["i05"], "b": ["i30"], "c": ["i30"]}
    model = MostPopular().fit(EventLog.from_sequences(seqs))
    users, k = ["a", "b", "nobody"], 12
    pop = model.popularity.astype(float)
    want = []
    for u in users:
        internal = model.users.to_internal(np.asarray([u]))[0]
        seen = set(model.store.user_items(int(internal)).tolist()) if internal > 0 else set()
        order = sorted((i for i in range(1, model.n_items + 1) if i not in seen), key=lambda i: (-pop[i], i))
        want += [str(x) for x in model.items.external_ids[np.asarray(order[:k]) - 1]]
    assert len(set(pop[1:])) == 3  # ties planted: counts 3, 2 and 1

    lib = model.recommend(users, k=k)
    ours = RecommendPipeline(model).recommend(users, options=RecommendOptions(k=k), score="raw")
    d = model.save(tmp_path / "popular")
    (tmp_path / "users.txt").write_text("\n".join(users) + "\n")
    out = tmp_path / "recs.parquet"
    args = [
        "recommend",
        "--model",
        str(d),
        "--users-file",
        str(tmp_path / "users.txt"),
        "-k",
        str(k),
        "--out",
        str(out),
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    cli = pd.read_parquet(out)
    assert lib["item_id"].astype(str).tolist() == want
    assert ours["item_id"].astype(str).tolist() == want
    assert cli["item_id"].astype(str).tolist() == want
    np.testing.assert_array_equal(ours["score"].to_numpy(), lib["score"].to_numpy().astype(np.float64))


def test_lean_and_full_paths_give_the_same_lists_and_probabilities():
    """Rows ranked by the model alone take the lean path (top-k and one logsumexp, as evaluation does);
    a batch holding a cold-start row takes the full one (float64 distributions over the catalogue).
    Both give the same items, raw keys and probabilities, the latter equal to softmax(score / T)
    over the unseen items, banned items counted in the denominator."""
    seqs = {f"u{j}": [f"i{(3 * j + t) % 40:02d}" for t in range(1 + j % 5)] for j in range(30)}
    model = MostPopular().fit(EventLog.from_sequences(seqs))
    table = torch.from_numpy(np.random.default_rng(0).normal(size=(50, model.n_items + 1)).astype(np.float32))
    table[7, 3] = table[7, 4] = table[7, 5] = table[7].max() + 1  # ties inside the top-k of one row
    model.score = lambda users, hist, *ctx: table[[int(h.sum()) % 50 for h in hist]].clone()
    pipe = RecommendPipeline(model, settings=RecommendSettings(temperature=0.7))
    deny = [str(x) for x in model.items.external_ids[[2, 9]]]
    opts = RecommendOptions(k=6, filters=FilterOptions(deny=deny))
    hist = [model.store.user_items(u) for u in range(1, 31)] + [np.array([7], np.int64)]
    users = np.arange(1, 32)
    lean = pipe.rank(users, hist, opts)
    full = pipe.rank(np.r_[users, 0], [*hist, np.zeros(0, np.int64)], opts)[:-1]  # the cold row: full path
    raw_only = pipe.rank(users, hist, opts, probabilities=False)
    banned = set(to_internal(model.items, deny).tolist())
    for r, h in enumerate(hist):
        a, b, c = lean[r], full[r], raw_only[r]
        np.testing.assert_array_equal(a.items, b.items)
        np.testing.assert_array_equal(a.items, c.items)
        np.testing.assert_array_equal(a.keys, b.keys)
        np.testing.assert_array_equal(a.keys, c.keys)
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-12)
        assert c.scores is None and a.strategy == b.strategy == c.strategy == "model"
        row = table[int(h.sum()) % 50].double().numpy()
        ok = np.ones(len(row), bool)
        ok[0] = False
        ok[h] = False
        z = np.exp(row[ok] / 0.7 - (row[ok] / 0.7).max())
        p = np.zeros(len(row))
        p[ok] = z / z.sum()
        want = [i for i in np.lexsort((np.arange(len(row)), -row)) if ok[i] and i not in banned][:6]
        assert a.items.tolist() == want, r
        np.testing.assert_allclose(a.scores, p[want], rtol=1e-12)
    with pytest.raises(ValueError, match="without probabilities"):
        pipe.to_frame(list(users), raw_only, score="probability")
    assert pipe.to_frame(list(users), raw_only, score="raw")["score"].tolist() == [x for r in lean for x in r.keys]


def test_every_option_and_setting_is_described():
    for cls in (FilterOptions, RerankOptions, BlendOptions, RecommendOptions, RecommendSettings):
        assert all(f.description for f in cls.model_fields.values()), cls.__name__
    with pytest.raises(ValueError, match="extra"):
        FilterOptions(exclude_seeen=False)
