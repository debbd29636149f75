"""The one base class of every chronorec settings model (pydantic, unknown keys refused)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """A pydantic model that refuses unknown fields, so a misspelt key is an error, not a no-op."""

    model_config = ConfigDict(extra="forbid")


__all__ = ["Strict"]
