"""The next-basket comparison of saved models (:mod:`chronorec.evaluation.basket` for the protocol)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from chronorec.errors import ConfigError
from chronorec.scoring.basket_metrics import BASKET_KS, PROTOCOL, evaluate_baskets
from chronorec.scoring.cases import Split

__all__ = ["compare_basket_models"]


def compare_basket_models(
    model_dirs: Sequence[str | Path],
    log: Any,
    checked_split: Split,
    *,
    part: str = "test",
    ks: Sequence[int] = BASKET_KS,
    allow_leak: bool = False,
    **context: Any,
) -> dict[str, Any]:
    """Evaluate saved models on the next-basket split ``checked_split`` of ``log`` (:func:`evaluate_baskets`), each
    first checked against its training record (:func:`chronorec.evaluation.leak.check_evaluation`),
    and test every model against the first, paired over the same users on Recall and NDCG at the
    largest K. Returns the provenance record with ``results`` (one per model) and ``warnings``."""
    from chronorec.evaluation.leak import check_evaluation
    from chronorec.evaluation.stats import paired_test
    from chronorec.workflows.experiment import evalset_for_model, load_models, model_record, provenance

    split = checked_split
    if split.protocol != PROTOCOL:
        raise ConfigError(f"the next-basket evaluation needs a next-basket split, not {split.protocol!r}")
    cases = split.test if part == "test" else split.validation
    dirs = [Path(p) for p in model_dirs]
    models = load_models(dirs)
    names = list(models)
    checks = {
        label: check_evaluation(label, m, log, split, cases, part=part, allow_leak=allow_leak)
        for label, m in models.items()
    }
    results: dict[str, Any] = {}
    per_user: dict[str, dict[str, np.ndarray]] = {}
    for (label, model), d in zip(models.items(), dirs, strict=True):
        metrics, per_user[label] = evaluate_baskets(
            model.score, evalset_for_model(model, log, cases), n_items=model.n_items, ks=ks, return_per_user=True
        )
        results[label] = model_record(model, {part: metrics}, model_dir=str(d), leak_check=checks[label])
    k = max(ks)
    significance = {
        label: {m: paired_test(per_user[names[0]][m], per_user[label][m]) for m in (f"Recall@{k}", f"NDCG@{k}")}
        for label in names[1:]
    }
    return provenance(
        **context,
        protocol=PROTOCOL,
        part=part,
        ks=list(ks),
        history_protocol={"used": "include", "mode": "next-basket", "reason": "repeat purchases are targets"},
        n_cases=len(cases),
        results=results,
        warnings=[w for c in checks.values() for w in c["warnings"]],
        significance=significance,
    )
