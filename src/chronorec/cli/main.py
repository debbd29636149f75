"""The ``chronorec`` command line: one sub-command per stage, assembled from the command-group modules.

    chronorec ingest events.csv --out data/shop --user-col uid --item-col sku --time-col ts
    chronorec train --data data/shop --kind sasrec --epochs 20 --out models/sasrec
    chronorec evaluate models/sasrec models/popular --data data/shop
    chronorec recommend --model models/sasrec --users u1,u2 -k 10 --out recs.csv
    chronorec demo
    chronorec benchmark --datasets ml-1m --models sasrec

Every command that reads data takes either ``--data PATH`` (a CSV / Parquet / JSON Lines file
read with the column options, or a folder written by ``chronorec ingest``) or ``--dataset NAME``
(a known benchmark dataset under ``--data-dir``, or ``synthetic``). Every command takes
``--config FILE`` (YAML, TOML or JSON; see ``chronorec.workflows.run_config``) carrying its options;
options given on the command line win. Every command goes through one error handler
(:func:`chronorec.cli.common.report_errors`).
"""

from __future__ import annotations

import typer

from chronorec.cli import (
    behavior,
    bench,
    calibrate,
    data,
    ensemble,
    evaluate,
    forecast,
    recommend,
    scale,
    serve,
    temporal,
    train,
    when,
)
from chronorec.cli.common import LOG_LEVELS, configure_logging, report_errors

app = typer.Typer(
    name="chronorec",
    help="Predict user behaviour over time: ingest event logs, train sequence models, evaluate, recommend.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def main(
    log_level: str = typer.Option(
        "info", "--log-level", help=f"Library messages shown on stderr: {', '.join(LOG_LEVELS)} (default info)."
    ),
) -> None:
    """Predict user behaviour over time: ingest event logs, train sequence models, evaluate, recommend."""
    configure_logging(log_level)


COMMANDS = {
    "ingest": data.ingest,
    "train": train.train,
    "evaluate": evaluate.evaluate,
    "recommend": recommend.recommend,
    "calibrate": calibrate.calibrate,
    "demo": bench.demo,
    "ensemble": ensemble.ensemble,
    "benchmark": bench.benchmark,
    "features": temporal.features,
    "serve": serve.serve,
    "predict-behavior": behavior.predict_behavior,
    "forecast": forecast.forecast,
    "predict-when": when.predict_when,
}
"""Command name -> function, in the order ``chronorec --help`` lists them."""

for _name, _command in COMMANDS.items():
    app.command(_name)(report_errors(_command))
app.add_typer(scale.datasets_app, name="datasets")
app.add_typer(scale.store_app, name="store")
