"""Benchmark commands: ``benchmark`` (published protocols, chronorec.workflows.benchmark) and ``demo``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from chronorec.cli.common import load_config
from chronorec.cli.options import ConfigOpt, DataDirOpt, SeedOpt, ThreadsOpt, field_option, grouped, option_group
from chronorec.workflows.sections import BenchmarkConfig

B = BenchmarkConfig


@option_group
class BenchmarkSelection:
    """Which datasets and models ``benchmark`` runs."""

    datasets: Annotated[str | None, field_option(B, "datasets")] = None
    models: Annotated[str | None, field_option(B, "models")] = None


@option_group
class BenchmarkArgs:
    """Where and how ``benchmark`` runs, named like the ``benchmark`` config section's fields (``--set``: ``set``)."""

    overrides: Annotated[list[str] | None, field_option(B, "set", "--set", metavar="MODEL.KEY=VALUE")] = None
    tag: Annotated[str | None, field_option(B, "tag")] = None
    progress: Annotated[bool | None, field_option(B, "progress", "--progress/--no-progress")] = None
    save_model: Annotated[Path | None, field_option(B, "save_model", metavar="DIR")] = None
    aggregate: Annotated[bool | None, field_option(B, "aggregate", "--aggregate")] = None
    refit: Annotated[bool | None, field_option(B, "refit", "--refit")] = None
    refit_from: Annotated[Path | None, field_option(B, "refit_from", metavar="RUN_JSON")] = None

    def section(self, selection: BenchmarkSelection, out: Path | None) -> dict[str, object]:
        """The ``benchmark`` config section these options give."""
        return {
            "datasets": selection.datasets,
            "models": selection.models,
            "out": str(out) if out else None,
            "set": self.overrides or None,
            "tag": self.tag,
            "progress": self.progress,
            "save_model": str(self.save_model) if self.save_model else None,
            "aggregate": self.aggregate or None,
            "refit": self.refit or None,
            "refit_from": str(self.refit_from) if self.refit_from else None,
        }


@grouped
def benchmark(
    selection: BenchmarkSelection,
    data_dir: DataDirOpt = None,
    out: Annotated[Path | None, field_option(B, "out")] = None,
    seed: SeedOpt = None,
    threads: ThreadsOpt = None,
    opts: BenchmarkArgs = None,
    config: ConfigOpt = None,
) -> None:
    """Reproduce published protocols on benchmark datasets with the YAML presets (one subprocess per run).

    Leave-one-out, full-catalogue ranking, history items filtered, best epoch by validation NDCG@10,
    test read once. Writes OUT/runs/<dataset>-<model>-seed<S>[-tag].json per run and OUT/summary[-tag].{md,json}.
    """
    from chronorec.workflows.benchmark import BenchmarkSettings, markdown, run_benchmark

    over = {"benchmark": opts.section(selection, out), "data": {"data_dir": str(data_dir) if data_dir else None}}
    cfg = load_config(config, {**over, "seed": seed, "threads": threads})
    run = BenchmarkSettings(
        **cfg.benchmark.model_dump(), data_dir=cfg.data.data_dir, seed=cfg.seed, threads=cfg.threads
    )
    rows = run_benchmark(run, command=" ".join(["chronorec", *sys.argv[1:]]))
    typer.echo(markdown(rows))


def demo(
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Run folder (default: runs/demo-<timestamp>).")
    ] = None,
    quick: Annotated[bool, typer.Option("--quick", help="Smaller data and fewer epochs (about a minute).")] = False,
    seed: SeedOpt = None,
    threads: ThreadsOpt = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show training progress bars.")] = True,
    config: ConfigOpt = None,
) -> None:
    """Synthetic shop data -> every model -> metrics table, sample recommendations, plots, saved models."""
    from chronorec.workflows.demo import run_demo

    cfg = load_config(config, {"seed": seed, "threads": threads, "output_dir": str(out) if out else None})
    run_demo(cfg.output_dir, quick=quick, seed=cfg.seed, threads=cfg.threads, progress=progress)
