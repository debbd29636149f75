"""The ``chronorec`` command line: one sub-command per stage.

    chronorec ingest events.csv --out data/shop --user-col uid --item-col sku --time-col ts
    chronorec train --data data/shop --kind sasrec --epochs 20 --out models/sasrec
    chronorec evaluate models/sasrec models/popular --data data/shop
    chronorec recommend --model models/sasrec --users u1,u2 -k 10 --out recs.csv
    chronorec demo
    chronorec benchmark --datasets ml-1m --models sasrec

Every command that reads data takes either ``--data PATH`` (a CSV / Parquet / JSON Lines file
read with the column options, or a folder written by ``chronorec ingest``) or ``--dataset NAME``
(a known benchmark dataset under ``--data-dir``, or ``synthetic``). ``--config FILE`` (YAML, TOML
or JSON; see ``chronorec.workflows.config``) can carry every option; options given on the command line win.
"""

import datetime as _dt
import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    name="chronorec",
    help="Predict user behaviour over time: ingest event logs, train sequence models, evaluate, recommend.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# ---------------------------------------------------------------------- shared options
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="YAML / TOML / JSON config file carrying any of these options (command-line options win).",
    ),
]
DataOpt = Annotated[
    Path | None,
    typer.Option(
        "--data",
        help="Events file (CSV/TSV/Parquet/JSON Lines, optionally compressed) or a folder written by `chronorec ingest`.",
    ),
]
DatasetOpt = Annotated[
    str | None,
    typer.Option(
        "--dataset", help="Named dataset instead of --data: ml-1m, ml-1m-full, beauty, ml-100k, or 'synthetic'."
    ),
]
DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="Folder holding the named datasets (default: $CHRONOREC_DATA, else ../shared/data)."
    ),
]
UserColOpt = Annotated[
    str | None, typer.Option("--user-col", help="Name of the user id column of the events (default user_id).")
]
ItemColOpt = Annotated[
    str | None, typer.Option("--item-col", help="Name of the item id column of the events (default item_id).")
]
TimeColOpt = Annotated[
    str | None, typer.Option("--time-col", help="Name of the timestamp column of the events (default timestamp).")
]
BehaviorColOpt = Annotated[
    str | None, typer.Option("--behavior-col", help="Optional behaviour type column (e.g. view/cart/buy).")
]
ValueColOpt = Annotated[
    str | None, typer.Option("--value-col", help="Optional numeric value column (rating, price, ...).")
]
ContextColOpt = Annotated[
    list[str] | None,
    typer.Option("--context-col", help="Extra context column to keep (repeat the option for several)."),
]
TimeUnitOpt = Annotated[
    str | None, typer.Option("--time-unit", help="Unit of numeric timestamps: auto, s, ms, us or ns (default auto).")
]
SplitOpt = Annotated[
    str | None,
    typer.Option(
        "--split",
        help="Evaluation protocol: loo (leave-one-out, default) or temporal (global cut-off, needs --cutoff).",
    ),
]
CutoffOpt = Annotated[
    str | None,
    typer.Option("--cutoff", help="Temporal split: test cut-off as epoch seconds or an ISO date (e.g. 2024-03-01)."),
]
ValCutoffOpt = Annotated[
    str | None,
    typer.Option("--validation-cutoff", help="Temporal split: validation cut-off (default: same as --cutoff)."),
]
MinEventsOpt = Annotated[
    int | None,
    typer.Option("--min-events", help="Leave-one-out: users with fewer events are not evaluated (default 3)."),
]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Random seed (default 0).")]
ThreadsOpt = Annotated[int | None, typer.Option("--threads", help="CPU threads for torch (default: torch's choice).")]


# ---------------------------------------------------------------------- helpers
@contextmanager
def _user_errors():
    """Turn the errors a user can fix into a one-line message and exit code 1 (no traceback)."""
    from chronorec.workflows.config import ConfigError

    try:
        yield
    except (typer.Exit, typer.Abort):
        raise
    except (ConfigError, FileNotFoundError, KeyError, ValueError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        typer.secho(f"error: {msg}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None


def _settings(config: Path | None, overrides: dict[str, Any]) -> Any:
    """The validated config tree: the file's values (if any) with the command-line values on top."""
    from chronorec.workflows.config import merge, parse_config, read_config_file

    raw = read_config_file(config) if config else {}
    data_over = overrides.get("data") or {}
    if "data" in raw and isinstance(raw["data"], dict):  # a source given on the command line replaces the file's
        if data_over.get("path") is not None:
            raw["data"] = {k: v for k, v in raw["data"].items() if k != "dataset"}
        if data_over.get("dataset") is not None:
            raw["data"] = {k: v for k, v in raw["data"].items() if k != "path"}
    return parse_config(merge(raw, overrides), source=str(config) if config else "command line")


def _data_overrides(
    data: Path | None = None,
    dataset: str | None = None,
    data_dir: Path | None = None,
    user_col: str | None = None,
    item_col: str | None = None,
    time_col: str | None = None,
    behavior_col: str | None = None,
    value_col: str | None = None,
    context_col: list[str] | None = None,
    time_unit: str | None = None,
) -> dict[str, Any]:
    return {
        "path": str(data) if data is not None else None,
        "dataset": dataset,
        "data_dir": str(data_dir) if data_dir is not None else None,
        "user_col": user_col,
        "item_col": item_col,
        "time_col": time_col,
        "behavior_col": behavior_col,
        "value_col": value_col,
        "context_cols": list(context_col) if context_col else None,
        "time_unit": time_unit,
    }


_DATA_OPTIONS = (
    "data",
    "dataset",
    "data_dir",
    "user_col",
    "item_col",
    "time_col",
    "behavior_col",
    "value_col",
    "context_col",
    "time_unit",
)


def _run_overrides(options: dict[str, Any]) -> dict[str, Any]:
    """Config overrides from the data, split, seed and thread options of a command (its ``locals()``)."""
    return {
        "data": _data_overrides(*(options.get(k) for k in _DATA_OPTIONS)),
        "split": {
            "protocol": options.get("split"),
            "cutoff": options.get("cutoff"),
            "validation_cutoff": options.get("validation_cutoff"),
            "min_events": options.get("min_events"),
        },
        "seed": options.get("seed"),
        "threads": options.get("threads"),
    }


def load_events(cfg: Any) -> Any:
    """The EventLog described by the config's data section (and its seed, for the synthetic set)."""
    from chronorec.data.eventlog import EventLog

    d = cfg.data
    if d.dataset is not None:
        if d.dataset.lower() == "synthetic":
            from chronorec.datasets.synthetic import make_ecommerce_log

            return make_ecommerce_log(seed=cfg.seed)
        from chronorec.datasets.formats import load_dataset

        return load_dataset(d.dataset, data_dir=d.data_dir)
    if d.path is None:
        raise ValueError("no data: give --data PATH or --dataset NAME (or data.path / data.dataset in --config)")
    p = Path(d.path)
    if p.is_dir() and (p / "eventlog.json").exists():
        return EventLog.load(p)
    from chronorec.data import read_events

    return read_events(p, **d.read_options())


def _data_label(cfg: Any) -> str:
    d = cfg.data
    if d.dataset is not None:
        return f"dataset:{d.dataset}" + (f" (data_dir={d.data_dir})" if d.data_dir else "")
    return str(d.path)


def make_split(log: Any, cfg: Any) -> Any:
    from chronorec.evaluation.split import leave_one_out, temporal_split
    from chronorec.workflows.config import SplitConfig

    s = cfg.split
    if s.protocol == "loo":
        return leave_one_out(log, min_events=s.min_events)
    return temporal_split(
        log, test_cutoff=SplitConfig.to_seconds(s.cutoff), validation_cutoff=SplitConfig.to_seconds(s.validation_cutoff)
    )


def _set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def _parse_value(text: str) -> Any:
    import yaml

    return yaml.safe_load(text)


def _split_ids(values: list[str] | None) -> list[str]:
    out: list[str] = []
    for v in values or []:
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return out


def _typed_ids(ids: list[Any], idmap: Any) -> list[Any]:
    """Command-line ids are text; convert them to the id map's integer type where it has one."""
    import numpy as np

    if np.issubdtype(np.asarray(idmap.external_ids).dtype, np.integer):
        try:
            return [int(x) for x in ids]
        except ValueError as e:
            raise ValueError(f"this model's ids are integers: {e}") from None
    return [str(x) for x in ids]


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def _timestamp() -> str:
    return _dt.datetime.now().strftime("%Y%m%d-%H%M%S")


# ---------------------------------------------------------------------- ingest
@app.command()
def ingest(
    source: Annotated[
        Path, typer.Argument(help="Events file: CSV/TSV, Parquet or JSON Lines (optionally .gz/.xz/.bz2/.zip).")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder to write the EventLog to (events.parquet, id maps, report).")
    ],
    user_col: UserColOpt = None,
    item_col: ItemColOpt = None,
    time_col: TimeColOpt = None,
    behavior_col: BehaviorColOpt = None,
    value_col: ValueColOpt = None,
    context_col: ContextColOpt = None,
    item_name_col: Annotated[
        str | None, typer.Option("--item-name-col", help="Optional column with item names.")
    ] = None,
    time_unit: TimeUnitOpt = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv, parquet or jsonl (default: from the file name).")
    ] = None,
    sep: Annotated[str | None, typer.Option("--sep", help="CSV separator (default: detected among , tab ; |).")] = None,
    rejects: Annotated[
        Path | None, typer.Option("--rejects", help="Where to write rejected rows (default: <out>/rejects.csv).")
    ] = None,
    dedupe: Annotated[
        bool | None, typer.Option("--dedupe/--no-dedupe", help="Drop exact duplicate events (default: on).")
    ] = None,
    min_user_events: Annotated[
        int | None, typer.Option("--min-user-events", help="k-core: drop users with fewer events (0 = off).")
    ] = None,
    min_item_events: Annotated[
        int | None, typer.Option("--min-item-events", help="k-core: drop items with fewer events (0 = off).")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Read and validate an events file, quarantine bad rows, and write an EventLog folder plus a report."""
    with _user_errors():
        from chronorec.data import read_events

        over = _data_overrides(
            data=source,
            user_col=user_col,
            item_col=item_col,
            time_col=time_col,
            behavior_col=behavior_col,
            value_col=value_col,
            context_col=context_col,
            time_unit=time_unit,
        )
        over.update(
            item_name_col=item_name_col,
            format=fmt,
            sep=sep,
            dedupe=dedupe,
            min_user_events=min_user_events,
            min_item_events=min_item_events,
        )
        cfg = _settings(config, {"data": over})
        rejects_path = rejects if rejects is not None else out / "rejects.csv"
        out.mkdir(parents=True, exist_ok=True)
        log = read_events(source, rejects_path=rejects_path, **cfg.data.read_options())
        log.save(out)
        report = log.report
        typer.echo(report.summary() if hasattr(report, "summary") else str(report))
        if hasattr(report, "to_dict"):
            (out / "ingest_report.json").write_text(json.dumps(report.to_dict(), indent=2, default=_json_default))
        typer.echo(f"Wrote the EventLog ({len(log)} events, {log.n_users} users, {log.n_items} items) to {out}/")


# ---------------------------------------------------------------------- train
@app.command()
def train(
    kind: Annotated[
        str | None, typer.Option("--kind", help="Model kind: popular, itemknn, ease, gru4rec or sasrec.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Folder to save the trained model to (default: <output_dir>/models/<name>)."),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", help="Pick this entry of the config's models list (default: the first, or --kind)."),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="Model parameter as key=value (repeatable), e.g. -p dim=64 -p cell=lstm."),
    ] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Maximum training epochs (neural models).")] = None,
    resume: Annotated[
        bool | None,
        typer.Option("--resume/--no-resume", help="Resume from the last checkpoint in --checkpoint-dir."),
    ] = None,
    checkpoint_dir: Annotated[
        Path | None, typer.Option("--checkpoint-dir", help="Folder for training checkpoints (neural models).")
    ] = None,
    full: Annotated[
        bool, typer.Option("--full", help="Train on all events (no held-out split, so no early stopping).")
    ] = False,
    progress: Annotated[bool | None, typer.Option("--progress/--no-progress", help="Show training progress.")] = None,
    data: DataOpt = None,
    dataset: DatasetOpt = None,
    data_dir: DataDirOpt = None,
    user_col: UserColOpt = None,
    item_col: ItemColOpt = None,
    time_col: TimeColOpt = None,
    behavior_col: BehaviorColOpt = None,
    value_col: ValueColOpt = None,
    context_col: ContextColOpt = None,
    time_unit: TimeUnitOpt = None,
    split: SplitOpt = None,
    cutoff: CutoffOpt = None,
    validation_cutoff: ValCutoffOpt = None,
    min_events: MinEventsOpt = None,
    seed: SeedOpt = None,
    threads: ThreadsOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Train one model on the training part of a split (validation for early stopping) and save it."""
    overrides = _run_overrides(locals())
    with _user_errors():
        from chronorec.models import registry
        from chronorec.workflows.config import model_entry

        cfg = _settings(config, overrides)
        # the model entry: from the config (by --name / --kind / first), else just --kind
        entries = list(cfg.models)
        entry = None
        if name is not None:
            entry = next((m for m in entries if m.label == name), None)
            if entry is None:
                raise ValueError(f"no model named {name!r} in the config; names: {[m.label for m in entries]}")
        elif kind is not None:
            entry = next((m for m in entries if m.kind == kind), None)
        elif entries:
            entry = entries[0]
        if entry is None and kind is None:
            raise ValueError(
                "which model? give --kind (popular, itemknn, ease, gru4rec, sasrec) or a config with models"
            )
        params: dict[str, Any] = {"kind": kind or entry.kind, "name": name or (entry.name if entry else None)}
        if entry is not None and (kind is None or entry.kind == kind):
            params.update(entry.params())
        for item in param or []:
            key, eq, value = item.partition("=")
            if not eq or not key.strip():
                raise ValueError(f"--param {item!r}: expected key=value")
            params[key.strip()] = _parse_value(value)
        fields = registry.get(params["kind"]).Config.model_fields
        explicit = {
            "epochs": epochs,
            "resume": resume,
            "checkpoint_dir": str(checkpoint_dir) if checkpoint_dir else None,
        }
        for key, value in explicit.items():
            if value is not None:
                if key not in fields:
                    raise ValueError(f"--{key.replace('_', '-')} does not apply to model kind {params['kind']!r}")
                params[key] = value
        # run-wide settings: --seed / --threads / --progress win; the config's top-level seed fills a gap
        if "seed" in fields and (seed is not None or "seed" not in params):
            params["seed"] = cfg.seed
        if "threads" in fields and cfg.threads is not None:
            params["threads"] = cfg.threads
        if "progress" in fields and progress is not None:
            params["progress"] = progress
        entry = model_entry(params)
        _set_threads(cfg.threads)

        log = load_events(cfg)
        model = registry.get(entry.kind)(**entry.params())
        typer.echo(
            f"Training {model!r} on {_data_label(cfg)} ({len(log)} events, {log.n_users} users, {log.n_items} items)"
        )
        if full:
            model.fit(log)
            protocol = "all events"
        else:
            sp = make_split(log, cfg)
            model.fit(sp.train, validation=sp.validation)
            protocol = f"{sp.protocol}: {len(sp.train)} training events, validation on {len(sp.validation)} users"
        target = out or Path(cfg.output_dir or "runs") / "models" / entry.label
        model.save(target)
        info = model.fit_info or {}
        line = f"Trained {entry.label} ({protocol})"
        if info.get("train_seconds") is not None:
            line += f" in {info['train_seconds']:.1f} s"
        if info.get("best_epoch") is not None:
            line += f", best epoch {info['best_epoch']}"
        if info.get("best_val_ndcg10") is not None:
            line += f", validation NDCG@10 {info['best_val_ndcg10']:.4f}"
        typer.echo(line)
        typer.echo(f"Saved the model to {target}/")


# ---------------------------------------------------------------------- evaluate
def evalset_for_model(model: Any, log: Any, evalset: Any) -> Any:
    """The eval cases in the model's own id space (ids unknown to the model: dropped from inputs, missed as targets)."""
    import numpy as np

    from chronorec.evaluation.split import EvalSet

    lut = np.zeros(log.n_items + 1, dtype=np.int64)
    lut[1:] = model.items.to_internal(log.items.external_ids)
    users = model.users.to_internal(log.users.to_external(evalset.users)) if len(evalset) else evalset.users
    items = lut[evalset.input_items]
    rows = np.repeat(np.arange(len(evalset)), np.diff(evalset.input_offsets))
    keep = items > 0
    offsets = np.zeros(len(evalset) + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows[keep], minlength=len(evalset)), out=offsets[1:])
    return EvalSet(users, offsets, items[keep], evalset.target_offsets, lut[evalset.target_items], evalset.name)


@app.command()
def evaluate(
    model_dirs: Annotated[
        list[Path] | None,
        typer.Argument(help="Saved model folders to compare (or evaluation.model_dirs in --config)."),
    ] = None,
    data: DataOpt = None,
    dataset: DatasetOpt = None,
    data_dir: DataDirOpt = None,
    user_col: UserColOpt = None,
    item_col: ItemColOpt = None,
    time_col: TimeColOpt = None,
    behavior_col: BehaviorColOpt = None,
    value_col: ValueColOpt = None,
    context_col: ContextColOpt = None,
    time_unit: TimeUnitOpt = None,
    split: SplitOpt = None,
    cutoff: CutoffOpt = None,
    validation_cutoff: ValCutoffOpt = None,
    min_events: MinEventsOpt = None,
    ks: Annotated[
        str | None, typer.Option("--ks", help="Cut-offs K as a comma-separated list (default 5,10,20).")
    ] = None,
    include_history: Annotated[
        bool | None,
        typer.Option(
            "--include-history/--exclude-history",
            help="Let items of the input history be recommended (default: excluded).",
        ),
    ] = None,
    part: Annotated[str, typer.Option("--part", help="Which cases to score: test (default) or validation.")] = "test",
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="JSON file for the results (default: <output_dir>/evaluate-<time>.json)."),
    ] = None,
    seed: SeedOpt = None,
    threads: ThreadsOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Evaluate saved models on a split of a dataset (full-catalogue ranking) and compare them in one table."""
    overrides = _run_overrides(locals())
    with _user_errors():
        from chronorec.evaluation.ranking import evaluate_ranking
        from chronorec.models.registry import load
        from chronorec.workflows.experiment import metrics_table, provenance

        k_list = [int(x) for x in ks.split(",")] if ks else None
        cfg = _settings(
            config,
            {
                **overrides,
                "evaluation": {
                    "ks": k_list,
                    "exclude_history": None if include_history is None else not include_history,
                    "model_dirs": [str(p) for p in model_dirs] if model_dirs else None,
                },
            },
        )
        if part not in ("test", "validation"):
            raise ValueError("--part must be 'test' or 'validation'")
        dirs = [Path(p) for p in cfg.evaluation.model_dirs]
        if not dirs:
            raise ValueError("no models: give one or more saved model folders")
        _set_threads(cfg.threads)
        log = load_events(cfg)
        sp = make_split(log, cfg)
        cases = sp.test if part == "test" else sp.validation
        names = [d.name for d in dirs]
        if len(set(names)) < len(names):
            names = [str(d) for d in dirs]
        results: dict[str, Any] = {}
        per_case_all: dict[str, dict[str, Any]] = {}
        for label, d in zip(names, dirs, strict=True):
            model = load(d)
            es = evalset_for_model(model, log, cases)
            metrics, per_case = evaluate_ranking(
                model.score,
                es,
                n_items=model.n_items,
                ks=cfg.evaluation.ks,
                exclude_history=cfg.evaluation.exclude_history,
                return_per_user=True,
            )
            per_case_all[label] = per_case
            info = model.fit_info or {}
            results[label] = {
                "model_dir": str(d),
                "kind": model.kind,
                "config": model.config.model_dump(),
                part: metrics,
                "train_seconds": info.get("train_seconds", float("nan")),
                "best_epoch": info.get("best_epoch"),
                "epochs_run": info.get("epochs_run"),
            }
        k_show = 10 if 10 in cfg.evaluation.ks else cfg.evaluation.ks[0]
        typer.echo(
            f"{sp.protocol} on {_data_label(cfg)}: {len(cases)} {part} users, {log.n_items} items, "
            f"full-catalogue ranking, history {'excluded' if cfg.evaluation.exclude_history else 'included'}"
        )
        typer.echo(metrics_table(results, k=k_show, part=part))
        significance = _significance(names, per_case_all, k_show)
        if significance:
            typer.echo(
                f"Paired tests against {names[0]} over the same {len(cases)} users "
                f"(difference of the means, 95% bootstrap CI, paired t-test and Wilcoxon p):"
            )
            for label, tests in significance.items():
                for metric, t in tests.items():
                    typer.echo(
                        f"  {label} {metric}: {t['diff']:+.4f} [{t['ci_low']:+.4f}, {t['ci_high']:+.4f}], "
                        f"t p={t['t_test_p']:.2g}, Wilcoxon p={t['wilcoxon_p']:.2g}"
                    )
        payload = provenance(
            protocol=sp.protocol,
            part=part,
            data=_data_label(cfg),
            data_description={
                "n_events": len(log),
                "n_users": log.n_users,
                "n_items": log.n_items,
                "source": log.source,
            },
            split=cfg.split.model_dump(),
            seed=cfg.seed,
            ks=list(cfg.evaluation.ks),
            exclude_history=cfg.evaluation.exclude_history,
            n_cases=len(cases),
            results=results,
            significance=significance,
        )
        target = out or Path(cfg.output_dir or "runs") / f"evaluate-{_timestamp()}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(payload, indent=2, default=_json_default))
        typer.echo(f"Saved the results to {target}")


def _significance(names: list[str], per_case: dict[str, dict[str, Any]], k: int) -> dict[str, dict[str, Any]]:
    """Paired tests of every model against the first one on per-user NDCG@k and HR@k."""
    from chronorec.evaluation.stats import paired_test

    out: dict[str, dict[str, Any]] = {}
    base = per_case.get(names[0]) if names else None
    for label in names[1:]:
        other = per_case[label]
        out[label] = {m: paired_test(base[m], other[m]) for m in (f"NDCG@{k}", f"HR@{k}") if m in base and m in other}
    return out


# ---------------------------------------------------------------------- recommend
def _read_user_file(path: Path) -> list[Any]:
    import pandas as pd

    from chronorec.data import columns as C

    suffix = path.suffix.lower()
    if suffix == ".parquet":
        df = pd.read_parquet(path)
    elif suffix in (".csv", ".tsv"):
        df = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype=str)
    else:
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    col = C.USER if C.USER in df.columns else df.columns[0]
    return df[col].tolist()


@app.command()
def recommend(
    model: Annotated[
        Path | None, typer.Option("--model", "-m", help="Saved model folder (from `chronorec train`).")
    ] = None,
    users: Annotated[
        list[str] | None, typer.Option("--users", "-u", help="User ids, comma-separated and/or repeated.")
    ] = None,
    users_file: Annotated[
        Path | None,
        typer.Option("--users-file", help="File of user ids: one per line, or a CSV/Parquet with a user_id column."),
    ] = None,
    history: Annotated[
        list[str] | None,
        typer.Option("--history", help="Recommend for a live history instead: item ids oldest first, comma-separated."),
    ] = None,
    k: Annotated[int | None, typer.Option("-k", "--k", help="Number of recommendations per user (default 10).")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to this .csv or .parquet file (default: print CSV).")
    ] = None,
    include_seen: Annotated[
        bool | None,
        typer.Option(
            "--include-seen/--exclude-seen", help="Allow items the user already interacted with (default: excluded)."
        ),
    ] = None,
    items_table: Annotated[
        Path | None,
        typer.Option(
            "--items", help="Item table for filters / re-ranking (item_id, category, available, price, name)."
        ),
    ] = None,
    rec_settings: Annotated[
        Path | None,
        typer.Option(
            "--settings", help="chronorec.recommend.pipeline settings JSON (temperature, filters, rerank, blend)."
        ),
    ] = None,
    explain: Annotated[bool, typer.Option("--explain", help="Add the history items behind each item.")] = False,
    calibrated: Annotated[
        bool, typer.Option("--calibrated", help="Report calibrated probabilities as score (default: raw model score).")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Top-K recommendations for users (from their training histories) or for a live history.

    Goes through the same pipeline as `chronorec serve` (chronorec.recommend.pipeline: filters, re-ranking, blending).
    """
    with _user_errors():
        from chronorec.models.registry import load

        cfg = _settings(
            config,
            {
                "recommend": {
                    "model": str(model) if model else None,
                    "users": _split_ids(users) or None,
                    "users_file": str(users_file) if users_file else None,
                    "k": k,
                    "out": str(out) if out else None,
                    "exclude_seen": None if include_seen is None else not include_seen,
                }
            },
        )
        r = cfg.recommend
        if r.model is None:
            raise ValueError("no model: give --model DIR")
        from chronorec.recommend.pipeline import ItemTable, RecommendOptions, RecommendPipeline, RecommendSettings

        m = load(r.model)
        settings = RecommendSettings.load(rec_settings) if rec_settings else RecommendSettings()
        pipe = RecommendPipeline(
            m, items=ItemTable.read(items_table, m.items) if items_table else None, settings=settings
        )
        opts = RecommendOptions(
            k=r.k, filters=settings.filters.model_copy(update={"exclude_seen": r.exclude_seen}), explain=explain
        )
        score_kind = "probability" if calibrated else "raw"
        if history:
            items = _typed_ids(_split_ids(history), m.items)
            recs = pipe.recommend(histories=[items], options=opts, user_ids=["<history>"], score=score_kind)
        else:
            ids: list[Any] = list(r.users)
            if r.users_file:
                ids += _read_user_file(Path(r.users_file))
            if not ids:
                raise ValueError("no users: give --users, --users-file or --history")
            ids = _typed_ids(ids, m.users)
            unknown = int((m.users.to_internal(ids) == 0).sum())
            if unknown:
                typer.secho(
                    f"note: {unknown} of {len(ids)} users are unknown to the model; they get popular items", err=True
                )
            recs = pipe.recommend(ids, options=opts, score=score_kind)
        if r.out:
            target = Path(r.out)
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.suffix.lower() == ".parquet":
                recs.to_parquet(target, index=False)
            elif target.suffix.lower() == ".csv":
                recs.to_csv(target, index=False)
            else:
                raise ValueError(f"--out {target}: use a .csv or .parquet file name")
            typer.echo(f"Wrote {len(recs)} recommendations for {recs['user_id'].nunique()} users to {target}")
        else:
            recs.to_csv(sys.stdout, index=False)


# ---------------------------------------------------------------------- demo
# ---------------------------------------------------------------------- calibrate
@app.command()
def calibrate(
    model: Annotated[Path, typer.Option("--model", "-m", help="Saved model folder.")],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Recommendation settings JSON to write (for --settings of recommend/serve)."),
    ] = Path("recommend.json"),
    items_table: Annotated[
        Path | None,
        typer.Option("--items", help="Item table (item_id, category, ...) for the interest re-ranking variant."),
    ] = None,
    sparse_below: Annotated[
        int, typer.Option("--sparse-below", help="Histories shorter than this are blended (tuned on validation).")
    ] = 5,
    data: DataOpt = None,
    dataset: DatasetOpt = None,
    data_dir: DataDirOpt = None,
    user_col: UserColOpt = None,
    item_col: ItemColOpt = None,
    time_col: TimeColOpt = None,
    behavior_col: BehaviorColOpt = None,
    value_col: ValueColOpt = None,
    context_col: ContextColOpt = None,
    time_unit: TimeUnitOpt = None,
    split: SplitOpt = None,
    cutoff: CutoffOpt = None,
    validation_cutoff: ValCutoffOpt = None,
    min_events: MinEventsOpt = None,
    seed: SeedOpt = None,
    threads: ThreadsOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Fit the deployment settings of a model on VALIDATION data and show what each knob costs.

    Calibrates the softmax temperature (NLL of the next item; reliability plot before/after),
    tunes the popularity/content blend for sparse histories, and evaluates the post-processing
    variants (plain, diversity re-ranking, interest re-ranking with --items): NDCG@10, HR@10,
    coverage, intra-list diversity and novelty. Writes the settings JSON (--out) and, next to it,
    <out>.report.json and <out>.reliability.png.
    """
    overrides = _run_overrides(locals())
    with _user_errors():
        from chronorec.evaluation.calibration import plot_reliability
        from chronorec.models.registry import load
        from chronorec.recommend.pipeline import (
            ItemTable,
            RecommendOptions,
            RecommendPipeline,
            RecommendSettings,
            RerankOptions,
            calibrate_temperature,
            evaluate_postprocessing,
            tune_blend,
        )
        from chronorec.workflows.experiment import provenance

        cfg = _settings(config, overrides)
        _set_threads(cfg.threads)
        m = load(model)
        log = load_events(cfg)
        sp = make_split(log, cfg)
        val = evalset_for_model(m, log, sp.validation)
        cal = calibrate_temperature(m, val)
        T = float(cal["temperature"])
        stats = {k: float(v) for k, v in cal.items() if k in ("nll_before", "nll_after", "ece_before", "ece_after")}
        stats["n_cases"] = int(cal["n_cases"])
        typer.echo(
            f"temperature {T:.4g}: validation NLL {stats['nll_before']:.4f} -> {stats['nll_after']:.4f}, "
            f"ECE {stats['ece_before']:.4f} -> {stats['ece_after']:.4f} ({stats['n_cases']} cases)"
        )
        stem = out.with_suffix("")
        out.parent.mkdir(parents=True, exist_ok=True)
        plot = plot_reliability(
            {"T = 1": cal["curve_before"], f"T = {T:.3g}": cal["curve_after"]},
            Path(f"{stem}.reliability.png"),
            title=f"{m.kind}: top-1 reliability on validation",
        )
        items = ItemTable.read(items_table, m.items) if items_table else None
        settings = RecommendSettings(temperature=T, calibration=stats)
        pipe = RecommendPipeline(m, items=items, settings=settings)
        blend, blend_table = tune_blend(pipe, val, sparse_below=sparse_below)
        settings = settings.model_copy(update={"blend": blend})
        pipe.settings = settings  # same model and items: keep the pipeline and its cached embeddings
        typer.echo(
            f"blend for histories under {sparse_below} items: popularity {blend.popularity}, content {blend.content}"
        )
        variants = {"plain": RecommendOptions()}
        for w in (0.2, 0.5):
            variants[f"diversity {w}"] = RecommendOptions(rerank=RerankOptions(diversity_weight=w))
        if items is not None and items.has_categories:
            variants["interest 0.3"] = RecommendOptions(rerank=RerankOptions(interest_weight=0.3))
        post = evaluate_postprocessing(pipe, val, variants)
        typer.echo("post-processing on validation (what each knob costs):")
        typer.echo(post.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
        settings.save(out)
        report = provenance(
            model=str(model),
            data=_data_label(cfg),
            protocol=sp.protocol,
            part="validation",
            calibration=stats,
            blend=blend.model_dump(),
            blend_grid=blend_table.to_dict(orient="records"),
            postprocessing=post.to_dict(orient="records"),
            reliability_plot=str(plot),
        )
        Path(f"{stem}.report.json").write_text(json.dumps(report, indent=2, default=_json_default))
        typer.echo(f"Wrote {out}, {stem}.report.json and {plot}")


@app.command()
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
    with _user_errors():
        from chronorec.workflows.demo import run_demo

        cfg = _settings(config, {"seed": seed, "threads": threads, "output_dir": str(out) if out else None})
        run_demo(cfg.output_dir, quick=quick, seed=cfg.seed, threads=cfg.threads, progress=progress)


@app.command()
def ensemble(
    model_dirs: Annotated[list[Path], typer.Argument(help="Saved model folders fitted on the same data.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the saved ensemble.")],
    weights: Annotated[
        str | None, typer.Option("--weights", help="Comma-separated member weights (default: equal).")
    ] = None,
    combine: Annotated[
        str, typer.Option("--combine", help="log_softmax (sum of member log-probabilities) or zscore.")
    ] = "log_softmax",
) -> None:
    """Combine saved models into one score-level ensemble (evaluate, recommend and serve it like any model)."""
    with _user_errors():
        from chronorec.models.ensemble import Ensemble
        from chronorec.models.registry import load

        if combine not in ("log_softmax", "zscore"):
            raise ValueError(f"--combine must be log_softmax or zscore, not {combine!r}")
        w = [float(x) for x in weights.split(",")] if weights else None
        if w is not None and len(w) != len(model_dirs):
            raise ValueError(f"{len(w)} weights for {len(model_dirs)} models")
        ens = Ensemble.from_models([load(d, device="cpu") for d in model_dirs], weights=w, combine=combine)
        ens.save(out)
        typer.echo(f"Saved an ensemble of {len(model_dirs)} models to {out}")


# ---------------------------------------------------------------------- benchmark
@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True}, add_help_option=False)
def benchmark(ctx: typer.Context) -> None:
    """Reproduce published protocols on benchmark datasets (chronorec.workflows.benchmark); all options are passed through.

    Options (see `chronorec benchmark --help`): --datasets, --models, --data-dir, --out, --seed,
    --threads, --set MODEL.KEY=VALUE, --tag, --no-progress, --save-model DIR.
    """
    from chronorec.workflows.benchmark import main as benchmark_main

    result = benchmark_main(list(ctx.args))
    if isinstance(result, int) and result:
        raise typer.Exit(result)


def main() -> None:  # console entry point alternative to ``app``
    app(prog_name="chronorec")


if __name__ == "__main__":
    main()

# ---------------------------------------------------------------------- temporal behaviour (features, behaviour, forecast)
from chronorec.cli.temporal import features_command as _features_command  # noqa: E402

app.command("features")(_features_command)

# ---------------------------------------------------------------------- serve (HTTP service, chronorec.serving)
from chronorec.cli.serve import serve as _serve_command  # noqa: E402

app.command("serve")(_serve_command)
from chronorec.cli.temporal import predict_behavior_command as _predict_behavior_command  # noqa: E402

app.command("predict-behavior")(_predict_behavior_command)
from chronorec.cli.forecast import forecast_command as _forecast_command  # noqa: E402

app.command("forecast")(_forecast_command)
