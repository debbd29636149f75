"""Fitting a deployment's settings on validation data, and measuring what each knob costs.

* :func:`calibrate_temperature` -- the temperature ``T`` of ``softmax(score / T)`` minimising the
  NLL of the true next item, with reliability curves before and after;
* :func:`tune_blend` -- the popularity and content weights for sparse histories (grid search);
* :func:`evaluate_postprocessing` / :func:`list_metrics` -- NDCG@k and HR@k (via
  :mod:`chronorec.scoring.ranking_metrics`), coverage, intra-list diversity and novelty of the final
  lists of each option variant.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from chronorec.errors import DataError
from chronorec.evaluation.reliability_curves import expected_calibration_error, reliability_curve
from chronorec.models.base import Recommender
from chronorec.recommend.options import BlendOptions, RecommendOptions
from chronorec.recommend.pipeline import RankedList, RecommendPipeline
from chronorec.scoring.ranking_metrics import SCORE_BATCH


# ============================================================================ calibration
def next_item_cases(evalset: Any) -> Any:
    """``evalset`` with each case's targets cut to its first: the next event after the input history.

    A leave-one-out set (one target per case) is returned as it is. A global time split's
    validation window holds every distinct item a user touched after the cut-off, in time order;
    its first is the one event whose probability given exactly that input is what the service
    serves, ``P(next item | history)``. See :func:`calibrate_temperature` for why the later
    targets are not used as cases of their own.
    """
    if evalset.single_target:
        return evalset
    from chronorec.scoring.cases import EvalSet

    rows = np.flatnonzero(np.diff(evalset.target_offsets) > 0)  # a case without targets has no next item
    firsts = [t[:1] for t in evalset.targets(rows)]
    return EvalSet.build(evalset.users[rows], evalset.inputs(rows), firsts, evalset.name)


def _collect_logits(
    model: Any, evalset: Any, batch_size: int = SCORE_BATCH, *, exclude_history: bool = True
) -> tuple[list[np.ndarray], np.ndarray]:
    """Per batch: raw scores with padding (and, with ``exclude_history``, the history) at -inf; and
    the target ids (single-target cases)."""
    import torch

    from chronorec.scoring.ranking_metrics import exclude_items

    rows_all = [r for r in range(len(evalset)) if len(evalset.inputs([r])[0]) > 0]
    out, targets = [], []
    with torch.inference_mode():
        for s in range(0, len(rows_all), batch_size):
            rows = np.asarray(rows_all[s : s + batch_size])
            hist = evalset.inputs(rows)
            scores = model.score(evalset.users[rows], hist).float()
            if exclude_history:
                exclude_items(scores, hist)
            else:
                scores[:, 0] = -torch.inf
            out.append(scores.numpy().astype(np.float64))
            targets.extend(int(t[0]) for t in evalset.targets(rows))
    return out, np.asarray(targets, dtype=np.int64)


def _nll_and_top(logits: list[np.ndarray], targets: np.ndarray, T: float) -> tuple[float, np.ndarray, np.ndarray]:
    """Mean NLL over the targets that can be ranked (finite score: not excluded), and the top-1
    confidence and correctness of every case (an unrankable target makes its top-1 wrong)."""
    nll, n_ranked, conf, correct = 0.0, 0, [], []
    pos = 0
    for z in logits:
        zt = z / T
        m = zt.max(1, keepdims=True)
        lse = m[:, 0] + np.log(np.exp(zt - m).sum(1))
        t = targets[pos : pos + len(z)]
        tz = zt[np.arange(len(z)), t]
        ok = np.isfinite(tz)
        nll += float((lse[ok] - tz[ok]).sum())
        n_ranked += int(ok.sum())
        top = zt.argmax(1)
        conf.append(np.exp(zt[np.arange(len(z)), top] - lse))
        correct.append(top == t)
        pos += len(z)
    mean = nll / n_ranked if n_ranked else float("nan")
    return mean, np.concatenate(conf) if conf else np.zeros(0), np.concatenate(correct) if correct else np.zeros(0)


def calibrate_temperature(
    model: Any,
    evalset: Any,
    *,
    bounds: tuple[float, float] = (1e-2, 1e3),
    n_bins: int = 10,
    exclude_history: bool | None = None,
) -> dict[str, Any]:
    """Fit ``T`` minimising the NLL of the true next item under ``softmax(score / T)``.

    One case per user: its input history and its next item. Leave-one-out validation has exactly
    that. A global time split's validation window has several targets per user (every item touched
    after the cut-off); only the first is used (:func:`next_item_cases`), because

    * the served probability is ``P(next item | history)``, and only the first event after the cut-off
      is the next item of that history: the later ones follow events the input does not hold, so they
      are harder to predict, and fitting ``T`` on them would flatten the distribution served for the
      next item (too low a confidence);
    * every (user, target) pair as a case of its own would share one input and one score vector
      among a user's pairs -- correlated cases, not independent ones -- and weigh users by how many
      distinct items they touched in the window, so heavy users would set the temperature for all;
    * one case per user keeps the cases independent and the NLL the same estimand as on
      leave-one-out validation, so temperatures fitted on either protocol compare.

    ``n_targets`` reports the window's targets and ``targets`` which were used (``"all"`` when there
    was one per case, ``"first"`` otherwise).

    ``exclude_history`` None: the model's history protocol (the one its recommendations use).
    With the history excluded the history items get no probability, so a target
    that repeats a history item cannot be ranked: it is left out of the NLL (``n_skipped`` counts
    them, with targets unknown to the model) rather than given an arbitrary loss; with
    ``exclude_history=False`` every known target counts. Returns ``temperature``, ``nll_before``
    (T = 1), ``nll_after``, ``ece_before``, ``ece_after``, ``n_cases``, ``n_skipped``, ``n_targets``,
    ``targets``, ``exclude_history`` and the two reliability curves (``curve_before``, ``curve_after``
    as DataFrames, over every case). Cases with an empty input history are not counted (they get
    popularity, not model scores).
    """
    from scipy.optimize import minimize_scalar

    n_targets = int(len(evalset.target_items))
    used = "all" if evalset.single_target else "first"
    evalset = next_item_cases(evalset)
    if exclude_history is None:  # the model's history protocol, recorded at fit (a bare scorer: excluded)
        exclude_history = model.exclude_history if isinstance(model, Recommender) else True
    logits, targets = _collect_logits(model, evalset, exclude_history=exclude_history)
    if not len(targets):
        raise DataError("no validation case with a non-empty history to calibrate on")
    rankable = sum(int(np.isfinite(z[np.arange(len(z)), targets[p : p + len(z)]]).sum()) for z, p in _starts(logits))
    if rankable == 0:
        raise DataError(
            "no validation target can be ranked: each is in its history, which is excluded (calibrate with "
            "exclude_history=False), or unknown to the model"
        )
    res = minimize_scalar(
        lambda lt: _nll_and_top(logits, targets, math.exp(lt))[0],
        bounds=(math.log(bounds[0]), math.log(bounds[1])),
        method="bounded",
        options={"xatol": 1e-3},
    )
    T = float(math.exp(res.x))
    nll0, conf0, cor0 = _nll_and_top(logits, targets, 1.0)
    nll1, conf1, cor1 = _nll_and_top(logits, targets, T)
    before = reliability_curve(conf0, cor0, n_bins=n_bins)
    after = reliability_curve(conf1, cor1, n_bins=n_bins)
    return {
        "temperature": T,
        "nll_before": nll0,
        "nll_after": nll1,
        "ece_before": expected_calibration_error(before),
        "ece_after": expected_calibration_error(after),
        "n_cases": int(len(targets)),
        "n_skipped": int(len(targets) - rankable),
        "n_targets": n_targets,
        "targets": used,
        "exclude_history": exclude_history,
        "curve_before": before,
        "curve_after": after,
    }


def _starts(logits: list[np.ndarray]) -> list[tuple[np.ndarray, int]]:
    """Each batch with the position of its first case."""
    out, pos = [], 0
    for z in logits:
        out.append((z, pos))
        pos += len(z)
    return out


# ============================================================================ tuning and offline evaluation
def _sparse_evalset(evalset: Any, sparse_below: int) -> Any:
    """The validation cases with inputs cut to their last 1 .. sparse_below - 1 items (row r keeps r % m + 1)."""
    from chronorec.scoring.cases import EvalSet

    m = max(sparse_below - 1, 1)
    inputs = [h[-(r % m + 1) :] if len(h) else h for r, h in enumerate(evalset.inputs(slice(None)))]
    return EvalSet.build(evalset.users, inputs, evalset.targets(slice(None)), evalset.name + "-sparse")


def tune_blend(
    pipeline: RecommendPipeline,
    evalset: Any,
    *,
    sparse_below: int = 5,
    grid: Sequence[float] = (0.0, 0.1, 0.25, 0.5, 1.0),
    popularity_source: Literal["global", "context"] = "global",
    metric: str = "NDCG@10",
) -> tuple[BlendOptions, pd.DataFrame]:
    """Grid-search the popularity and content weights (model weight 1) on sparse validation histories.

    Sparse users are simulated by cutting each validation input to its last 1..sparse_below-1
    items. Metrics come from :func:`chronorec.scoring.ranking_metrics.evaluate_ranking` on the blended
    probabilities. Returns the best :class:`BlendOptions` and the table of every combination.
    """
    import torch

    from chronorec.scoring.ranking_metrics import evaluate_ranking

    es = _sparse_evalset(evalset, sparse_below)
    rows = []
    for wp in grid:
        for wc in grid:
            opts = BlendOptions(
                model=1.0, popularity=wp, content=wc, popularity_source=popularity_source, sparse_below=sparse_below
            )

            def score_fn(users, hist, opts=opts):
                probs, _, _ = pipeline.probabilities(users, hist, blend=opts)
                return torch.from_numpy(probs)

            m = evaluate_ranking(score_fn, es, n_items=pipeline.n_items, ks=(10,))
            rows.append({"popularity": wp, "content": wc, **m})
    table = pd.DataFrame(rows)
    best = table.sort_values(metric, ascending=False, kind="stable").iloc[0]
    return (
        BlendOptions(
            model=1.0,
            popularity=float(best["popularity"]),
            content=float(best["content"]),
            popularity_source=popularity_source,
            sparse_below=sparse_below,
        ),
        table,
    )


def list_metrics(
    pipeline: RecommendPipeline, lists: Sequence[RankedList], targets: Sequence[np.ndarray] | None, *, k: int = 10
) -> dict[str, float]:
    """NDCG@k / HR@k (through :func:`chronorec.scoring.ranking_metrics.ranking_metrics_from_ranks`), coverage,
    intra-list diversity (mean pairwise 1 - similarity) and novelty (mean -log2 popularity share)."""
    from chronorec.scoring.ranking_metrics import ranking_metrics_from_ranks

    out: dict[str, float] = {}
    if targets is not None:
        ranks = np.full(len(lists), np.inf)
        for r, (x, t) in enumerate(zip(lists, targets, strict=True)):
            hit = np.flatnonzero(x.items[:k] == int(t[0]))
            if len(hit):
                ranks[r] = hit[0] + 1
        m = ranking_metrics_from_ranks(ranks, ks=(k,))
        out[f"NDCG@{k}"], out[f"HR@{k}"] = m[f"NDCG@{k}"], m[f"HR@{k}"]
    shown = np.concatenate([x.items[:k] for x in lists]) if lists else np.zeros(0, np.int64)
    out[f"Coverage@{k}"] = float(len(np.unique(shown)) / pipeline.n_items)
    ild = []
    for x in lists:
        items = x.items[:k]
        if len(items) < 2:
            continue
        sim = pipeline.similarity("auto", items)
        if sim is None:
            continue
        iu = np.triu_indices(len(items), 1)
        ild.append(float((1 - sim[iu]).mean()))
    out["ILD"] = float(np.mean(ild)) if ild else float("nan")
    pop = pipeline.model.popularity.astype(np.float64)
    share = (pop + 1) / (pop[1:].sum() + pipeline.n_items)
    out["novelty"] = float((-np.log2(share[shown])).mean()) if len(shown) else float("nan")
    return out


def evaluate_postprocessing(
    pipeline: RecommendPipeline,
    evalset: Any,
    variants: Mapping[str, RecommendOptions],
    *,
    k: int = 10,
) -> pd.DataFrame:
    """One row per variant (e.g. ``{"plain": RecommendOptions(), "mmr 0.3": ...}``): NDCG@k, HR@k,
    Coverage@k, ILD and novelty of the final lists on the next item of each case of ``evalset``
    (the first target of a case with several: :func:`next_item_cases`)."""
    evalset = next_item_cases(evalset)
    hist = evalset.inputs(slice(None))
    targets = evalset.targets(slice(None))
    rows = []
    for name, opts in variants.items():
        opts = opts.model_copy(update={"k": k})
        lists = pipeline.rank(evalset.users, hist, opts)
        rows.append({"variant": name, **list_metrics(pipeline, lists, targets, k=k)})
    return pd.DataFrame(rows)


__all__ = ["calibrate_temperature", "evaluate_postprocessing", "list_metrics", "next_item_cases", "tune_blend"]
