"""``chronorec evaluate``: parse the options, call :func:`chronorec.workflows.run.evaluate`, print its report."""

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


@option_group
class EvaluateArgs:
    """The evaluation options of ``evaluate``."""

    ks: Annotated[str | None, typer.Option("--ks", help="Cut-offs K as a comma-separated list (default 5,10,20).")] = (
        None
    )
    history: Annotated[
        str | None,
        typer.Option(
            "--history",
            help="Items of the input history: auto (default: the protocol the models recorded when trained, "
            "the one their validation used: exclude when at most 1% of validation targets repeat a history "
            "item, as on ML-1M and Beauty; include otherwise), or exclude / include to impose one.",
        ),
    ] = None
    include_history: Annotated[
        bool | None,
        typer.Option("--include-history/--exclude-history", help="Same as --history include / exclude."),
    ] = None
    allow_leak: Annotated[
        bool,
        typer.Option(
            "--allow-leak",
            help="Score a model on targets at or before its last training event or on another split "
            "(refused by default; the result records the leak).",
        ),
    ] = False
    part: Annotated[str, typer.Option("--part", help="Which cases to score: test (default) or validation.")] = "test"
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="JSON file for the results (default: <output_dir>/evaluate-<time>.json)."),
    ] = None

    def section(self, model_dirs: list[Path] | None) -> dict[str, object]:
        """The ``evaluation`` config section these options (and the model folders) give."""
        include = self.include_history
        return {
            "ks": [x.strip() for x in self.ks.split(",")] if self.ks else None,
            "history": self.history if include is None else ("include" if include else "exclude"),
            "allow_leak": self.allow_leak or None,
            "model_dirs": [str(p) for p in model_dirs] if model_dirs else None,
        }


ModelDirsArg = Annotated[
    list[Path] | None,
    typer.Argument(help="Saved model folders to compare (or evaluation.model_dirs in --config)."),
]


@grouped
def evaluate(
    model_dirs: ModelDirsArg = None,
    data: DataArgs = None,
    split: SplitArgs = None,
    opts: EvaluateArgs = None,
    seed: SeedOpt = None,
    threads: ThreadsOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Evaluate saved models on a split of a dataset (full-catalogue ranking) and compare them in one table."""
    from chronorec.workflows import run

    overrides = run_overrides(data, split, seed, threads) | {"evaluation": opts.section(model_dirs)}
    cfg = load_config(config, overrides)
    result = run.evaluate(cfg, part=opts.part, out=opts.out, ks_given=opts.ks is not None)
    for line, err in result.lines:
        typer.echo(line, err=err)
