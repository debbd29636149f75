"""Score-level ensembles of recommenders over one catalogue.

Each member's scores for a batch are turned into log-probabilities over the catalogue
(``combine="log_softmax"``, the default: a product of the members' next-item distributions) or
standardised per row (``"zscore"``), then summed with the given weights. Members are fitted in turn
on the same log (``members``: their configurations, e.g. two SASRec seeds) or taken already fitted
(:meth:`Ensemble.from_models`). Saving writes every member into its own sub-folder.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
from pydantic import Field

from chronorec.artifacts import atomic_dir, write_manifest
from chronorec.data.eventlog import EventLog
from chronorec.errors import ConfigError
from chronorec.models.base import ModelConfig, Recommender


def _fit_info(models: Sequence[Recommender]) -> dict[str, Any]:
    """Members' fit information, and their summed training time (the ensemble's training cost)."""
    secs = [m.fit_info.get("train_seconds") for m in models]
    info: dict[str, Any] = {"members": [m.fit_info for m in models]}
    if all(s is not None for s in secs):
        info["train_seconds"] = float(sum(secs))
    protocols = [m.history_protocol for m in models if m.history_protocol is not None]
    if protocols:
        if len({p["exclude"] for p in protocols}) > 1:
            labels = ", ".join(f"{m.kind}: {m.history_label}" for m in models)
            raise ValueError(
                f"the members were trained with different history protocols ({labels}); retrain them with "
                "the same history setting (-p history=include or exclude)"
            )
        info["history_protocol"] = protocols[0]
    return info


class EnsembleConfig(ModelConfig):
    kind: Literal["ensemble"] = Field("ensemble", description="the model kind")
    members: list[dict[str, Any]] = Field(default_factory=list, description="member configurations, each with a kind")
    weights: list[Annotated[float, Field(ge=0, le=1e6)]] | None = Field(
        None, max_length=1000, description="member weights (None: equal)"
    )
    combine: Literal["log_softmax", "zscore"] = Field(
        "log_softmax", description="sum the members' log-probabilities or per-row z-scores"
    )


class Ensemble(Recommender):
    kind = "ensemble"
    Config = EnsembleConfig

    def __init__(self, **params: Any):
        super().__init__(**params)
        w = self.config.weights
        if w is not None and len(w) != len(self.config.members):
            raise ConfigError(f"{len(w)} weights for {len(self.config.members)} members")
        self.models: list[Recommender] = []

    @property
    def uses_context(self) -> bool:  # type: ignore[override]
        return any(m.uses_context for m in self.models)

    @property
    def members(self) -> list[Recommender]:
        return self.models

    @property
    def request_features(self) -> list[str]:
        """What any member conditions on."""
        return sorted({f for m in self.models for f in m.request_features})

    @property
    def history_context(self) -> bool:
        return any(m.history_context for m in self.models)

    @property
    def max_history_width(self) -> int | None:
        """The widest member's (None when no member has a fixed width)."""
        widths = [w for m in self.models if (w := m.max_history_width) is not None]
        return max(widths) if widths else None

    @classmethod
    def from_models(
        cls,
        models: Sequence[Recommender],
        weights: Sequence[float] | None = None,
        combine: Literal["log_softmax", "zscore"] = "log_softmax",
    ) -> "Ensemble":
        """An ensemble of fitted models, which must share the item id map (same training data)."""
        if not models:
            raise ConfigError("an ensemble needs at least one model")
        first = models[0]
        for m in models[1:]:
            if m.items is None or not np.array_equal(m.items.external_ids, first.items.external_ids):
                n_m = 0 if m.items is None else m.items.size
                raise ConfigError(
                    f"{type(m).__name__} was fitted on another catalogue ({n_m:,} items) than "
                    f"{type(first).__name__} ({first.items.size:,} items): ensemble models trained on the same data"
                )
        ens = cls(
            members=[m.config.model_dump() for m in models],
            weights=list(weights) if weights is not None else None,
            combine=combine,
        )
        ens.models = list(models)
        ens.users, ens.items, ens.store = first.users, first.items, first.store
        ens.popularity, ens.item_names, ens.context_vocab = first.popularity, first.item_names, first.context_vocab
        ens.fit_info = _fit_info(models)
        ens.history_protocol = ens.fit_info.get("history_protocol")
        return ens

    def _fit(self, log: EventLog, validation: Any) -> None:
        from chronorec.models import registry

        if not self.config.members:
            raise ValueError("an ensemble needs at least one member configuration")
        self.models = []
        for spec in self.config.members:
            params = {k: v for k, v in spec.items() if k != "kind"}
            self.models.append(registry.get(spec["kind"])(**params).fit(log, validation=validation))
        self.fit_info = _fit_info(self.models)
        self.history_protocol = self.fit_info.get("history_protocol", self.history_protocol)

    def _score(
        self, users: np.ndarray, histories: list[np.ndarray], context: list[dict[str, Any] | None] | None = None
    ) -> torch.Tensor:
        w = self.config.weights or [1.0] * len(self.models)
        total = None
        for weight, m in zip(w, self.models, strict=True):
            s = m.score(users, histories, context).float().clone()
            s[:, 0] = -torch.inf  # the padding column
            if self.config.combine == "log_softmax":
                s = torch.log_softmax(s, dim=1)
            else:
                body = s[:, 1:]
                s[:, 1:] = (body - body.mean(1, keepdim=True)) / body.std(1, keepdim=True).clamp_min(1e-12)
            total = weight * s if total is None else total + weight * s
        return total

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        if not self.models:
            raise RuntimeError("cannot save an unfitted ensemble")
        final = Path(directory)
        with atomic_dir(final) as d:  # members and manifest written aside, renamed into place together
            names = [f"member_{i}" for i in range(len(self.models))]
            for name, m in zip(names, self.models, strict=True):
                m.save(d / name)
            meta = {"kind": self.kind, "config": self.config.model_dump(), "fit_info": self.fit_info, "members": names}
            (d / "config.json").write_text(json.dumps(meta, indent=2))
            write_manifest(d, self.kind, extra={"members": names})
        return final

    @classmethod
    def _load_dir(cls, d: Path, device: str = "auto") -> "Ensemble":
        from chronorec.models.registry import load

        manifest, meta = cls._read_meta(d)
        models = [load(d / name, device=device) for name in manifest["members"]]
        cfg = meta["config"]
        ens = cls.from_models(models, weights=cfg.get("weights"), combine=cfg.get("combine", "log_softmax"))
        ens.fit_info = meta.get("fit_info", ens.fit_info)
        ens.history_protocol = ens.fit_info.get("history_protocol", ens.history_protocol)
        return ens
