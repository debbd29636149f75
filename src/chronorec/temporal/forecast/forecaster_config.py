"""Hyper-parameters of the forecasters, one pydantic model per model.

Run settings (seed, threads, progress) are not here: :func:`~chronorec.temporal.forecast.core.rolling_origin`
takes them on their own and hands the neural forecasters a
:class:`chronorec.training.settings.RunSettings`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from chronorec.settings import Strict
from chronorec.training.settings import OptimizerParams, StoppingParams

__all__ = [
    "ETSConfig",
    "ForecasterConfig",
    "GBMForecastConfig",
    "MovingAverageConfig",
    "NeuralForecastConfig",
    "RNNForecastConfig",
    "TransformerForecastConfig",
]


class ForecasterConfig(Strict):
    """A forecaster without hyper-parameters (naive, seasonal naive)."""


class MovingAverageConfig(ForecasterConfig):
    window: int | None = Field(None, ge=1, le=100_000, description="periods averaged (default: one season)")


class ETSConfig(ForecasterConfig):
    max_history: int | None = Field(
        None,
        ge=2,
        le=1_000_000,
        description="fit each series on at most this many trailing periods (default: 8 seasons)",
    )


class GBMForecastConfig(ForecasterConfig):
    n_lags: int | None = Field(
        None,
        ge=1,
        le=10_000,
        description="lagged values per row (default: 4 seasons, at most a third of the training window)",
    )
    max_rows: int = Field(300_000, ge=1, le=100_000_000, description="training rows kept (a random subset above this)")
    loss: Literal["mse", "mae"] = Field("mse", description="squared or absolute error")
    learning_rate: float = Field(0.05, gt=0, le=10, description="gradient boosting's learning rate")
    max_iter: int = Field(300, ge=1, le=100_000, description="boosting iterations")


class NeuralForecastConfig(OptimizerParams, StoppingParams):
    """What the recurrent and Transformer forecasters share: windows, loss and training."""

    window: int | None = Field(
        None,
        ge=1,
        le=100_000,
        description="input periods L (default: 4 seasons, at most a third of the training window)",
    )
    center: bool = Field(False, description="subtract each input window's mean scaled value (added back to the output)")
    loss: Literal["mae", "mse"] = Field("mae", description="training loss on the scaled values")
    batch_size: int = Field(256, ge=1, le=1_000_000, description="training windows per batch")
    epochs: int = Field(
        40, ge=0, le=100_000, description="the most epochs to train (early stopping on the last h periods)"
    )
    lr: float = Field(2e-3, gt=0, le=10, description="learning rate of AdamW")
    patience: int = Field(6, ge=0, le=100_000, description="stop after this many validations without a gain")


class RNNForecastConfig(NeuralForecastConfig):
    hidden: int = Field(64, ge=1, le=16_384, description="hidden size of the LSTM / GRU and of the head")


class TransformerForecastConfig(NeuralForecastConfig):
    center: bool = Field(True, description="subtract each input window's mean scaled value (added back to the output)")
    dim: int = Field(32, ge=1, le=4096, description="width of the projected periods and of the blocks")
    layers: int = Field(2, ge=1, le=64, description="pre-norm causal self-attention blocks")
    heads: int = Field(4, ge=1, le=256, description="attention heads")
    dropout: float = Field(0.1, ge=0, lt=1, description="dropout in the blocks")
