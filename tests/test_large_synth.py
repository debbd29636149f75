"""The Taobao-scale generator: exact sizes, determinism independent of the chunk size, the Taobao shape and
the planted structure (successors, categories, funnels), the CLI and its errors."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.dataset as ds
import pytest
from typer.testing import CliRunner

from chronorec.cli.main import app
from chronorec.datasets.large import BEHAVIORS, START, LargeCatalog, TaobaoShape, parse_count, write_taobao
from chronorec.errors import ConfigError

SHAPE = TaobaoShape(n_events=60_000, n_users=1_500, n_items=4_000, seed=3)


def read(folder):
    return ds.dataset(folder / "events", format="parquet").to_table().to_pandas()


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "s"
    meta = write_taobao(SHAPE, out, chunk_events=20_000)
    return out, meta, read(out)


def test_parse_count():
    assert parse_count("100M") == 100_000_000
    assert parse_count("4m") == 4_000_000
    assert parse_count("1.5K") == 1_500
    assert parse_count("250_000") == 250_000
    assert parse_count(7) == 7
    with pytest.raises(ConfigError):
        parse_count("ten")
    with pytest.raises(ConfigError):
        parse_count("1.5")


def test_exact_size_files_and_taobao_shape(synth):
    out, meta, df = synth
    assert meta["n_events"] == len(df) == SHAPE.n_events
    assert len(meta["files"]) == 2  # chunked: whole blocks of 1,024 users, one file per chunk
    assert df["user_id"].nunique() == SHAPE.n_users  # every user has an event
    assert df["item_id"].between(1, SHAPE.n_items).all()
    assert list(df.columns) == ["user_id", "item_id", "category_id", "behavior", "timestamp"]
    assert set(df["behavior"].astype(str)) <= set(BEHAVIORS)
    share = df["behavior"].astype(str).value_counts(normalize=True)
    assert 0.85 < share["pv"] < 0.93 and share["buy"] > 0.01 and share["fav"] > 0.01  # Taobao: 89.5 % pv
    assert meta["behaviors"] == {k: int((df["behavior"].astype(str) == k).sum()) for k in BEHAVIORS}
    assert df["timestamp"].min() >= START and df["timestamp"].max() < START + 9 * 86_400
    u, t = df["user_id"].to_numpy(), df["timestamp"].to_numpy()
    assert (np.diff(u) >= 0).all()  # sorted by user, then time
    assert (np.diff(t)[np.diff(u) == 0] >= 0).all()


def test_planted_structure(synth):
    out, _, df = synth
    cat = LargeCatalog(SHAPE)
    u, it = df["user_id"].to_numpy(), df["item_id"].to_numpy() - 1
    b = df["behavior"].astype(str).to_numpy()
    same = u[1:] == u[:-1]
    pvpv = same & (b[1:] == "pv") & (b[:-1] == "pv")
    is_succ = (cat.successors[it[:-1]] == it[1:, None]).any(1)
    assert 0.55 < is_succ[pvpv].mean() < 0.8  # p_successor = 0.6 (+ chance hits)
    same_cat = cat.category(it[1:]) == cat.category(it[:-1])
    assert same_cat[pvpv].mean() > 0.7
    funnel = same & (b[1:] != "pv")
    assert (it[1:] == it[:-1])[funnel].all()  # a cart / fav / buy repeats the item before it
    assert (df["category_id"].to_numpy() == cat.category(it) + 1).all()
    items = ds.dataset(out / "items.parquet").to_table().to_pandas()
    assert len(items) == SHAPE.n_items and (items["successor_1"].to_numpy() - 1 == cat.successors[:, 0]).all()


def test_deterministic_and_independent_of_the_chunk_size(synth, tmp_path):
    _, meta, df = synth
    write_taobao(SHAPE, tmp_path / "a", chunk_events=7_000, items_file=False)
    other = read(tmp_path / "a")
    assert other.equals(df)
    write_taobao(TaobaoShape(**{**SHAPE.__dict__, "seed": 4}), tmp_path / "b", items_file=False)
    assert not read(tmp_path / "b")["item_id"].equals(df["item_id"])


def test_cli_synth_and_errors(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["datasets", "synth", "--events", "20K", "--users", "500", "--items", "2K",
                              "--out", str(tmp_path / "s")])  # fmt: skip
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "s" / "synth.json").read_text())
    assert meta["n_events"] == 20_000 and "20,000 events" in res.output
    res = runner.invoke(app, ["datasets", "synth", "--events", "10", "--users", "500", "--out", str(tmp_path / "t")])
    assert res.exit_code == 1 and "must be at least --users" in res.output
    res = runner.invoke(app, ["datasets", "synth", "--events", "lots", "--out", str(tmp_path / "t")])
    assert res.exit_code == 1 and "not a count" in res.output
