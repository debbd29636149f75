"""Optional experiment tracking with MLflow (``pip install 'chronorec[tracking]'``).

Switched on by a run's ``tracking_uri`` setting or the ``MLFLOW_TRACKING_URI`` environment
variable; the experiment is ``MLFLOW_EXPERIMENT_NAME`` (default ``chronorec``). A tracked run
logs its parameters, one value per epoch of every per-epoch metric, and, when the fitted model is
saved, the model folder as artifacts. MLflow is imported only when tracking is on; without it
nothing changes.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from chronorec.errors import ConfigError

logger = logging.getLogger(__name__)

EXPERIMENT_ENV = "MLFLOW_EXPERIMENT_NAME"
URI_ENV = "MLFLOW_TRACKING_URI"


def tracking_uri(setting: str | None) -> str | None:
    """The tracking URI a run uses: its own setting, else the environment's, else None (no tracking)."""
    return setting or os.environ.get(URI_ENV) or None


def _client(uri: str, explicit: bool):
    try:
        from mlflow import MlflowClient
    except ImportError as e:
        if explicit:
            raise ConfigError("tracking_uri needs MLflow: pip install 'chronorec[tracking]'") from e
        logger.warning("%s is set but MLflow is not installed; the run is not tracked", URI_ENV)
        return None
    return MlflowClient(tracking_uri=uri)


def _flat_params(params: dict[str, Any]) -> dict[str, str]:
    return {str(k): "None" if v is None else str(v)[:6000] for k, v in params.items()}


class MlflowRun:
    """One MLflow run: parameters at the start, metrics per epoch, artifacts, then terminated."""

    def __init__(self, client: Any, uri: str, run_id: str):
        self.client, self.uri, self.run_id = client, uri, run_id

    @classmethod
    def start(cls, setting: str | None, name: str, params: dict[str, Any]) -> MlflowRun | None:
        """A new run when tracking is switched on (see the module), else None."""
        uri = tracking_uri(setting)
        client = _client(uri, explicit=bool(setting)) if uri else None
        if client is None:
            return None
        experiment = os.environ.get(EXPERIMENT_ENV) or "chronorec"
        found = client.get_experiment_by_name(experiment)
        exp_id = found.experiment_id if found is not None else client.create_experiment(experiment)
        run = client.create_run(exp_id, run_name=name)
        from mlflow.entities import Param

        params = _flat_params(params)
        client.log_batch(run.info.run_id, params=[Param(k, v) for k, v in params.items()])
        logger.info("tracking run %s in MLflow experiment %r at %s", run.info.run_id, experiment, uri)
        return cls(client, uri, run.info.run_id)

    def log_epoch(self, epoch: int, metrics: dict[str, Any]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        values = [Metric(k, float(v), now, epoch) for k, v in metrics.items() if isinstance(v, (int, float))]
        self.client.log_batch(self.run_id, metrics=values)

    def end(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status=status)

    @property
    def info(self) -> dict[str, str]:
        """What a fitted model keeps to add its saved folder to this run later."""
        return {"mlflow_run_id": self.run_id, "mlflow_tracking_uri": self.uri}


def log_model_folder(fit_info: dict[str, Any], directory: str | Path) -> None:
    """Add a saved model folder to the MLflow run its training was tracked in (if it was)."""
    run_id, uri = fit_info.get("mlflow_run_id"), fit_info.get("mlflow_tracking_uri")
    if not run_id or not uri:
        return
    client = _client(uri, explicit=False)
    if client is not None:
        client.log_artifacts(run_id, str(directory), artifact_path="model")


__all__ = ["MlflowRun", "log_model_folder", "tracking_uri"]
