"""Repeat-aware blend: a learned model and buy-again ranked together as a repeat/explore mixture.

``p(i) = (1 - w) * softmax(z(model scores) / T)[i] + w * repeat(i)``, where ``z`` standardises each
row of the model's scores (so any model's scale works), and ``repeat`` is the user's recency-decayed
item counts (:mod:`chronorec.models.baselines.buyagain`) normalised to sum to 1 over the history.
``w`` (the repeat share) and ``T`` are chosen on validation by NDCG@10 with the history included,
and saved with the model; ``w = 0`` is the model alone, ``w`` near 1 is buy-again with the model
ranking the new items.

Train it from the command line (``chronorec train --kind repeat-blend -p base='{"kind": "sasrec"}'``)
or wrap an already fitted model: ``RepeatBlend.from_model(sasrec, validation=split.validation)``.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field

from chronorec.models.base import ModelConfig, Recommender
from chronorec.models.baselines.buyagain import BuyAgain, repeat_counts

WEIGHT_GRID = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.95, 0.98, 0.99)
TEMPERATURE_GRID = (0.25, 0.5, 1.0, 2.0)
_CELLS = 20_000_000  # validation scores cached for the grid search: at most this many floats per matrix


class RepeatBlendConfig(ModelConfig):
    kind: Literal["repeat-blend"] = Field("repeat-blend", description="the model kind")
    base: dict[str, Any] = Field(
        default_factory=lambda: {"kind": "sasrec"}, description="the learned model: its kind and parameters"
    )
    weight: float | None = Field(
        None, ge=0, le=1, description=f"repeat share w; None: chosen on validation among {list(WEIGHT_GRID)}"
    )
    temperature: float | None = Field(
        None,
        gt=0,
        le=1000,
        description=f"softmax temperature of the model's z-scores; None: chosen among {TEMPERATURE_GRID}",
    )
    decay: float | None = Field(None, ge=0, le=100, description="buy-again decay; None: chosen on validation")
    max_validation: int = Field(
        5000, ge=1, le=10_000_000, description="validation cases used to choose w and T (a seeded sample)"
    )


def _share_fitted(src: Recommender, dst: Recommender) -> None:
    """Give ``dst`` the data ``src`` was fitted on (id maps, histories, popularity, records)."""
    dst.users, dst.items, dst.store = src.users, src.items, src.store
    dst.popularity, dst.item_names = src.popularity, src.item_names
    dst.context_vocab = dict(src.context_vocab)
    dst.training_data = copy.deepcopy(src.training_data)
    dst.history_protocol = copy.deepcopy(src.history_protocol)


def _standardise(model_scores: torch.Tensor) -> torch.Tensor:
    """Each row of the scores (without the padding column) as z-scores."""
    body = model_scores.float()[:, 1:]
    return (body - body.mean(1, keepdim=True)) / body.std(1, keepdim=True).clamp_min(1e-12)


def _log_repeat(counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """log of each row's counts normalised to sum 1 (-inf outside the history), and which rows have any."""
    total = counts[:, 1:].sum(1, keepdim=True)
    return torch.log(counts[:, 1:] / total.clamp_min(1e-12)), total > 0


def _mix(log_model: torch.Tensor, log_rep: torch.Tensor, has: torch.Tensor, weight: float) -> torch.Tensor:
    if weight <= 0:
        mixed = log_model
    elif weight >= 1:
        mixed = log_rep
    else:
        mixed = torch.logaddexp(np.log1p(-weight) + log_model, np.log(weight) + log_rep)
    mixed = torch.where(has, mixed, log_model)  # no history: the model alone
    out = torch.full((mixed.shape[0], mixed.shape[1] + 1), -torch.inf)
    out[:, 1:] = mixed
    return out


def mixture_scores(model_scores: torch.Tensor, counts: torch.Tensor, weight: float, temperature: float) -> torch.Tensor:
    """``log((1 - w) softmax(z / T) + w * counts / counts.sum())`` per row; column 0 stays -inf."""
    log_rep, has = _log_repeat(counts)
    return _mix(torch.log_softmax(_standardise(model_scores) / temperature, dim=1), log_rep, has, weight)


class RepeatBlend(Recommender):
    kind = "repeat-blend"
    ranks_own_items = True
    Config = RepeatBlendConfig

    def __init__(self, **params: Any):
        super().__init__(**params)
        self.base: Recommender | None = None
        self.weight = self.config.weight
        self.temperature = self.config.temperature
        self.decay = self.config.decay

    @classmethod
    def from_model(cls, model: Recommender, *, validation: Any = None, **params: Any) -> "RepeatBlend":
        """A blend of an already fitted ``model`` with buy-again, its weights chosen on ``validation``
        (an EvalSet of the model's data)."""
        blend = cls(base=model.config.model_dump(), **params)
        _share_fitted(model, blend)
        blend.base = model
        t0 = time.perf_counter()
        blend._fit_blend(validation)
        blend.fit_info["train_seconds"] = model.fit_info.get("train_seconds", 0.0) + time.perf_counter() - t0
        return blend

    def _fit(self, log, validation) -> None:
        from chronorec.models.registry import registry

        params = dict(self.config.base)
        kind = params.pop("kind", None)
        if kind is None or kind == self.kind:
            raise ValueError("repeat-blend: base must name another model kind, e.g. {'kind': 'sasrec'}")
        self.base = registry.get(kind)(**params).fit(log, validation=validation)
        self._fit_blend(validation)

    def _fit_blend(self, validation: Any) -> None:
        buy = BuyAgain(decay=self.config.decay)
        _share_fitted(self, buy)
        buy._fit(None, validation)
        self.decay = buy.decay
        self.fit_info.update({"decay": self.decay, "base": dict(self.base.fit_info)})
        self.fit_info["history_protocol"] = self.history_protocol
        if self.weight is None or self.temperature is None:
            if validation is not None and len(validation):
                self.weight, self.temperature, table = self._choose(validation)
                self.fit_info["grid"] = table
            self.weight = 0.5 if self.weight is None else self.weight
            self.temperature = 1.0 if self.temperature is None else self.temperature
        self.fit_info.update({"weight": self.weight, "temperature": self.temperature})

    def _choose(self, validation: Any) -> tuple[float, float, list[dict[str, float]]]:
        """(w, T) maximising validation NDCG@10 (under the model's history protocol) over the grids."""
        from chronorec.scoring.monitor import validation_metrics

        n_max = max(1, min(self.config.max_validation, _CELLS // (self.n_items + 1)))
        rows = np.arange(len(validation))
        if len(rows) > n_max:
            rows = np.sort(np.random.default_rng(0).choice(rows, n_max, replace=False))
        hist = validation.inputs(rows)
        cases = validation.subset(rows, users=np.arange(len(rows)), name="blend-validation")  # users = row numbers
        with torch.inference_mode():
            z = torch.cat(
                [
                    self.base.score(validation.users[rows[s : s + 512]], hist[s : s + 512])
                    for s in range(0, len(rows), 512)
                ]
            )
            z = _standardise(z)
        log_rep, has = _log_repeat(repeat_counts(hist, self.n_items, float(self.decay), 500))
        table = []
        for T in TEMPERATURE_GRID if self.temperature is None else (self.temperature,):
            log_model = torch.log_softmax(z / T, dim=1)
            for w in WEIGHT_GRID if self.weight is None else (self.weight,):

                def score_fn(idx, _hist, w=w, log_model=log_model):
                    idx = torch.from_numpy(np.asarray(idx, dtype=np.int64))
                    return _mix(log_model[idx], log_rep[idx], has[idx], w)

                m = validation_metrics(score_fn, cases, n_items=self.n_items, exclude_history=self.exclude_history)
                table.append({"weight": w, "temperature": T, "NDCG@10": m["NDCG@10"], "HR@10": m["HR@10"]})
        best = max(table, key=lambda r: r["NDCG@10"])
        return float(best["weight"]), float(best["temperature"]), table

    def _score(self, users: np.ndarray, histories: list[np.ndarray]) -> torch.Tensor:
        base = self.base.score(users, histories)
        counts = repeat_counts(histories, self.n_items, float(self.decay), 500)
        return mixture_scores(base, counts, float(self.weight), float(self.temperature))

    # ------------------------------------------------------------------ explanations
    def shares(self, history: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(buy-again part, model part)`` of each item's blended probability ``p = w r + (1 - w) m``."""
        h = np.asarray(history, dtype=np.int64)
        with torch.inference_mode():
            base = self.base.score(np.zeros(1, np.int64), [h])
            log_model = torch.log_softmax(_standardise(base) / float(self.temperature), dim=1)[0].double().numpy()
        counts = repeat_counts([h], self.n_items, float(self.decay), 500)[0].double().numpy()
        total = counts[1:].sum()
        idx = np.asarray(items, dtype=np.int64)
        w = float(self.weight) if total > 0 else 0.0
        rep = w * counts[idx] / total if total > 0 else np.zeros(len(idx))
        return rep, (1.0 - w) * np.exp(log_model[idx - 1])

    def explain_items(self, history: np.ndarray, items: np.ndarray, n: int) -> list[list[tuple[int, float]]]:
        """The base model's contributions where it has them (ItemKNN, EASE); else each repeated
        item itself with its buy-again share of the probability."""
        own = self.base.explain_items(history, items, n)
        if own is not None:
            return own
        rep, _ = self.shares(history, items)
        return [[(int(it), float(r))] if r > 0 and n > 0 else [] for it, r in zip(items, rep, strict=True)]

    def history_reasons(self, history: np.ndarray, items: np.ndarray) -> list[str]:
        """``"buy-again 83% / <base kind> 17% (repeat share w = 0.7)"`` for each item."""
        rep, mod = self.shares(history, items)
        out = []
        for r, m in zip(rep, mod, strict=True):
            share = r / (r + m) if r + m > 0 else 0.0
            out.append(
                f"buy-again {100 * share:.0f}% / {self.base.kind} {100 * (1 - share):.0f}% "
                f"(repeat share w = {self.weight:g})"
            )
        return out

    # ------------------------------------------------------------------ persistence
    def _state(self) -> dict[str, np.ndarray]:
        return {"blend": np.asarray([self.weight, self.temperature, self.decay], dtype=np.float64)}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.weight, self.temperature, self.decay = (float(x) for x in state["blend"])

    def save(self, directory: str | Path) -> Path:
        from chronorec.artifacts import atomic_dir

        if self.base is None:
            raise RuntimeError("cannot save an unfitted repeat-blend")
        final = Path(directory)
        with atomic_dir(final) as d:  # the learned model in base/, the blend beside it, renamed together
            self.base.save(d / "base")
            self._write(d, {"base": "base"})
        return final

    @classmethod
    def _load_dir(cls, d: Path, device: str = "auto") -> "RepeatBlend":
        from chronorec.models.registry import load

        model = super()._load_dir(d, device=device)
        model.base = load(d / "base", device=device)
        return model
