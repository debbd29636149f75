import numpy as np
import pandas as pd
import pytest

from chronorec.datasets.synthetic import make_catalog, make_ecommerce_log, make_sequences


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_ecommerce_log(n_users=200, n_items=100, n_clusters=4, mean_length=30, seed=3, return_frame=True)


def test_columns_ids_and_determinism(frame):
    assert list(frame.columns) == ["user_id", "item_id", "timestamp", "behavior", "value", "device"]
    assert frame["user_id"].str.fullmatch(r"u\d{4}").all()
    assert frame["item_id"].str.fullmatch(r"i\d{4}").all()
    assert set(frame["behavior"]) == {"view", "cart", "buy"}
    assert set(frame["device"]) == {"mobile", "desktop"}
    assert frame["timestamp"].is_monotonic_increasing
    assert frame["timestamp"].min() >= int(pd.Timestamp("2024-01-01", tz="UTC").timestamp())
    again = make_ecommerce_log(n_users=200, n_items=100, n_clusters=4, mean_length=30, seed=3, return_frame=True)
    pd.testing.assert_frame_equal(frame, again)
    other = make_ecommerce_log(n_users=200, n_items=100, n_clusters=4, mean_length=30, seed=4, return_frame=True)
    assert not frame["item_id"].equals(other["item_id"])


def _per_user(frame):
    return frame.sort_values(["user_id", "timestamp"], kind="stable")


def test_successor_transitions_are_strong(frame):
    cat = make_catalog(n_items=100, n_clusters=4, seed=3)
    pos = {iid: j for j, iid in enumerate(cat.item_ids)}
    hits = total = 0
    for _, g in _per_user(frame)[lambda d: d["behavior"] == "view"].groupby("user_id", sort=False):
        it = [pos[x] for x in g["item_id"]]
        for a, b in zip(it, it[1:], strict=False):
            total += 1
            hits += b in cat.successors[a]
    # random chance of hitting one of <= 3 successors among 100 items is < 0.03
    assert hits / total > 0.5


def test_users_stick_to_a_cluster(frame):
    cat = make_catalog(n_items=100, n_clusters=4, seed=3)
    cluster = dict(zip(cat.item_ids, cat.cluster, strict=False))
    c = frame["item_id"].map(cluster)
    top_share = c.groupby(frame["user_id"]).agg(lambda s: s.value_counts(normalize=True).iloc[0])
    assert top_share.median() > 0.6  # uniform over 4 clusters would give ~0.25


def test_weekly_and_daily_periodicity(frame):
    t = pd.to_datetime(frame["timestamp"], unit="s")
    weekend = (t.dt.day_of_week >= 5).mean()
    evening = t.dt.hour.between(18, 22).mean()
    assert weekend > 2 / 7 + 0.08
    assert evening > 5 / 24 + 0.15


def test_funnel_cart_and_buy_follow_a_view_of_the_same_item(frame):
    s = _per_user(frame)
    prev_item = s.groupby("user_id")["item_id"].shift(1)
    prev_beh = s.groupby("user_id")["behavior"].shift(1)
    cart = s["behavior"] == "cart"
    buy = s["behavior"] == "buy"
    assert cart.sum() > 0 and buy.sum() > 0
    assert (prev_item[cart] == s["item_id"][cart]).all() and (prev_beh[cart] == "view").all()
    assert (prev_item[buy] == s["item_id"][buy]).all() and (prev_beh[buy] == "cart").all()
    assert 0.35 < buy.sum() / cart.sum() < 0.65  # p_buy = 0.5
    # every buy: same user viewed the same item earlier
    views = set(zip(s["user_id"][s["behavior"] == "view"], s["item_id"][s["behavior"] == "view"], strict=False))
    assert all(p in views for p in zip(s["user_id"][buy], s["item_id"][buy], strict=False))


def test_value_is_the_item_price(frame):
    cat = make_catalog(n_items=100, n_clusters=4, seed=3)
    price = dict(zip(cat.item_ids, cat.price, strict=False))
    np.testing.assert_allclose(frame["value"].to_numpy(), frame["item_id"].map(price).to_numpy())


def test_eventlog_has_names_and_context():
    log = make_ecommerce_log(n_users=30, n_items=40, n_clusters=2, mean_length=10, seed=1)
    assert log.n_users == 30 and log.context_columns == ("device",)
    names = log.item_name(np.arange(1, log.n_items + 1))
    assert all(("(cluster 0)" in n) or ("(cluster 1)" in n) for n in names)
    first = log.items.to_internal(["i0001"])
    assert log.item_name(first)[0] == "Shirt 001 (cluster 0)"


def test_make_sequences_order_only():
    log = make_sequences(n_users=20, n_items=50, seed=0, n_clusters=2, mean_length=8)
    assert log.n_users == 20
    seqs = make_sequences(n_users=20, n_items=50, seed=0, n_clusters=2, mean_length=8, return_dict=True)
    assert list(seqs) == [f"u{i:04d}" for i in range(1, 21)]
    assert len(log) == sum(len(v) for v in seqs.values())
