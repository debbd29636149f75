"""Hyper-parameters of the sequence classifiers of behaviour prediction.

Run settings (seed, threads, progress) are not here: they are
:class:`chronorec.training.settings.RunSettings`, given to :func:`predict_behavior` or
:func:`fit_sequence_classifier` on their own.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from chronorec.training.settings import OptimizerParams, StoppingParams

__all__ = ["SequenceClassifierConfig"]


class SequenceClassifierConfig(OptimizerParams, StoppingParams):
    """A GRU / LSTM / Transformer classifier over the last events before each cut-off."""

    arch: Literal["gru", "lstm", "transformer"] = Field(
        "gru", description="sequence encoder: gru, lstm or a causal transformer"
    )
    max_len: int = Field(
        50, ge=1, le=100_000, description="events per input: the last max_len events before the cut-off"
    )
    dim: int = Field(32, ge=1, le=4096, description="width of the token embeddings and of the encoder")
    layers: int = Field(1, ge=1, le=64, description="recurrent layers or transformer blocks")
    heads: int = Field(2, ge=1, le=256, description="attention heads (transformer)")
    dropout: float = Field(0.2, ge=0, lt=1, description="dropout of the embeddings, blocks and feature branch")
    epochs: int = Field(30, ge=0, le=100_000, description="the most epochs to train (early stopping on validation)")
    batch_size: int = Field(128, ge=1, le=1_000_000, description="training cases per batch")
    # Taobao GRU, validation ROC-AUC: 0.633 (best epoch 10) vs 0.627 at 2e-3 (best epoch 5)
    lr: float = Field(5e-4, gt=0, le=10, description="learning rate of AdamW")
    weight_decay: float = Field(1e-4, ge=0, le=10, description="AdamW's decoupled weight decay")
    patience: int = Field(5, ge=0, le=100_000, description="stop after this many validations without a gain")
    min_item_count: int = Field(
        2,
        ge=1,
        le=1_000_000,
        description="items and categories seen fewer times in the training window share the unknown token",
    )
    # item-id embeddings over-fit the training cases on Taobao (validation ROC-AUC of the GRU, 6 h
    # training cut-off step: 0.58 with, 0.63 without)
    use_items: bool = Field(False, description="add item-id embeddings to the event tokens")
    use_features: bool = Field(
        False,
        description="also feed the temporal feature vector (the feature models' input, standardised on the "
        "training cases) to the classification head, next to the sequence encoding",
    )

    def with_model(self, name: str, *, hybrid: bool = False) -> SequenceClassifierConfig:
        """This configuration for the architecture ``name``, with the feature head when ``hybrid``."""
        return self.model_copy(update={"arch": name, "use_features": hybrid or self.use_features})
