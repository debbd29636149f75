"""BERT4Rec, HSTU, losses (sampled softmax, gBCE) and context features."""

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from chronorec import load
from chronorec.data import columns as C
from chronorec.data.eventlog import EventLog
from chronorec.datasets.synthetic import make_sequences
from chronorec.evaluation.ranking import evaluate_ranking
from chronorec.evaluation.split import leave_one_out
from chronorec.models import registry
from chronorec.models.sequential.context import encode_external, event_features, gap_bucket
from chronorec.models.sequential.losses import full_softmax_ce, gbce, gbce_beta, gbce_from_logits, sampled_softmax_ce
from chronorec.nn.blocks import HSTUBlock, causal_padding_mask


# ---------------------------------------------------------------------------- learning
@pytest.fixture(scope="module")
def planted():
    log = make_sequences(n_users=400, n_items=120, seed=0, mean_length=25)
    return leave_one_out(log)


def _ndcg(model, sp):
    return evaluate_ranking(model.score, sp.test, n_items=sp.train.n_items, ks=(10,))["NDCG@10"]


@pytest.mark.parametrize(
    "kind,params",
    [
        ("bert4rec", {"mask_prob": 0.3}),
        ("hstu", {}),
    ],
)
def test_large_models_learn_planted_transitions(planted, kind, params):
    sp = planted
    pop = _ndcg(registry.get("popular")().fit(sp.train), sp)
    common = {"epochs": 8, "dim": 32, "max_len": 20, "lr": 5e-3, "batch_size": 64, "patience": 5}
    model = registry.get(kind)(progress=False, seed=1, **common, **params).fit(sp.train, validation=sp.validation)
    ndcg = _ndcg(model, sp)
    assert ndcg > 3 * pop and ndcg - pop > 0.15, (kind, ndcg, pop)


def test_bert4rec_masks_and_scores_with_the_mask_token(planted):
    m = registry.get("bert4rec")(epochs=1, dim=16, max_len=10, progress=False, mask_prob=0.5).fit(planted.train)
    from chronorec.models.sequential.windows import training_spans

    spans = training_spans(m.store)[:8]
    batch = m._make_batch([(max(a, b - 10), b) for a, b in spans], np.random.default_rng(0))
    x, y = batch["items"], batch["targets"]
    masked = x == m.n_items + 1
    assert masked.any(1).all()  # at least one masked item per sequence
    assert torch.equal(masked, y > 0)  # targets exactly at the masked positions
    assert m.module.item_emb.weight.shape[0] == m.n_items + 2
    s = m.score(np.array([1]), [m.store.user_items(1)])
    assert s.shape == (1, m.n_items + 1)  # the mask token is never a candidate


# ---------------------------------------------------------------------------- HSTU reference
def test_hstu_block_is_causal_and_pointwise():
    torch.manual_seed(0)
    blk = HSTUBlock(dim=8, heads=2, dropout=0.0, max_len=6).eval()
    items = torch.tensor([[0, 3, 4, 5, 6, 7]])
    ts = torch.tensor([[0, 10, 20, 3600, 7200, 90000]])
    x = torch.randn(1, 6, 8)
    y = blk(x, causal_padding_mask(items), ts)
    x2 = x.clone()
    x2[0, 4:] += 5.0  # change the future
    y2 = blk(x2, causal_padding_mask(items), ts)
    assert torch.allclose(y[0, :4], y2[0, :4], atol=1e-6)
    assert not torch.allclose(y[0, 4:], y2[0, 4:])
    # no softmax: attention weights need not sum to one; doubling values doubles the aggregate
    with torch.no_grad():
        blk.bias.pos.add_(1.0)
    y3 = blk(x, causal_padding_mask(items), ts)
    assert not torch.allclose(y, y3)


def test_hstu_time_bias_uses_timestamps():
    torch.manual_seed(0)
    blk = HSTUBlock(dim=8, heads=1, dropout=0.0, max_len=4).eval()
    with torch.no_grad():
        blk.bias.time.copy_(torch.linspace(-2, 2, blk.bias.time.numel()))
    items = torch.tensor([[1, 2, 3, 4]])
    x = torch.randn(1, 4, 8)
    a = blk(x, causal_padding_mask(items), torch.tensor([[0, 1, 2, 3]]))
    b = blk(x, causal_padding_mask(items), torch.tensor([[0, 1000, 100000, 10**7]]))
    assert not torch.allclose(a[0, 1:], b[0, 1:])


# ---------------------------------------------------------------------------- losses
def _toy(n=50, d=8, rows=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(rows, d, generator=g)
    w = torch.randn(n + 1, d, generator=g)
    y = torch.randint(1, n + 1, (rows,), generator=g)
    return h, w, y


def test_sampled_softmax_with_every_item_as_negative_is_full_softmax():
    h, w, y = _toy()
    full = full_softmax_ce(h, y, w)
    every = sampled_softmax_ce(h, y, w, n_negatives=0, negatives=torch.arange(1, 51))
    assert torch.allclose(full, every, atol=1e-6)


@pytest.mark.parametrize("popular", [False, True])
def test_sampled_softmax_with_logq_tends_to_full_softmax(popular):
    h, w, y = _toy()
    full = full_softmax_ce(h, y, w).item()
    pop = torch.arange(51, dtype=torch.float32) ** 1.5 if popular else None
    if pop is not None:
        pop[0] = 0
    g = torch.Generator().manual_seed(1)
    est = sampled_softmax_ce(h, y, w, n_negatives=200_000, generator=g, popularity=pop, logq_correction=True).item()
    assert est == pytest.approx(full, abs=0.02)
    if popular:  # correcting the target logit as well (the earlier form) does not tend to the full softmax
        q = pop / pop.sum()
        neg = torch.multinomial(q, 200_000, replacement=True, generator=torch.Generator().manual_seed(1))
        pos_l = (h * w[y]).sum(-1, keepdim=True) - torch.log(q[y] * 200_000)[:, None]
        neg_l = (h @ w[neg].t() - torch.log(q[neg] * 200_000)).masked_fill(neg[None] == y[:, None], -torch.inf)
        old = F.cross_entropy(torch.cat([pos_l, neg_l], 1), torch.zeros(len(y), dtype=torch.long)).item()
        assert abs(old - full) > 1.0


def test_gbce_with_beta_one_is_bce():
    h, w, y = _toy()
    neg = torch.tensor([3, 7, 9, 11, 20])
    pos_logit = (h * w[y]).sum(-1)
    neg_logit = h @ w[neg].t()
    logits = torch.cat([pos_logit[:, None], neg_logit], 1)
    labels = torch.zeros_like(logits)
    labels[:, 0] = 1
    bce = F.binary_cross_entropy_with_logits(logits, labels, reduction="sum") / len(y)
    assert torch.allclose(gbce_from_logits(pos_logit, neg_logit, beta=1.0), bce, atol=1e-6)
    # t = 0 gives beta = 1; t = 1 gives beta = alpha = k / (n - 1)
    assert gbce_beta(5, 51, 0.0) == pytest.approx(1.0)
    assert gbce_beta(5, 51, 1.0) == pytest.approx(0.1)
    y_safe = torch.where(torch.isin(y, neg), torch.tensor(1), y)
    got = gbce(h, y_safe, w, n_negatives=5, t=0.0, negatives=neg)
    pos_logit = (h * w[y_safe]).sum(-1)
    ref = (F.softplus(-pos_logit) + F.softplus(neg_logit).sum(1)).mean()
    assert torch.allclose(got, ref, atol=1e-6)


# ---------------------------------------------------------------------------- context
def test_context_feature_codes():
    assert gap_bucket(np.array([0, 1, 3, 1000])).tolist() == [2, 3, 4, 11]
    raw = {"timestamp": np.array([0, 3600, 3600 + 86400]), "behavior": np.array([1, 2, 1])}
    f = event_features(raw, np.array([True, False, False]), ["behavior", "gap", "hour", "weekday"])
    assert f["behavior"].tolist() == [1, 2, 1]
    assert f["gap"][0] == 1 and f["gap"][1] == gap_bucket(np.array([3600]))[0]
    assert f["hour"].tolist() == [1, 2, 2]
    assert f["weekday"].tolist() == [4, 4, 5]  # 1970-01-01 was a Thursday
    enc = encode_external(
        {"behavior": ["cart", "zzz", "view"]}, np.array([True, False, True]), {"behavior": ["view", "cart"]}
    )
    assert enc["behavior"].tolist() == [2, 1]


def _behaviour_log(n_users=300, n_items=40, length=14, seed=0):
    """The next item is succ_view[i] after a view of i and succ_cart[i] after a cart of i."""
    rng = np.random.default_rng(seed)
    succ = {"view": rng.permutation(n_items), "cart": rng.permutation(n_items)}
    rows = []
    for u in range(n_users):
        i = int(rng.integers(n_items))
        for t in range(length):
            b = "cart" if rng.random() < 0.5 else "view"
            rows.append((f"u{u}", f"i{i}", t * 600, b))
            i = int(succ[b][i]) if rng.random() < 0.9 else int(rng.integers(n_items))
    df = pd.DataFrame(rows, columns=[C.USER, C.ITEM, C.TIME, C.BEHAVIOR])
    return EventLog.from_frame(df), succ


@pytest.fixture(scope="module")
def behaviour_data():
    log, succ = _behaviour_log()
    return leave_one_out(log), succ


def test_behaviour_context_beats_plain_items(behaviour_data, tmp_path):
    sp, succ = behaviour_data
    params = {"epochs": 15, "dim": 32, "max_len": 15, "lr": 5e-3, "batch_size": 64, "progress": False, "seed": 0}
    hr = {}
    models = {}
    for use in (False, True):
        m = registry.get("sasrec")(use_context=use, context_features=["behavior"], **params).fit(sp.train)
        # validation inputs are the training sequences: the model finds their stored behaviours
        hr[use] = evaluate_ranking(m.score, sp.validation, n_items=sp.train.n_items, ks=(1,))["HR@1"]
        models[use] = m
    assert hr[True] > hr[False] + 0.15, hr
    # live history with explicit behaviour: the top item follows the behaviour's successor
    m = models[True]
    i = 5
    for b in ("view", "cart"):
        recs = m.recommend_from_history([["i5"]], k=1, context=[{"behavior": [b]}], exclude_seen=False)
        assert recs[C.ITEM].iloc[0] == f"i{int(succ[b][i])}"
    # plain item lists still work, and the context survives save/load
    assert len(m.recommend_from_history([["i5", "i7"]], k=3)) == 3
    again = load(m.save(tmp_path / "ctx"))
    assert again.context_vocab == m.context_vocab
    np.testing.assert_array_equal(again.store.behaviors, m.store.behaviors)
    users = sp.train.users.to_external(np.arange(1, 6))
    pd.testing.assert_frame_equal(m.recommend(users, k=5), again.recommend(users, k=5))


def test_request_context_reaches_every_model(behaviour_data):
    sp, _ = behaviour_data
    for kind in ("bert4rec", "hstu", "gru4rec"):
        m = registry.get(kind)(
            epochs=1, dim=16, max_len=10, progress=False, use_context=True, request_context=True
        ).fit(sp.train)
        a = m.recommend_from_history(
            [["i1", "i2"]], k=40, context=[{"behavior": ["view", "view"], "next": {"behavior": "cart"}}]
        )
        b = m.recommend_from_history(
            [["i1", "i2"]], k=40, context=[{"behavior": ["view", "view"], "next": {"behavior": "view"}}]
        )
        assert not np.allclose(a[C.SCORE].to_numpy(), b[C.SCORE].to_numpy()), kind


# ---------------------------------------------------------------------------- cold start
def test_hashing_encoder_is_deterministic_and_similarity_preserving():
    from chronorec.models.sequential.content import hashing_encoder

    v = hashing_encoder(["red running shoes", "red running shoes size 9", "ceramic coffee mug"], 64)
    assert np.allclose(v, hashing_encoder(["red running shoes", "red running shoes size 9", "ceramic coffee mug"], 64))
    assert v[0] @ v[1] > 0.6 and abs(v[0] @ v[2]) < 0.4


def test_cold_item_with_similar_content_ranks_near_the_popular_item():
    from chronorec.datasets.synthetic import make_catalog

    seqs = make_sequences(n_users=300, n_items=60, seed=2, mean_length=15, return_dict=True)
    cat = make_catalog(n_items=60, seed=2, n_clusters=5)
    counts = pd.Series([i for s in seqs.values() for i in s]).value_counts()
    hot = counts.index[0]
    names = dict(zip(cat.item_ids, cat.names, strict=True))
    names["cold-twin"] = names[hot] + " new edition"
    names["cold-other"] = "zzz qqq unrelated gadget"
    from chronorec.data.idmap import IdMap

    items = IdMap([*cat.item_ids, "cold-twin", "cold-other"])
    log = EventLog.from_sequences(seqs, items=items, item_names=names)
    m = registry.get("contentrec")(
        epochs=10, dim=32, max_len=15, lr=5e-3, batch_size=64, progress=False, encoder="hashing", content_dim=64
    ).fit(log)
    twin, other, hot_i = log.items.to_internal(["cold-twin", "cold-other", hot])
    users = np.arange(1, 101)
    s = m.score(users, m.store.histories(users)).clone()
    s[:, 0] = -torch.inf
    rank = (s[:, None, :] > s[:, [twin, other, hot_i]][:, :, None]).sum(-1).numpy() + 1
    n = log.n_items
    # users for whom the popular item is a top-10 answer get the cold twin near the top as well
    fans = rank[:, 2] <= 10
    assert fans.sum() >= 10
    assert rank[fans, 0].mean() <= 0.35 * n, rank[fans].mean(0)  # 62 items: within ~the cluster
    assert rank[fans, 1].mean() > rank[fans, 0].mean() + 0.3 * n  # the unrelated cold item does not follow
    assert np.corrcoef(rank[:, 0], rank[:, 2])[0, 1] > 0.6
    w = m.module.item_emb.weight.detach().cpu()
    sims = F.cosine_similarity(w[twin][None], w[1 : n + 1]).numpy()
    order = np.argsort(-sims) + 1
    assert hot_i in order[:4]  # the twin's nearest neighbours include the popular item (itself first)


def test_fast_dropout_rate_scale_and_determinism():
    from chronorec.nn.blocks import FastDropout

    drop = FastDropout(0.1).train()
    x = torch.ones(400_000)
    torch.manual_seed(3)
    y = drop(x)
    dropped = float((y == 0).float().mean())
    assert abs(dropped - 26 / 256) < 0.003  # p rounded to a multiple of 1/256
    assert abs(float(y.mean()) - 1.0) < 0.01  # inverted dropout keeps the expectation
    torch.manual_seed(3)
    assert torch.equal(drop(x), y)
    assert torch.equal(drop.eval()(x), x)
    odd = FastDropout(0.5).train()(torch.ones(3, 5, 7))  # sizes that are not multiples of 8
    assert odd.shape == (3, 5, 7) and set(odd.unique().tolist()) <= {0.0, 2.0}


def test_cpu_attention_under_autocast_matches_float32():
    from chronorec.nn.blocks import SelfAttention, causal_padding_mask

    torch.manual_seed(0)
    attn = SelfAttention(16, 2)
    x = torch.randn(3, 6, 16)
    items = torch.tensor([[0, 0, 1, 2, 3, 4], [1, 2, 3, 4, 5, 6], [0, 0, 0, 0, 0, 7]])
    mask = causal_padding_mask(items)
    ref = attn(x, mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = attn(x, mask)
    assert torch.allclose(got.float(), ref, atol=0.05)
