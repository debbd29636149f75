"""``chronorec train``: parse the options, call :func:`chronorec.workflows.run.train`, print its summary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from chronorec.cli.common import load_config
from chronorec.cli.options import (
    ConfigOpt,
    DataArgs,
    SeedOpt,
    SplitArgs,
    ThreadsOpt,
    grouped,
    option_group,
    run_overrides,
)

NprocOpt = Annotated[
    int,
    typer.Option(
        "--nproc-per-node",
        min=1,
        max=1024,
        help="Train data-parallel in N processes on this machine (torchrun; gloo on CPU, NCCL on GPU); "
        "rank 0 validates, checkpoints and saves. Multi-node: see docs/scale.md.",
    ),
]


@option_group
class TrainArgs:
    """The model and run options of ``train``."""

    kind: Annotated[
        str | None,
        typer.Option("--kind", help="Model kind: popular, buyagain, itemknn, ease, gru4rec, sasrec, repeat-blend, ..."),
    ] = None
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Folder to save the trained model to (default: <output_dir>/models/<name>)."),
    ] = None
    name: Annotated[
        str | None,
        typer.Option("--name", help="Pick this entry of the config's models list (default: the first, or --kind)."),
    ] = None
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="Model parameter as key=value (repeatable), e.g. -p dim=64 -p cell=lstm."),
    ] = None
    epochs: Annotated[int | None, typer.Option("--epochs", help="Maximum training epochs (neural models).")] = None
    resume: Annotated[
        bool | None,
        typer.Option("--resume/--no-resume", help="Resume from the last checkpoint in --checkpoint-dir."),
    ] = None
    checkpoint_dir: Annotated[
        Path | None, typer.Option("--checkpoint-dir", help="Folder for training checkpoints (neural models).")
    ] = None
    full: Annotated[
        bool, typer.Option("--full", help="Train on all events (no held-out split, so no early stopping).")
    ] = False
    refit_from: Annotated[
        Path | None,
        typer.Option(
            "--refit-from",
            help="Refit the model saved in this folder on all events (implies --full): its settings, the epochs "
            "its validation chose and its history protocol; the model to serve after a split run.",
        ),
    ] = None
    progress: Annotated[bool | None, typer.Option("--progress/--no-progress", help="Show training progress.")] = None


@grouped
def train(
    opts: TrainArgs,
    data: DataArgs,
    split: SplitArgs,
    seed: SeedOpt = None,
    threads: ThreadsOpt = None,
    nproc_per_node: NprocOpt = 1,
    config: ConfigOpt = None,
) -> None:
    """Train one model on the training part of a split (validation for early stopping) and save it."""
    from chronorec.training import distributed
    from chronorec.workflows import run

    if nproc_per_node > 1 and not distributed.in_worker():  # start the workers; each runs this command
        # the options are checked once, here, before any worker starts (a bad kind came from every rank)
        cfg = load_config(config, run_overrides(data, split, seed, threads))
        entry = run.model_entry(cfg, opts.kind, opts.name, opts.param, {"epochs": opts.epochs, "seed": seed})
        run.train_target(cfg, entry, opts.out, opts.refit_from)
        distributed.launch(distributed.strip_option(distributed.command_args(), "--nproc-per-node"), nproc_per_node)
        typer.echo(f"Trained in {nproc_per_node} processes; rank 0 saved the model.")
        return
    cfg = load_config(config, run_overrides(data, split, seed, threads))
    settings = {key: getattr(opts, key) for key in ("epochs", "resume", "checkpoint_dir", "progress")}
    result = run.train(
        cfg, kind=opts.kind, name=opts.name, params=opts.param, run={**settings, "seed": seed}, out=opts.out,
        full=opts.full, refit_from=opts.refit_from, on_start=typer.echo,
    )  # fmt: skip
    for line in result.lines:
        typer.echo(line)
