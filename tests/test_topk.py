"""The one top-k path: higher score first, then the lower internal index."""

import numpy as np
import torch

from chronorec.models.topk import recommend_top_k, top_k


def _reference(row: np.ndarray, k: int) -> np.ndarray:
    return np.lexsort((np.arange(len(row)), -row))[:k]


def test_top_k_breaks_ties_by_lower_index_everywhere():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, size=(64, 50)).astype(np.float32)  # many ties, inside and at the cut
    scores[3, :] = 1.0  # a row that is one big tie
    scores[5, 10:] = -np.inf  # fewer finite scores than k
    idx, val = top_k(torch.from_numpy(scores), 12)
    for r in range(len(scores)):
        assert np.array_equal(idx[r], _reference(scores[r], 12)), r
        assert np.array_equal(val[r], scores[r, idx[r]])
    assert np.array_equal(idx[3], np.arange(12))
    assert np.isneginf(val[5, 10:]).all() and np.array_equal(idx[5, :10], _reference(scores[5, :10], 10))


def test_top_k_on_one_row_and_float64_and_capped_k():
    row = np.array([0.5, 2.0, 2.0, np.nan, 1.0])
    idx, val = top_k(row, 10)
    assert idx.tolist() == [1, 2, 4, 0, 3] and np.isneginf(val[-1])


def test_top_k_matches_the_reference_with_nan_ties_at_the_cut_and_every_k():
    """The tie check reads the (k+1)-th value instead of the whole row: every k, NaN rows, a tie
    that starts exactly past the cut, and k equal to the number of columns."""
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(40, 30)).astype(np.float32)
    scores[:10] = np.round(scores[:10])  # many ties
    scores[11, [4, 7]] = np.nan
    scores[12, :] = np.nan
    scores[13, 20:] = -np.inf
    order = np.argsort(-scores[14])
    scores[14, order[5]] = scores[14, order[4]]  # the 5th and 6th best tie: for k=5 the tie crosses the cut
    clean = np.nan_to_num(scores, nan=-np.inf, neginf=-np.inf, posinf=np.inf)
    for k in (1, 2, 5, 29, 30):
        idx, val = top_k(torch.from_numpy(scores), k)
        for r in range(len(scores)):
            assert np.array_equal(idx[r], _reference(clean[r], k)), (k, r)
            assert np.array_equal(val[r], clean[r, idx[r]]), (k, r)


def test_recommend_top_k_excludes_padding_and_history():
    def score(users, hist, ctx):
        return torch.ones(len(hist), 6)  # every item tied

    idx, val = recommend_top_k(score, np.array([1, 2]), [np.array([1, 3]), np.array([], np.int64)], 3, n_items=5)
    assert idx.tolist() == [[2, 4, 5], [1, 2, 3]]
    assert np.isfinite(val).all()
