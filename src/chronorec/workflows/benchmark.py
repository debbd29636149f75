"""Standard-protocol benchmark: leave-one-out, full-catalogue ranking, history items filtered,
best epoch chosen on validation NDCG@10, test read once.

Each (dataset, model) run happens in its own subprocess, so its peak memory is its own.
Results are written as JSON (every figure plus the command, data file, machine and git commit)
and as a Markdown table. The model settings per dataset are the YAML presets in ``presets/``
(:func:`presets`); how each came to be is written up in docs/benchmarks/presets.md.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator

from chronorec.errors import ConfigError
from chronorec.settings import Strict
from chronorec.workflows.sections import BenchmarkConfig

logger = logging.getLogger(__name__)

PRESET_DIR = Path(__file__).with_name("presets")
"""The preset files shipped with the package (``presets/*.yaml``); their history: docs/benchmarks/presets.md."""


class PresetFile(Strict):
    """One YAML file of benchmark presets: the model settings used on a group of datasets."""

    description: str = Field("", description="What the presets are for (data, maximum input length, anchors).")
    datasets: list[str] = Field(
        description="Names of the datasets (keys of chronorec.datasets.formats.DATASETS) these presets apply to."
    )
    models: dict[str, dict[str, Any]] = Field(
        description="Preset name -> model parameters: 'kind' plus fields of that model kind's Config."
    )

    @field_validator("models")
    @classmethod
    def _valid_entries(cls, models: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        from chronorec.workflows.run_config import model_entry

        for name, params in models.items():
            try:
                model_entry(params)
            except ConfigError as e:
                raise ValueError(f"preset {name!r}: {e}") from None
        return models


@functools.cache
def presets() -> dict[str, dict[str, dict[str, Any]]]:
    """Dataset name -> preset name -> model parameters, from every file in :data:`PRESET_DIR`."""
    import yaml

    from chronorec.workflows.run_config import format_validation_error

    out: dict[str, dict[str, dict[str, Any]]] = {}
    for path in sorted(PRESET_DIR.glob("*.yaml")):
        try:
            spec = PresetFile.model_validate(yaml.safe_load(path.read_text()))
        except ValidationError as e:
            raise ConfigError(format_validation_error(e, str(path))) from None
        for dataset in spec.datasets:
            out[dataset] = spec.models
    return out


def preset_params(dataset: str, model: str, overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """A copy of one preset's parameters with ``overrides[model]`` on top."""
    table = presets()
    if dataset not in table:
        raise ConfigError(f"no benchmark presets for dataset {dataset!r}; known: {', '.join(table)}")
    if model not in table[dataset]:
        raise ConfigError(f"unknown model preset {model!r}; known: {', '.join(table[dataset])}")
    return {**table[dataset][model], **(overrides or {}).get(model, {})}


class BenchmarkSettings(BenchmarkConfig):
    """Everything a benchmark run needs: the section plus the data folder, seed and threads."""

    data_dir: str | None = Field(
        None, description="Benchmark data folder (default: $CHRONOREC_DATA or ../shared/data)."
    )
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Random seed.")
    threads: int | None = Field(None, ge=1, le=1024, description="torch threads (default: all cores).")


class BenchmarkJob(BenchmarkSettings):
    """One (dataset, model) run of a benchmark, as handed to its own subprocess."""

    dataset: str = Field(description="The dataset of this run.")
    model: str = Field(description="The model preset of this run.")

    @property
    def out_json(self) -> Path:
        tag = f"-{self.tag}" if self.tag else ""
        return Path(self.out) / "runs" / f"{self.dataset}-{self.model}-seed{self.seed}{tag}.json"


def run_one(
    dataset: str,
    model_name: str,
    *,
    data_dir: str | None,
    params: dict[str, Any],
    threads: int | None,
    seed: int,
    out_json: Path,
    progress: bool,
    save_model: Path | None = None,
    refit: bool = False,
    refit_from: Path | None = None,
) -> dict[str, Any]:
    """Fit and evaluate one model on one dataset in this process.

    ``refit``: after the validated run, fit the same configuration again from scratch on the
    training + validation events, for the epochs and learning rates that validation chose
    (:func:`~chronorec.training.schedules.refit_plan`), and report it, and the two models' ensemble, on test.
    ``refit_from``: only that refit, from a finished run's JSON (its configuration, history and
    best epoch; its saved model, when there, joins the ensemble). The row's training time is the
    search's plus the refit's: the cost of the whole recipe.
    """
    from chronorec.datasets.formats import dataset_path
    from chronorec.training.runtime import set_threads
    from chronorec.workflows.experiment import run_models
    from chronorec.workflows.run import make_split, resolve_dataset
    from chronorec.workflows.run_config import SplitConfig

    set_threads(threads)
    path = dataset_path(dataset, data_dir=data_dir)
    t0 = time.perf_counter()
    log = resolve_dataset(dataset, data_dir=data_dir, seed=seed)
    split = make_split(log, SplitConfig())  # the published protocol: leave-one-out
    load_seconds = time.perf_counter() - t0
    search: dict[str, Any] = {}
    if refit_from is not None:  # the recipe is the finished run's, not the preset's
        search = json.loads(Path(refit_from).read_text())
        if "refit" in search or not search.get("history"):
            raise ConfigError(f"{refit_from}: not a validated run with a training history to refit from")
        params = dict(search["config"], kind=search["kind"])
        seed = int(search.get("seed", seed))
    kind, cls, params = model_params(params, seed=seed, progress=progress, threads=threads)
    if refit_from is None:
        model = cls(**params)
        res = run_models({model_name: model}, split, progress=progress)[model_name]
        search = {**res, "run": "this run", "model": model}
    else:
        search.update(run=str(refit_from), model=_load_if_saved(search.get("saved_model")))
        res = {"kind": kind}
    if refit or refit_from is not None:
        res.pop("validation", None)  # the search model's: it is kept under "search"
        res.update(_refit(cls, params, search, split, seed=seed, progress=progress))
        model = res.pop("_model")
    res.update(_run_facts(dataset, path, log, load_seconds, seed, refit="refit" in res, max_len=params.get("max_len")))
    if save_model is not None:
        model.save(save_model)
        res["saved_model"] = str(save_model)
        if refit and search["model"] is not None:
            search["model"].save(f"{save_model}-search")
            res["search"]["saved_model"] = f"{save_model}-search"
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(res, indent=2, default=float))
    return res


def model_params(params: dict[str, Any], *, seed: int, progress: bool, threads: int | None):
    """``(kind, model class, constructor keywords)`` with the run's seed, progress and threads."""
    from chronorec.models import registry

    params = dict(params)
    kind = params.pop("kind")
    cls = registry.get(kind)
    fields = cls.Config.model_fields
    if "seed" in fields:
        params["seed"] = seed
    if "progress" in fields:
        params["progress"] = progress
    if "threads" in fields and threads:
        params["threads"] = threads
    return kind, cls, params


PROTOCOL = "leave-one-out, full-catalogue ranking, history items filtered, best epoch by validation NDCG@10"
REFIT_PROTOCOL = "; refit on training + validation events for the validated epochs and learning rates"


def _run_facts(dataset: str, path: Path, log, load_seconds: float, seed: int, *, refit: bool, max_len) -> dict:
    """What a run's JSON records besides its figures: data, protocol, memory and provenance."""
    from chronorec.workflows.experiment import peak_rss_mb, provenance

    return {
        "dataset": dataset,
        "data_file": str(path),
        "n_users": log.n_users,
        "n_items": log.n_items,
        "n_events": len(log),
        "load_seconds": load_seconds,
        "seed": seed,
        "peak_rss_mb": peak_rss_mb(),
        "protocol": PROTOCOL + (REFIT_PROTOCOL if refit else ""),
        "max_len": max_len,
        "provenance": provenance(),
    }


REFIT_SEED_OFFSET = 1000  # the refit's seed: another initialisation, so it also adds to an ensemble


def _load_if_saved(path: str | None):
    from chronorec.models.registry import load

    return load(path) if path and Path(path).exists() else None


def _refit(cls, params: dict[str, Any], search: dict[str, Any], split, *, seed: int, progress: bool) -> dict[str, Any]:
    """Refit ``params`` on the training + validation events along the search run's validated
    schedule; the refit model, its test figures, and those of its ensemble with the search model."""
    from chronorec.models.ensemble import Ensemble
    from chronorec.scoring.ranking_metrics import evaluate_ranking
    from chronorec.training.schedules import refit_plan
    from chronorec.workflows.experiment import DEFAULT_KS

    if split.full is None:
        raise ValueError("this split has no training + validation log to refit on")
    plan = refit_plan(search["history"], search["best_epoch"])
    rparams = {**params, "lr_plan": plan, "seed": seed + REFIT_SEED_OFFSET, "progress": progress}
    rparams.pop("time_budget_s", None)
    model = cls(**rparams)
    logger.info("-- refit: %d epochs on training + validation events", len(plan))
    t0 = time.perf_counter()
    model.fit(split.full)
    fit_seconds = time.perf_counter() - t0
    n_items = split.train.n_items

    def test_of(m) -> tuple[dict[str, float], float]:
        t1 = time.perf_counter()
        figures = evaluate_ranking(m.score, split.test, n_items=n_items, ks=DEFAULT_KS, exclude_history=True)
        return figures, time.perf_counter() - t1

    test, eval_seconds = test_of(model)
    refit_seconds = model.fit_info["train_seconds"]
    out: dict[str, Any] = {
        "_model": model,
        "config": model.config.model_dump(),
        "test": test,
        "eval_seconds": eval_seconds,
        "fit_seconds": fit_seconds,
        "train_seconds": search["train_seconds"] + refit_seconds,
        "best_epoch": len(plan),
        "epochs_run": len(plan),
        "history": model.fit_info["history"],
        "search": {
            "run": search["run"],
            "test": search.get("test"),
            "validation": search.get("validation"),
            "best_epoch": search["best_epoch"],
            "epochs_run": search.get("epochs_run"),
            "train_seconds": search["train_seconds"],
        },
        "refit": {"seed": rparams["seed"], "epochs": len(plan), "train_seconds": refit_seconds, "lr_plan": plan},
        "recipe": "validated run on training events, then a refit on training + validation events "
        "for the epochs and learning rates validation chose; figures are the refit's",
    }
    if search["model"] is not None:
        ens = Ensemble.from_models([search["model"], model])
        out["ensemble"] = {"members": ["search", "refit"], "test": test_of(ens)[0]}
    logger.info("   refit: test NDCG@10 %.4f HR@10 %.4f", test["NDCG@10"], test["HR@10"])
    return out


def parse_overrides(items: list[str]) -> dict[str, dict[str, Any]]:
    """``MODEL.KEY=VALUE`` strings (JSON values, else the raw string) -> {model: {key: value}}."""
    overrides: dict[str, dict[str, Any]] = {}
    for item in items:
        key, _, value = item.partition("=")
        model, _, field = key.partition(".")
        if not field:
            raise ConfigError(f"--set {item!r}: expected MODEL.KEY=VALUE")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        overrides.setdefault(model, {})[field] = parsed
    return overrides


def markdown(rows: list[dict[str, Any]]) -> str:
    head = (
        "| data | model | HR@10 | NDCG@10 | MRR@10 | train s | epochs (best/run) | eval s (all users) | peak RSS MB |\n"
        "|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in rows:
        t = r["test"]
        ep = f"{r['best_epoch']}/{r['epochs_run']}" if r.get("epochs_run") else "-"
        lines.append(
            f"| {r['dataset']} | {r['model']} | {t['HR@10']:.4f} | {t['NDCG@10']:.4f} | {t['MRR@10']:.4f} | "
            f"{r['train_seconds']:.0f} | {ep} | {r['eval_seconds']:.2f} | {r['peak_rss_mb']:.0f} |"
        )
    groups = seed_groups(rows)
    if groups:
        lines += [
            "",
            "Runs repeated over seeds (mean, sample standard deviation):",
            "",
            "| data | model | seeds | NDCG@10 mean | NDCG@10 std | HR@10 mean | HR@10 std |",
            "|---|---|---|---|---|---|---|",
        ]
        for g in groups:
            lines.append(
                f"| {g['dataset']} | {g['model']} | {','.join(map(str, g['seeds']))} | {g['NDCG@10_mean']:.4f} | "
                f"{g['NDCG@10_std']:.4f} | {g['HR@10_mean']:.4f} | {g['HR@10_std']:.4f} |"
            )
    return "\n".join(lines)


def seed_groups(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs that differ only by seed (same data, model and tag), with mean and sample std of the
    test NDCG@10 and HR@10; only groups of two or more seeds."""
    import re

    import numpy as np

    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        name = re.sub(r"-seed\d+", "", str(r["model"]))
        groups.setdefault((r["dataset"], name), []).append(r)
    out = []
    for (dataset, name), rs in groups.items():
        if len(rs) < 2:
            continue
        g: dict[str, Any] = {"dataset": dataset, "model": name, "seeds": sorted(int(r.get("seed", -1)) for r in rs)}
        for m in ("NDCG@10", "HR@10"):
            v = np.array([r["test"][m] for r in rs])
            g[f"{m}_mean"], g[f"{m}_std"] = float(v.mean()), float(v.std(ddof=1))
        out.append(g)
    return out


def run_job(job: BenchmarkJob) -> dict[str, Any]:
    """One (dataset, model) run in this process, with the preset, the overrides and the job's options."""
    return run_one(
        job.dataset,
        job.model,
        data_dir=job.data_dir,
        params=preset_params(job.dataset, job.model, parse_overrides(job.set)),
        threads=job.threads,
        seed=job.seed,
        out_json=job.out_json,
        progress=job.progress,
        save_model=Path(job.save_model) / f"{job.dataset}-{job.model}" if job.save_model else None,
        refit=job.refit,
        refit_from=Path(job.refit_from) if job.refit_from else None,
    )


def run_benchmark(settings: BenchmarkSettings, *, command: str) -> list[dict[str, Any]]:
    """Every (dataset, model) run of ``settings``, each in its own subprocess (its peak memory is its
    own), then the summary table; or, with ``aggregate``, only the summary of the saved runs.
    Returns the summary's rows."""
    if settings.aggregate:
        return aggregate(Path(settings.out), tag=settings.tag, command=command)
    if settings.refit_from and (len(settings.datasets) != 1 or len(settings.models) != 1):
        raise ConfigError("--refit-from names one run: give one dataset (--datasets) and one model (--models)")
    overrides = parse_overrides(settings.set)
    jobs = [
        BenchmarkJob(**settings.model_dump(), dataset=d, model=m) for d in settings.datasets for m in settings.models
    ]
    for job in jobs:  # validate every name before starting long runs
        preset_params(job.dataset, job.model, overrides)
    rows = []
    for job in jobs:
        logger.info("== %s / %s", job.dataset, job.model)
        level = logging.getLevelName(logging.getLogger("chronorec").getEffectiveLevel())
        env = {**os.environ, "CHRONOREC_LOG_LEVEL": str(level)}
        subprocess.run([sys.executable, "-m", __name__, job.model_dump_json()], check=True, env=env)
        res = json.loads(job.out_json.read_text())
        res["model"] = job.model
        rows.append(res)
    write_summary(Path(settings.out), rows, f"-{settings.tag}" if settings.tag else "", command)
    return rows


def aggregate(out: Path, *, tag: str = "", command: str = "chronorec benchmark --aggregate") -> list[dict[str, Any]]:
    """The summary table rebuilt from the saved runs under ``out/runs`` (other JSON files skipped)."""
    rows = []
    for f in sorted((out / "runs").glob("*.json")):
        res = json.loads(f.read_text())
        if "dataset" not in res or "test" not in res:
            continue  # not a benchmark run (e.g. the cold-start benchmark's per-model files)
        res["model"] = f.stem[len(res["dataset"]) + 1 :]  # model-seedN[-tag]: every run stays distinguishable
        rows.append(res)
    write_summary(out, rows, f"-{tag}" if tag else "", command)
    return rows


def write_summary(out: Path, rows: list[dict[str, Any]], tag: str, command: str) -> None:
    """``summary<tag>.md`` and ``summary<tag>.json`` under ``out``."""
    table = markdown(rows)
    payload = {"command": command, "runs": rows, "seed_groups": seed_groups(rows)}
    out.mkdir(parents=True, exist_ok=True)
    (out / f"summary{tag}.json").write_text(json.dumps(payload, indent=2, default=float))
    (out / f"summary{tag}.md").write_text(table + "\n")


if __name__ == "__main__":  # one run in its own process: python -m chronorec.workflows.benchmark '<job JSON>'
    # this process is an entry point: its log records go to stderr at the parent's level
    logging.basicConfig(level=os.environ.get("CHRONOREC_LOG_LEVEL", "INFO"), format="%(message)s", stream=sys.stderr)
    run_job(BenchmarkJob.model_validate_json(sys.argv[1]))
