"""The one base class of every chronorec settings model (pydantic, unknown keys refused), and the
settings of the HTTP service, :class:`ServeSettings`: declared once here, below both the service
(:mod:`chronorec.serving`) and the workflow config (its ``serve`` section), which may not import
each other; ``chronorec serve`` takes its options from the same fields."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


def clean_api_key(raw: str, source: str = "the API key") -> str:
    """The key a client can send: a leading byte-order mark and surrounding whitespace removed; it must
    then be non-empty printable ASCII (an HTTP header carries nothing else, so any other key would
    lock every client out with 401). Raises ``ValueError`` naming ``source``."""
    key = raw.lstrip("\ufeff").strip()
    if not key:
        raise ValueError(f"{source} is empty: give a key, or none at all for an open service")
    bad = next((c for c in key if not (" " <= c <= "~")), None)
    if bad is not None:
        raise ValueError(
            f"{source} holds {bad!r} (U+{ord(bad):04X}): a key is printable ASCII only, as an HTTP header "
            "carries it; no client could send this one"
        )
    return key


class Strict(BaseModel):
    """A pydantic model that refuses unknown fields, so a misspelt key is an error, not a no-op, and
    infinite or NaN numbers (``lr=inf`` would train a model of NaN weights)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


STATE_DIR_NAME = "live"
"""Default folder of the live-event store, inside the model folder (ignored by the artifact check)."""
MAX_BODY_BYTES = 2_000_000
"""Default largest request body (bytes); larger bodies get 413 before they are parsed."""


class ServeSettings(Strict):
    """``chronorec serve`` and :func:`chronorec.serving.create_app`: the HTTP service (the ``serve``
    section of a config file)."""

    model: Path | None = Field(None, description="Saved model folder (JSON + safetensors + Parquet only).")
    behavior_model: Path | None = Field(
        None, description="Saved behaviour model (predict-behavior --save): adds POST /predict-behavior."
    )
    host: str = Field("127.0.0.1", description="Interface to bind (local only by default).")
    port: int = Field(8000, ge=1, le=65535, description="TCP port (1-65535).")
    api_key: SecretStr | None = Field(
        None, description="Require this X-API-Key for POST /events and export (visible to ps: prefer --api-key-file)."
    )
    api_key_file: Path | None = Field(None, description="Read the API key from the first line of this file.")
    state_dir: Path | None = Field(
        None, description=f"Folder of the live-event store (default: <model>/{STATE_DIR_NAME}/)."
    )
    items: Path | None = Field(
        None, description="Item table (.parquet/.csv: item_id, category, available, price, name)."
    )
    settings: Path | None = Field(
        None, description="RecommendSettings JSON (temperature, blend, ...; default <model>/recommend.json)."
    )
    threads: int = Field(1, ge=1, le=1024, description="torch threads per request.")
    max_body_bytes: int = Field(
        MAX_BODY_BYTES, ge=1, le=1_000_000_000, description="Largest request body in bytes (larger: 413)."
    )
    max_batch: int = Field(
        64, ge=1, le=100_000, description="Most /recommend requests in one forward pass (1 = no batching)."
    )
    max_wait_ms: float = Field(
        2.0, ge=0, le=60_000, description="Longest wait of a request for its batch to fill, in ms."
    )
    max_queue: int = Field(
        256, ge=1, le=1_000_000, description="Most /recommend requests in flight; more get 503 with Retry-After."
    )
    query_cache: int = Field(
        100_000,
        ge=0,
        le=100_000_000,
        description="Query vectors of up to this many histories kept, so a user asked again with an unchanged history skips the forward pass (sequence models without context; 0 = off).",
    )
    export_events: Path | None = Field(
        None, description="Write the stored live events to this .parquet/.csv/.jsonl and exit."
    )
    log_level: Literal["critical", "error", "warning", "info", "debug", "trace"] = Field(
        "warning", description="uvicorn log level."
    )

    @field_validator("api_key")
    @classmethod
    def _key_usable(cls, v: SecretStr | None) -> SecretStr | None:
        return None if v is None else SecretStr(clean_api_key(v.get_secret_value()))

    @property
    def live_dir(self) -> Path:
        """Where the live events are stored."""
        if self.state_dir is not None:
            return self.state_dir
        if self.model is None:
            raise ValueError("no model folder: give model (--model DIR)")
        return self.model / STATE_DIR_NAME

    def key(self) -> str | None:
        """The API key in clear (None when the service is open)."""
        return self.api_key.get_secret_value() if self.api_key is not None else None


__all__ = ["MAX_BODY_BYTES", "STATE_DIR_NAME", "ServeSettings", "Strict", "clean_api_key"]
