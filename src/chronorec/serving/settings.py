"""How one service runs: :class:`ServiceSettings` (model, network, key, state, limits)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from chronorec.settings import Strict

STATE_DIR_NAME = "live"
"""Default folder of the live-event store, inside the model folder (ignored by the artifact check)."""
MAX_BODY_BYTES = 2_000_000
"""Default largest request body (bytes); larger bodies get 413 before they are parsed."""


class ServiceSettings(Strict):
    """Settings of ``chronorec serve`` and :func:`chronorec.serving.create_app`."""

    model_dir: Path = Field(description="Saved model folder (JSON + safetensors + Parquet only).")
    host: str = Field("127.0.0.1", description="Interface to bind; anything but loopback is reachable from outside.")
    port: int = Field(8000, ge=1, le=65_535, description="TCP port.")
    api_key: SecretStr | None = Field(
        None, description="Key required in X-API-Key for POST /events and GET /events/export (null = open)."
    )
    state_dir: Path | None = Field(
        None, description=f"Folder of the live-event store (null = <model>/{STATE_DIR_NAME})."
    )
    items_path: Path | None = Field(
        None, description="Item table (.parquet/.csv: item_id, category, available, price, name) for filters."
    )
    settings_path: Path | None = Field(
        None, description="RecommendSettings JSON (temperature, blend, ...; null = <model>/recommend.json if any)."
    )
    threads: int = Field(1, ge=1, description="torch threads of the serving process (set by the serve command).")
    max_body_bytes: int = Field(MAX_BODY_BYTES, ge=1, description="Largest request body in bytes (larger: 413).")
    max_batch: int = Field(64, ge=1, description="Most /recommend requests in one forward pass (1 = no batching).")
    max_wait_ms: float = Field(2.0, ge=0, description="Longest wait of a request for its batch to fill, ms.")
    max_queue: int = Field(256, ge=1, description="Most /recommend requests in flight; more get 503 with Retry-After.")
    query_cache: int = Field(
        100_000,
        ge=0,
        description="Query vectors of up to this many histories kept, so a user asked again with an unchanged history skips the forward pass (sequence models without context; 0 = off).",
    )
    log_level: Literal["critical", "error", "warning", "info", "debug", "trace"] = Field(
        "warning", description="uvicorn log level."
    )

    @field_validator("api_key")
    @classmethod
    def _key_not_empty(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not v.get_secret_value().strip():
            raise ValueError("the API key is empty: give a key, or none at all for an open service")
        return v

    @property
    def live_dir(self) -> Path:
        """Where the live events are stored."""
        return self.state_dir if self.state_dir is not None else self.model_dir / STATE_DIR_NAME

    def key(self) -> str | None:
        """The API key in clear (None when the service is open)."""
        return self.api_key.get_secret_value() if self.api_key is not None else None


__all__ = ["MAX_BODY_BYTES", "STATE_DIR_NAME", "ServiceSettings"]
