"""``POST /predict-behavior``: calibrated per-user probabilities of a saved behaviour model.

Mounted by ``chronorec serve --behavior-model DIR`` (or ``app.include_router(behavior_router(DIR))``).
The model (``predict-behavior --save``) predicts at the end of its data: for each user id asked,
the probability of the target behaviour (e.g. ``buy``) within the horizon. The predictions for every
known user are computed once, when the router is built. Unknown users are listed in
``unknown_users`` with a warning, never guessed. A body with no ids, too many, or an id that is not
a string or an integer is a 422 naming the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

__all__ = ["MAX_USERS", "BehaviorRequest", "BehaviorResponse", "behavior_router"]

MAX_USERS = 10_000
UserId = int | Annotated[str, StringConstraints(min_length=1, max_length=128)]


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


def behavior_router(model_dir: str | Path) -> APIRouter:
    """A router serving the behaviour model saved in ``model_dir`` (loaded and scored now)."""
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
        warnings = [f"{len(unknown)} user id(s) have no events before {at}: no prediction"] if unknown else []
        return BehaviorResponse(
            target=target,
            horizon_hours=hours,
            at=at,
            predictions=[UserProbability(user_id=u, probability=probs[u]) for u in known],
            unknown_users=unknown,
            warnings=warnings,
        )

    return router
