"""Tests for chronorec.data.idmap.IdMap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from chronorec.data.idmap import IdMap


@pytest.mark.parametrize(
    "external",
    [
        [42, 7, 42, 1000, 7],
        ["b", "a", "b", "z", "a"],
    ],
    ids=["int", "str"],
)
def test_round_trip_and_reserved_zero(external, tmp_path):
    m = IdMap(external)
    uniq = list(dict.fromkeys(external))  # first-appearance order
    assert len(m) == m.size == 3
    assert m.external_ids.tolist() == uniq
    internal = m.to_internal(external)
    assert internal.dtype == np.int64
    assert internal.tolist() == [1, 2, 1, 3, 2]
    assert m.to_external(internal).tolist() == external
    assert 0 not in internal.tolist()  # 0 is reserved for padding / unknown

    unknown = 999 if isinstance(external[0], int) else "nope"
    assert m.to_internal([unknown, uniq[1]]).tolist() == [0, 2]
    with pytest.raises(KeyError):
        m.to_internal([unknown], strict=True)
    with pytest.raises(KeyError):
        m.to_external([0])
    with pytest.raises(KeyError):
        m.to_external([4])

    path = tmp_path / "ids.parquet"
    m.save(path)
    loaded = IdMap.load(path)
    assert loaded == m
    assert loaded.external_ids.tolist() == uniq
    assert loaded.to_internal(external).tolist() == [1, 2, 1, 3, 2]
    assert loaded.to_external([3, 1]).tolist() == [uniq[2], uniq[0]]


def test_int_ids_keep_int_dtype_after_save(tmp_path):
    m = IdMap(np.array([5, 3, 9], dtype=np.int64))
    m.save(tmp_path / "m.parquet")
    loaded = IdMap.load(tmp_path / "m.parquet")
    assert loaded.external_ids.dtype == np.int64
    assert loaded.to_internal(np.array([9, 5, 4])).tolist() == [3, 1, 0]


def test_to_frame_layout():
    frame = IdMap(["x", "y"]).to_frame()
    assert frame["internal_id"].tolist() == [1, 2]
    assert frame["external_id"].tolist() == ["x", "y"]


def test_load_rejects_gaps(tmp_path):
    pd.DataFrame({"internal_id": [1, 3], "external_id": ["a", "b"]}).to_parquet(tmp_path / "bad.parquet", index=False)
    with pytest.raises(ValueError, match="without gaps"):
        IdMap.load(tmp_path / "bad.parquet")


def test_missing_ids_are_refused():
    with pytest.raises(ValueError, match="missing"):
        IdMap(["a", None])


def test_generator_input_and_empty_map():
    assert IdMap(x for x in [3, 1, 3]).external_ids.tolist() == [3, 1]
    empty = IdMap([])
    assert empty.size == 0
    assert empty.to_internal(["a"]).tolist() == [0]


def test_one_id_lookup_agrees_with_the_batch_path():
    """The per-request path (one id, a hash lookup) answers as the batch path does, for every kind of input."""
    from chronorec.recommend.items import to_internal

    ints, texts = IdMap([10, 20, 30]), IdMap(["a", "b", "7"])
    for idmap, values in ((ints, [20, "30", "x", True, 2.0, 10**30, None]), (texts, ["b", 7, "zz", None])):
        one = [int(to_internal(idmap, [v])[0]) for v in values]
        many = to_internal(idmap, values).tolist()
        assert one == many
    assert to_internal(ints, [20, "30", "x", True, 10**30, -(10**30)]).tolist() == [2, 3, 0, 0, 0, 0]
    assert to_internal(texts, ["b", 7]).tolist() == [2, 3]
    assert ints.lookup(30) == 3 and ints.lookup(99) == 0 and ints.lookup([1, 2]) == 0
