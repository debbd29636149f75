"""``POST /predict-behavior``: per-user predictions of a saved behaviour model or when-model.

Mounted by ``chronorec serve --behavior-model DIR`` (or ``app.include_router(behavior_router(DIR))``);
the folder's kind decides what the endpoint answers:

* a behaviour model (``predict-behavior --save``): the calibrated probability of the target behaviour
  (e.g. ``buy``) within its horizon, for each user id asked;
* a when-model (``predict-when --save``): *when* queries. The body may add ``horizons_hours`` (1 to
  :data:`MAX_HORIZONS` positive hours, at most :data:`MAX_HORIZON_HOURS`; default the model's own)
  and ``behavior`` (default the model's target); each user gets ``P(behaviour within H)`` per
  horizon (monotone in H: one distribution answers them all), the expected hours, the median and
  the 10 % / 90 % quantiles.

Both predict at the end of the model's data; the per-user predictions (for a when-model, each user's
mixture) are computed once, when the router is built. Unknown users are listed in ``unknown_users``
with a warning, never guessed. A body with no ids, too many, an id that is not a string or an
integer, a horizon out of bounds, an unknown behaviour or a field the model kind does not take is a
422 naming the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints

__all__ = [
    "MAX_HORIZONS",
    "MAX_HORIZON_HOURS",
    "MAX_USERS",
    "BehaviorRequest",
    "BehaviorResponse",
    "WhenRequest",
    "WhenResponse",
    "behavior_router",
]

MAX_USERS = 10_000
MAX_HORIZONS = 32
MAX_HORIZON_HOURS = 24.0 * 366 * 10  # ten years
UserId = (
    Annotated[StrictInt, Field(ge=-(2**63), le=2**63 - 1)]
    | Annotated[str, StringConstraints(min_length=1, max_length=128)]
)
"""A user id as JSON gives it: an int64 integer (``true`` is no integer) or a non-empty string."""
Hours = Annotated[float, Field(gt=0, le=MAX_HORIZON_HOURS, allow_inf_nan=False)]


class BehaviorRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_ids: list[UserId] = Field(min_length=1, max_length=MAX_USERS, description="Users to score.")


class UserProbability(BaseModel):
    user_id: str
    probability: float = Field(description="Calibrated probability of the target behaviour within the horizon.")


class BehaviorResponse(BaseModel):
    target: str
    horizon_hours: float
    at: str = Field(description="Prediction time (UTC): the end of the model's data.")
    predictions: list[UserProbability]
    unknown_users: list[str]
    warnings: list[str]


class WhenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_ids: list[UserId] = Field(min_length=1, max_length=MAX_USERS, description="Users to score.")
    horizons_hours: list[Hours] | None = Field(
        None, min_length=1, max_length=MAX_HORIZONS, description="Horizons H in hours (default: the model's own)."
    )
    behavior: str | None = Field(None, max_length=64, description="Behaviour asked about (default: the target).")


class UserWhen(BaseModel):
    user_id: str
    probabilities: list[float] = Field(description="P(the behaviour within H), one per requested horizon.")
    expected_hours: float = Field(description="Expected hours to the next event (the mixture's mean).")
    median_hours: float
    q10_hours: float
    q90_hours: float


class WhenResponse(BaseModel):
    behavior: str
    target: str
    horizons_hours: list[float]
    at: str = Field(description="Prediction time (UTC): the end of the model's data.")
    predictions: list[UserWhen]
    unknown_users: list[str]
    warnings: list[str]


def behavior_router(model_dir: str | Path) -> APIRouter:
    """A router serving the behaviour model or when-model saved in ``model_dir`` (loaded and scored now)."""
    from chronorec.artifacts import read_manifest
    from chronorec.temporal.when.model import KIND as WHEN_KIND

    try:
        kind = read_manifest(model_dir).get("kind")
    except FileNotFoundError:
        kind = None  # the loader below names the problem
    if kind == WHEN_KIND:
        return _when_router(model_dir)
    return _classifier_router(model_dir)


def _unknown_warning(unknown: list[str], at: str) -> list[str]:
    return [f"{len(unknown)} user id(s) have no events before {at}: no prediction"] if unknown else []


def _classifier_router(model_dir: str | Path) -> APIRouter:
    from chronorec.temporal.behavior.model import load_behavior_model

    model = load_behavior_model(model_dir)
    table = model.predict()
    probs = dict(zip(table["user_id"].astype(str), table["probability"].astype(float), strict=True))
    at = str(table["at"].iloc[0]) if len(table) else ""
    target, hours = model.settings["target"], model.settings["horizon_s"] / 3600
    router = APIRouter()

    @router.post("/predict-behavior", response_model=BehaviorResponse, tags=["behaviour"])
    def predict_behavior(req: BehaviorRequest) -> BehaviorResponse:
        """Calibrated P(target behaviour within the horizon) per user id, at the end of the model's data."""
        ids = [str(u) for u in req.user_ids]
        known = [u for u in ids if u in probs]
        unknown = [u for u in ids if u not in probs]
        return BehaviorResponse(
            target=target,
            horizon_hours=hours,
            at=at,
            predictions=[UserProbability(user_id=u, probability=probs[u]) for u in known],
            unknown_users=unknown,
            warnings=_unknown_warning(unknown, at),
        )

    return router


class _Mixtures:
    """Every known user's mixture per behaviour, as numpy (a request costs one CDF per horizon)."""

    def __init__(self, model: Any):
        from chronorec.temporal.when.model import QUANTILES

        data = model.cases_at(None, None)
        mix = model.mixture(data)
        p = mix.params
        self.users = {str(u): i for i, u in enumerate(data.cases["user_id"].to_numpy())}
        self.w = p.log_w.exp().numpy().astype(np.float64)  # (n, B, K)
        self.mu, self.sigma = p.mu.numpy().astype(np.float64), p.sigma.numpy().astype(np.float64)
        self.loc, self.scale = float(p.loc), float(p.scale)
        self.mean = np.nan_to_num(np.minimum(mix.mean(), 1e12), nan=1e12)  # a heavy tail stays JSON-finite
        self.q = {q: mix.quantile(q) for q in QUANTILES}
        self.at = str(data.cases["cutoff"].map(lambda t: _utc(t)).iloc[0]) if len(data.cases) else ""

    def cdf(self, rows: np.ndarray, b: int, hours: list[float]) -> np.ndarray:
        from scipy.special import ndtr

        z = (np.log(np.asarray(hours, dtype=np.float64)) - self.loc) / self.scale  # (H,)
        mu, sigma, w = self.mu[rows, b], self.sigma[rows, b], self.w[rows, b]  # (n, K)
        return np.clip((w[:, None, :] * ndtr((z[None, :, None] - mu[:, None, :]) / sigma[:, None, :])).sum(-1), 0, 1)


def _utc(t: int) -> str:
    import pandas as pd

    return str(pd.Timestamp(int(t), unit="s", tz="UTC"))


def _when_router(model_dir: str | Path) -> APIRouter:
    from chronorec.temporal.when.model import load_when_model

    model = load_when_model(model_dir)
    mix = _Mixtures(model)
    behaviors, target = model.behaviors, model.settings["target"]
    default_h = [float(h) for h in model.settings["horizons_hours"]]
    router = APIRouter()

    @router.post("/predict-behavior", response_model=WhenResponse, tags=["behaviour"])
    def predict_when(req: WhenRequest) -> WhenResponse:
        """P(behaviour within each horizon), expected hours and quantiles per user id, at the end of the data."""
        b = req.behavior or target
        if b not in behaviors:
            raise HTTPException(422, detail=f"behavior: {b!r} is not modelled; use one of {behaviors}")
        hours = [float(h) for h in (req.horizons_hours or default_h)]
        ids = [str(u) for u in req.user_ids]
        known = [u for u in ids if u in mix.users]
        unknown = [u for u in ids if u not in mix.users]
        rows = np.array([mix.users[u] for u in known], dtype=np.int64)
        bi = behaviors.index(b)
        p = mix.cdf(rows, bi, hours) if len(rows) else np.zeros((0, len(hours)))
        preds = [
            UserWhen(
                user_id=u,
                probabilities=p[k].tolist(),
                expected_hours=float(mix.mean[r, bi]),
                median_hours=float(mix.q[0.5][r, bi]),
                q10_hours=float(mix.q[0.1][r, bi]),
                q90_hours=float(mix.q[0.9][r, bi]),
            )  # fmt: skip
            for k, (u, r) in enumerate(zip(known, rows, strict=True))
        ]
        return WhenResponse(behavior=b, target=target, horizons_hours=hours, at=mix.at, predictions=preds,
                            unknown_users=unknown, warnings=_unknown_warning(unknown, mix.at))  # fmt: skip

    return router
