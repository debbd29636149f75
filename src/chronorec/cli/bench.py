"""Benchmark commands: ``benchmark`` (published protocols, chronorec.workflows.benchmark) and ``demo``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from chronorec.cli.common import ConfigOpt, DataDirOpt, SeedOpt, ThreadsOpt, field_option, load_config
from chronorec.workflows.sections import BenchmarkConfig

B = BenchmarkConfig


def benchmark(
    datasets: Annotated[str | None, field_option(B, "datasets")] = None,
    models: Annotated[str | None, field_option(B, "models")] = None,
    data_dir: DataDirOpt = None,
    out: Annotated[Path | None, field_option(B, "out")] = None,
    seed: SeedOpt = None,
    threads: ThreadsOpt = None,
    overrides: Annotated[list[str] | None, field_option(B, "set", "--set", metavar="MODEL.KEY=VALUE")] = None,
    tag: Annotated[str | None, field_option(B, "tag")] = None,
    progress: Annotated[bool | None, field_option(B, "progress", "--progress/--no-progress")] = None,
    save_model: Annotated[Path | None, field_option(B, "save_model", metavar="DIR")] = None,
    aggregate: Annotated[bool | None, field_option(B, "aggregate", "--aggregate")] = None,
    refit: Annotated[bool | None, field_option(B, "refit", "--refit")] = None,
    refit_from: Annotated[Path | None, field_option(B, "refit_from", metavar="RUN_JSON")] = None,
    config: ConfigOpt = None,
) -> None:
    """Reproduce published protocols on benchmark datasets with the YAML presets (one subprocess per run).

    Leave-one-out, full-catalogue ranking, history items filtered, best epoch by validation NDCG@10,
    test read once. Writes OUT/runs/<dataset>-<model>-seed<S>[-tag].json per run and OUT/summary[-tag].{md,json}.
    """
    from chronorec.workflows.benchmark import BenchmarkSettings, markdown, run_benchmark

    section = {
        "datasets": datasets,
        "models": models,
        "out": str(out) if out else None,
        "set": overrides or None,
        "tag": tag,
        "progress": progress,
        "save_model": str(save_model) if save_model else None,
        "aggregate": aggregate or None,
        "refit": refit or None,
        "refit_from": str(refit_from) if refit_from else None,
    }
    over = {"benchmark": section, "data": {"data_dir": str(data_dir) if data_dir else None}}
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
