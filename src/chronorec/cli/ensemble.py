"""``chronorec ensemble``: combine saved models into one score-level ensemble."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from chronorec.cli.common import load_config
from chronorec.cli.options import ConfigOpt, field_option, grouped, option_group, section
from chronorec.workflows.sections import EnsembleConfig

E = EnsembleConfig


@option_group
class EnsembleArgs:
    """The options of ``ensemble``, named like the ``ensemble`` config section's fields."""

    model_dirs: Annotated[
        list[Path] | None,
        typer.Argument(help="Saved model folders fitted on the same data (or ensemble.model_dirs in --config)."),
    ] = None
    out: Annotated[Path | None, field_option(E, "out", "--out", "-o")] = None
    weights: Annotated[str | None, field_option(E, "weights")] = None
    combine: Annotated[str | None, field_option(E, "combine")] = None


@grouped
def ensemble(opts: EnsembleArgs, config: ConfigOpt = None) -> None:
    """Combine saved models into one score-level ensemble (evaluate, recommend and serve it like any model)."""
    from chronorec.errors import ConfigError
    from chronorec.models.ensemble import Ensemble
    from chronorec.models.registry import load

    e = load_config(config, {"ensemble": section(E, opts)}).ensemble
    if not e.model_dirs:
        raise ConfigError("no models: give the saved model folders to combine")
    if e.out is None:
        raise ConfigError("no output folder: give --out DIR")
    if e.weights is not None and len(e.weights) != len(e.model_dirs):
        raise ConfigError(f"{len(e.weights)} weights for {len(e.model_dirs)} models")
    members = [load(d, device="cpu") for d in e.model_dirs]
    Ensemble.from_models(members, weights=e.weights, combine=e.combine).save(e.out)
    typer.echo(f"Saved an ensemble of {len(e.model_dirs)} models to {e.out}")
