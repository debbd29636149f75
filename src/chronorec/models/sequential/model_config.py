"""Configuration of the neural sequence models, one settings group per concern.

A model's configuration is flat (``SASRec(max_len=50, dim=64, epochs=50, patience=5)``, the
``kind``/params dicts of run configs and saved models) but assembled from groups, each field
declared once: the architecture, the training objective, the context, the batching, the
optimiser / schedule / stopping hyper-parameters and the run settings of
``chronorec.training.settings``, and the execution settings (device, precision, compilation).
The trainer picks its own fields out of it (``TrainSettings.of``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from chronorec.models.base import ModelConfig
from chronorec.settings import Strict
from chronorec.training.settings import OptimizerParams, RunSettings, ScheduleParams, StoppingParams


class ArchitectureParams(Strict):
    """Shape of the network shared by every sequence model."""

    max_len: int = Field(200, ge=1, le=100_000, description="the most recent events a sequence is cut to")
    dim: int = Field(64, ge=1, le=16_384, description="width of the item embeddings and hidden states")
    dropout: float = Field(0.2, ge=0, lt=1, description="dropout rate")
    similarity: Literal["dot", "cosine"] = Field(
        "dot",
        description="'dot': logits are hidden . item embedding; 'cosine': both are L2-normalised and the "
        "logits divided by temperature (as in HSTU's training recipe)",
    )
    temperature: float = Field(0.05, gt=0, le=100, description="divisor of cosine-similarity logits")


class ObjectiveParams(Strict):
    """What the next-item loss compares the target with."""

    loss: Literal["ce", "sampled", "sampled_pop", "gbce"] = Field(
        "ce",
        description="'ce': full-catalogue softmax; 'sampled' / 'sampled_pop': softmax over uniform / "
        "popularity-sampled negatives; 'gbce': generalised BCE over sampled negatives",
    )
    n_negatives: int = Field(1000, ge=1, le=1_000_000, description="negatives per target for the sampled losses")
    logq_correction: bool | None = Field(
        None, description="sampled softmax: subtract log sampling probability (None: for popularity negatives only)"
    )
    gbce_t: float = Field(0.75, ge=0, le=1, description="gBCE calibration: 0 = plain BCE, 1 = fully calibrated")


class ContextParams(Strict):
    """Per-event context summed into the tokens (see ``chronorec.models.sequential.context``)."""

    use_context: bool = Field(
        False, description="sum context embeddings (behaviour, time gap, hour, weekday, columns) into tokens"
    )
    context_features: list[str] | None = Field(None, description="features to embed (None: all the log carries)")
    request_context: bool = Field(
        False, description="condition the prediction on the next event's context (its behaviour, time)"
    )


class BatchingParams(Strict):
    """How training windows are cut and batched (see ``chronorec.models.sequential.windows``)."""

    batch_size: int = Field(
        128, ge=1, le=1_000_000, description="sequences per batch (tokens: batch_size x the mean length)"
    )
    train_windows: Literal["last", "random"] = Field(
        "last", description="each epoch trains on a user's last window, or on a random one of a long sequence"
    )
    batching: Literal["random", "tokens"] = Field(
        "random",
        description="'random': batches of batch_size random sequences, padded to the longest; 'tokens': sequences "
        "of similar length batched up to batch_size x the mean length in tokens (no padding: faster epochs)",
    )
    targets: Literal["auto", "next_event", "next_time"] = Field(
        "auto",
        description="what each position learns to predict: 'next_event', the event after it; 'next_time', a "
        "random event of the user's next later timestamp, so events sharing a time (a basket) are never "
        "targets of one another (logs without timestamps: next_event); 'auto': next_time on logs with baskets "
        "(a basket file or --basket-col), next_event otherwise",
    )
    eval_users: int | None = Field(
        None, ge=1, le=10**9, description="validate on a fixed random subset of users (None: all)"
    )


class ExecutionSettings(RunSettings):
    """Where and how the network runs; none of these changes what is learnt beyond numerics."""

    device: str = Field("auto", description="'auto' (a GPU when present, else the CPU), 'cpu', 'cuda', 'cuda:1'...")
    amp: bool = Field(False, description="mixed-precision autocast for training (CPU with AVX-512 BF16, or a GPU)")
    amp_dtype: Literal["bfloat16", "float16"] = Field(
        "bfloat16", description="autocast type; float16 needs a GPU and uses a gradient scaler"
    )
    compile: bool = Field(
        False, description="torch.compile the training forward (static shapes: batches padded to max_len)"
    )
    compile_mode: str | None = Field(
        None, description="torch.compile mode, e.g. 'reduce-overhead' (CUDA graphs), 'max-autotune'"
    )
    attention: Literal["sdpa", "manual"] = Field(
        "sdpa",
        description="attention kernel: 'sdpa' (scaled_dot_product_attention) or 'manual' (matmul + masked "
        "softmax written out, the reference to measure it against)",
    )
    scoring_attention_fp32: bool = Field(
        False, description="scoring's CPU attention in float32 under bfloat16 autocast, as training's (slower)"
    )
    ce_kernel: Literal["fused", "fresh"] = Field(
        "fused",
        description="loss='ce' kernel: 'fused' (buffers allocated once) or 'fresh' (a new float32 chunk of "
        "logits per chunk, the earlier kernel, to measure against)",
    )
    ce_chunk_rows: int | None = Field(
        None, ge=1, le=10_000_000, description="loss='ce': rows of logits computed at a time (None: 512)"
    )


class SequentialConfig(  # fields are listed from the last group to the first
    ModelConfig,
    ExecutionSettings,
    StoppingParams,
    ScheduleParams,
    OptimizerParams,
    BatchingParams,
    ContextParams,
    ObjectiveParams,
    ArchitectureParams,
):
    """Every setting of a neural sequence model (a subclass adds its architecture's own)."""

    @model_validator(mode="after")
    def _heads_divide_dim(self) -> SequentialConfig:
        heads = getattr(self, "heads", None)  # attention models only
        if heads and self.dim % heads:
            raise ValueError(f"dim {self.dim} must be divisible by heads {heads}")
        return self


__all__ = [
    "ArchitectureParams",
    "BatchingParams",
    "ContextParams",
    "ExecutionSettings",
    "ObjectiveParams",
    "SequentialConfig",
]


def check_network_size(cfg: Any, n_items: int, kind: str) -> None:
    """Refuse, before allocating, a network whose weights, gradients and Adam moments (16 bytes per
    parameter: the item and position tables plus about 12 dim^2 per layer) exceed the memory."""
    from chronorec.budget import check_memory

    layers = int(getattr(cfg, "layers", 1) or 1)
    n_params = (n_items + 1 + cfg.max_len) * cfg.dim + 12 * layers * cfg.dim**2
    check_memory(
        16.0 * n_params,
        f"{kind} with dim {cfg.dim}, {layers} layer(s) and max_len {cfg.max_len} on {n_items:,} items",
        "lower -p dim (or -p layers / -p max_len)",
    )
