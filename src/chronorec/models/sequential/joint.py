"""One sequence model for what and when: next item, next behaviour type and the time to each type.

A SASRec trunk (causal Transformer over the user's events; each token sums the item, its behaviour
type and the log-scale gap since the previous event, the ``use_context`` codes of
:mod:`~chronorec.models.sequential.context`) with three heads trained jointly, as HSTU predicts actions
beside items (Zhai et al. 2024):

* **next item**: the tied item embeddings and the configured next-item loss, exactly SASRec's (so a
  SASRec of the same settings is the fair comparison);
* **next behaviour type**: a softmax over the behaviour types of the next event;
* **time to the next event of each type**: :class:`~chronorec.nn.time_heads.LogNormalMixtureHead`
  with one mark per behaviour type. From every position the target of mark ``b`` is the time to the
  user's next ``b`` event in the training log, or, where there is none, the time to the end of the
  training window as a right-censored case (its likelihood is the survival ``S(c)``).

The joint loss is ``item + behavior_weight * behaviour CE + time_weight * time NLL``. Epochs are chosen
on validation next-item NDCG@10, as SASRec's. One fitted model answers ``P(a b event within H)`` for any
``H`` (:meth:`JointSASRec.event_outlook`): at a cut-off ``t`` with the last event at ``t - e``, it is
``1 - S(e + H) / S(e)``, the chance of a ``b`` event in ``[t, t + H)`` given none since the last event.
A log without behaviour types has one mark (any event); a log without timestamps trains no time head.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from chronorec.errors import ConfigError
from chronorec.models.sequential.recommender import Batch
from chronorec.models.sequential.sasrec import SASRec, SASRecConfig, SASRecModule
from chronorec.models.sequential.windows import gather
from chronorec.nn.time_heads import LogNormalMixtureHead

__all__ = ["JointConfig", "JointSASRec", "event_time_targets"]


class JointConfig(SASRecConfig):
    kind: Literal["joint"] = Field("joint", description="the model kind")
    use_context: bool = Field(
        True, description="sum context embeddings (behaviour, time gap, hour, weekday, columns) into tokens"
    )
    behavior_weight: float = Field(1.0, ge=0, le=100, description="weight of the next-behaviour cross-entropy")
    time_weight: float = Field(1.0, ge=0, le=100, description="weight of the time-to-event negative log-likelihood")
    time_components: int = Field(8, ge=1, le=64, description="log-normal components per behaviour type")
    min_gap_s: float = Field(
        1.0, gt=0, le=86_400, description="times to an event are floored here (events in the same second)"
    )


def event_time_targets(
    offsets: np.ndarray, timestamps: np.ndarray, marks: np.ndarray, n_marks: int, end: int, min_gap: float
) -> tuple[np.ndarray, np.ndarray]:
    """For every event of a flat store, the time to the same user's next event of each mark (strictly
    later in the sequence) and whether it was observed; where the user has none, the time to ``end``
    (the end of the training window), censored. ``marks`` are 0-based (-1: an event of no mark).

    Returns ``(dt, observed)``, both (n_events, n_marks); ``dt`` in seconds, at least ``min_gap``.
    """
    n = len(timestamps)
    user = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    ts = np.asarray(timestamps, dtype=np.float64)
    dt = np.empty((n, n_marks), np.float64)
    obs = np.zeros((n, n_marks), bool)
    idx = np.arange(n)
    for m in range(n_marks):
        pos = np.flatnonzero(marks == m)
        k = np.searchsorted(pos, idx, side="right")  # the first event of mark m after each event
        has = k < len(pos)
        nxt = pos[np.minimum(k, max(len(pos) - 1, 0))] if len(pos) else idx
        has &= user[nxt] == user if len(pos) else False
        obs[:, m] = has
        dt[:, m] = np.where(has, ts[nxt] - ts, float(end) - ts)
    return np.maximum(dt, min_gap).astype(np.float32), obs


class JointModule(SASRecModule):
    """The SASRec trunk plus the behaviour and time heads."""

    def __init__(self, n_items: int, cfg: JointConfig, context_sizes: dict[str, int] | None, n_marks: int):
        super().__init__(n_items, cfg, context_sizes)
        self.behavior_head = torch.nn.Linear(cfg.dim, n_marks)
        self.time_head = LogNormalMixtureHead(cfg.dim, n_marks, cfg.time_components)


class JointSASRec(SASRec):
    """SASRec with next-behaviour and time-to-event heads trained jointly (see the module docstring)."""

    kind = "joint"
    Config = JointConfig

    def __init__(self, **params: Any):
        super().__init__(**params)
        self._targets: dict[str, np.ndarray] | None = None

    # ------------------------------------------------------------------ marks
    @property
    def behaviors(self) -> list[str]:
        """The marks: the log's behaviour types (their external names), or one mark, ``event``."""
        return list(self.context_vocab.get("behavior", [])) or ["event"]

    @property
    def n_marks(self) -> int:
        return len(self.behaviors)

    def _marks(self, behaviors: np.ndarray | None, n: int) -> np.ndarray:
        """0-based marks of internal behaviour codes (1..B; 0 unknown -> -1); all 0 without types."""
        if behaviors is None or "behavior" not in self.context_vocab:
            return np.zeros(n, np.int64)
        return np.asarray(behaviors, dtype=np.int64) - 1

    def _build_module(self) -> torch.nn.Module:
        return JointModule(self.n_items, self.config, self.context_sizes, self.n_marks)

    # ------------------------------------------------------------------ training
    def _joint_targets(self) -> dict[str, np.ndarray]:
        """Flat per-event targets of the two extra heads (computed once per fit)."""
        if self._targets is None:
            st = self.store
            n = len(st.items)
            marks = self._marks(st.behaviors, n)
            user = np.repeat(np.arange(len(st.offsets) - 1), np.diff(st.offsets))
            same = np.r_[user[1:] == user[:-1], False] if n else np.zeros(0, bool)
            next_mark = np.where(same, np.r_[marks[1:], -1], -1) if n else np.zeros(0, np.int64)
            out = {"next_mark": next_mark.astype(np.int64)}
            if st.timestamps is not None and n:
                end = int(st.timestamps.max())
                dt, obs = event_time_targets(st.offsets, st.timestamps, marks, self.n_marks, end, self.config.min_gap_s)
                out["dt"], out["observed"] = dt, obs
            self._targets = out
        return self._targets

    def _training_setup(self):
        self._targets = None
        batcher, loss_fn = super()._training_setup()
        tg = self._joint_targets()
        if "dt" in tg:
            dt, obs = tg["dt"], tg["observed"]
            seen = dt[obs] if obs.any() else dt.reshape(-1)
            with torch.no_grad():
                self.module.time_head.set_time_scale(torch.from_numpy(seen))
        return batcher, loss_fn

    def _make_batch(self, spans: list[tuple[int, int]], rng: np.random.Generator) -> Batch:
        batch = super()._make_batch(spans, rng)
        inputs = [(a, b - 1) for a, b in spans]
        width = batch["items"].shape[1]
        idx = gather(np.arange(1, len(self.store.items) + 1), inputs, width, right=self.right_padding).numpy() - 1
        tg = self._joint_targets()
        real = idx >= 0
        safe = np.maximum(idx, 0)
        batch["next_mark"] = torch.from_numpy(np.where(real, tg["next_mark"][safe], -1))
        if "dt" in tg:
            batch["dt"] = torch.from_numpy(np.where(real[..., None], tg["dt"][safe], 1.0).astype(np.float32))
            batch["observed"] = torch.from_numpy(tg["observed"][safe] & real[..., None])
        return batch

    def _loss(self, module, batch: Batch) -> torch.Tensor:
        cfg = self.config
        h = self._hidden(module, batch["items"], batch.get("feats"), batch.get("next"))
        y = batch["targets"]
        mask = y > 0
        loss = self._item_loss(module, h[mask], y[mask])
        hm = h[mask].float()
        with torch.autocast(hm.device.type, enabled=False):
            nm = batch["next_mark"][mask]
            ok = nm >= 0
            if cfg.behavior_weight > 0 and bool(ok.any()):
                loss = loss + cfg.behavior_weight * F.cross_entropy(module.behavior_head(hm[ok]), nm[ok])
            if cfg.time_weight > 0 and "dt" in batch:
                params = module.time_head(hm)
                nll = module.time_head.nll(params, batch["dt"][mask], batch["observed"][mask])
                loss = loss + cfg.time_weight * nll
        return loss

    def _fit(self, log, validation) -> None:
        super()._fit(log, validation)
        tg = self._joint_targets()
        self.fit_info["marks"] = self.behaviors
        self.fit_info["time_head"] = "dt" in tg
        if "dt" in tg:
            self.fit_info["censored_share"] = float(1.0 - tg["observed"].mean())
        self._targets = None  # per-fit arrays: not kept with the model

    # ------------------------------------------------------------------ what and when
    def event_outlook(
        self,
        users: Sequence[int] | np.ndarray,
        histories: list[np.ndarray],
        context: list[dict[str, Any] | None] | None,
        at: Sequence[int] | np.ndarray,
        horizons_s: Sequence[float] = (86_400.0,),
    ) -> dict[str, Any]:
        """Next behaviour and time-to-event predictions for internal ``users`` and their internal item
        ``histories`` at the cut-off times ``at`` (UTC seconds, not before each history's last event).

        ``context`` holds each row's per-event ``behavior`` codes and ``timestamp`` seconds (as
        :meth:`score` takes them; None: a known user's stored context). Returns ``behaviors`` (the
        marks), ``next_behavior`` (rows, marks: the type of the next event), ``within`` (rows, marks,
        horizons: P(an event of the mark in [at, at + H) | none between the last event and at)) and
        ``horizons_s``.
        """
        if self.module is None:
            raise RuntimeError("JointSASRec is not fitted: call fit(log) first")
        hz = np.asarray(horizons_s, dtype=np.float64)
        if hz.ndim != 1 or not len(hz) or not np.all(np.isfinite(hz)) or (hz <= 0).any():
            raise ConfigError(f"horizons are a list of positive seconds, not {horizons_s!r}")
        at = np.asarray(at, dtype=np.int64)
        users = np.asarray(users, dtype=np.int64)
        if not (len(at) == len(histories) == len(users)):
            raise ConfigError(f"{len(users)} users, {len(histories)} histories and {len(at)} cut-off times differ")
        last = self._last_times(users, histories, context)
        if np.isfinite(last).any() and (at[np.isfinite(last)] < last[np.isfinite(last)]).any():
            raise ConfigError("a cut-off time is before its history's last event: the history must end before it")
        with torch.inference_mode():
            h = self._queries(users, histories, context).float()
            probs = torch.softmax(self.module.behavior_head(h), -1).cpu().numpy()
            within = np.full((len(h), self.n_marks, len(hz)), np.nan)
            if self.store.timestamps is not None:
                params = self.module.time_head(h)
                e = torch.from_numpy(np.where(np.isfinite(last), at - np.nan_to_num(last), 0.0)).float()
                e = e.clamp_min(self.config.min_gap_s)[:, None].expand(-1, self.n_marks)
                s0 = params.log_survival(e)
                for j, H in enumerate(hz):
                    within[:, :, j] = (1.0 - torch.exp(params.log_survival(e + float(H)) - s0)).clamp(0, 1).numpy()
        return {"behaviors": self.behaviors, "next_behavior": probs, "within": within, "horizons_s": hz.tolist()}

    def _last_times(self, users: np.ndarray, histories: list[np.ndarray], context) -> np.ndarray:
        """Each row's last event time (NaN where the row carries no times)."""
        out = np.full(len(histories), np.nan)
        for r, hist in enumerate(histories):
            ctx = context[r] if context is not None else None
            _, ts, _ = self._row_context(int(users[r]), np.asarray(hist), ctx)
            if ts is not None and len(ts):
                out[r] = float(ts[-1])
        return out
