"""``chronorec recommend``: top-K lists through the serving pipeline, in batch."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from chronorec.cli.common import load_config, require_fitted, split_ids, typed_ids
from chronorec.cli.options import ConfigOpt, grouped, option_group
from chronorec.errors import ConfigError


@option_group
class RecommendArgs:
    """The options of ``recommend``."""

    model: Annotated[
        Path | None, typer.Option("--model", "-m", help="Saved model folder (from `chronorec train`).")
    ] = None
    users: Annotated[
        list[str] | None, typer.Option("--users", "-u", help="User ids, comma-separated and/or repeated.")
    ] = None
    users_file: Annotated[
        Path | None,
        typer.Option("--users-file", help="File of user ids: one per line, or a CSV/Parquet with a user_id column."),
    ] = None
    history: Annotated[
        list[str] | None,
        typer.Option("--history", help="Recommend for a live history instead: item ids oldest first, comma-separated."),
    ] = None
    k: Annotated[int | None, typer.Option("-k", "--k", help="Number of recommendations per user (default 10).")] = None
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to this .csv or .parquet file (default: print CSV).")
    ] = None
    include_seen: Annotated[
        bool | None,
        typer.Option(
            "--include-seen/--exclude-seen",
            help="Allow items the user already interacted with (default: the model's: included for buyagain, "
            "repeat-blend and models trained on repeating targets, excluded otherwise).",
        ),
    ] = None
    items_table: Annotated[
        Path | None,
        typer.Option(
            "--items", help="Item table for filters / re-ranking (item_id, category, available, price, name)."
        ),
    ] = None
    rec_settings: Annotated[
        Path | None,
        typer.Option(
            "--settings",
            help="chronorec.recommend.pipeline settings JSON (temperature, filters, rerank, blend); default: "
            "the model folder's recommend.json where it has one.",
        ),
    ] = None
    explain: Annotated[
        bool,
        typer.Option("--explain", help="Add why each item: the history items behind it, or what it is popular in."),
    ] = False
    context: Annotated[
        list[str] | None,
        typer.Option(
            "--context",
            help="Context of the request as key=value (repeatable), e.g. device=mobile, time=1718000000, behavior=buy; "
            "used by models trained with context, otherwise reported as ignored.",
        ),
    ] = None
    calibrated: Annotated[
        bool, typer.Option("--calibrated", help="Report calibrated probabilities as score (default: raw model score).")
    ] = False

    def section(self) -> dict[str, Any]:
        """The ``recommend`` config section these options give."""
        return {
            "model": str(self.model) if self.model else None,
            "users": split_ids(self.users) or None,
            "users_file": str(self.users_file) if self.users_file else None,
            "k": self.k,
            "out": str(self.out) if self.out else None,
            "exclude_seen": None if self.include_seen is None else not self.include_seen,
        }


@grouped
def recommend(opts: RecommendArgs, config: ConfigOpt = None) -> None:
    """Top-K recommendations for users (from their training histories) or for a live history.

    Goes through the same pipeline as `chronorec serve` (chronorec.recommend.pipeline: filters, re-ranking, blending).
    """
    r = load_config(config, {"recommend": opts.section()}).recommend
    if r.model is None:
        raise ConfigError("no model: give --model DIR")
    pipe, options = _pipeline(r, opts)
    ctx = _parse_context(opts.context)
    if opts.history:
        items = typed_ids(split_ids(opts.history), pipe.model.items)
        labels, lists = pipe.recommend_lists(
            histories=[items],
            options=options,
            user_ids=["<history>"],
            contexts=None if ctx is None else [ctx],
            probabilities=opts.calibrated,
        )
    else:
        ids = typed_ids(_user_ids(r), pipe.model.users)
        contexts = None if ctx is None else [ctx] * len(ids)
        labels, lists = by_history_length(pipe, ids, options=options, contexts=contexts, probabilities=opts.calibrated)
    _echo_warnings(lists)
    _write_recommendations(pipe.to_frame(labels, lists, score="probability" if opts.calibrated else "raw"), r.out)


def _pipeline(r: Any, opts: RecommendArgs) -> tuple[Any, Any]:
    """The recommendation pipeline of the saved model, and the per-request options (k, filters, explain)."""
    from chronorec.models.registry import load
    from chronorec.recommend import ItemTable, RecommendOptions, RecommendPipeline, RecommendSettings

    m = require_fitted(load(r.model))
    rec = RecommendSettings.of_folder(r.model, opts.rec_settings) or RecommendSettings()  # the folder's own
    items = ItemTable.read(opts.items_table, m.items) if opts.items_table else None
    pipe = RecommendPipeline(m, items=items, settings=rec)
    filters = rec.filters if r.exclude_seen is None else rec.filters.model_copy(update={"exclude_seen": r.exclude_seen})
    _echo_seen(pipe, filters.exclude_seen)
    return pipe, RecommendOptions(k=r.k, filters=filters, explain=opts.explain)


def _user_ids(r: Any) -> list[Any]:
    """The users asked for: --users, then those of --users-file."""
    ids: list[Any] = list(r.users)
    if r.users_file:
        ids += _read_user_file(Path(r.users_file))
    if not ids:
        raise ConfigError("no users: give --users, --users-file or --history")
    return ids


def _read_user_file(path: Path) -> list[Any]:
    """User ids from a Parquet / CSV / TSV file (its ``user_id`` column, else the first) or a text file
    (one id per line, UTF-8); a file that does not read as one is a one-line error naming it."""
    import pandas as pd

    from chronorec.data import columns as C
    from chronorec.errors import DataError

    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            df = pd.read_parquet(path)
        elif suffix in (".csv", ".tsv"):
            df = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype=str)
        else:
            return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (UnicodeDecodeError, ValueError, OSError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        kind = "a Parquet file" if suffix == ".parquet" else "UTF-8 text, one user id per line (or .csv / .parquet)"
        raise DataError(f"--users-file {path}: not {kind} ({type(e).__name__})") from e
    col = C.USER if C.USER in df.columns else df.columns[0]
    return df[col].tolist()


def by_history_length(pipe: Any, ids: list[Any], **kw: Any) -> tuple[list[Any], list[Any]]:
    """``pipe.recommend_lists(ids, **kw)`` scored in order of history length, answered in the given order.

    A forward pass pads its batch to the longest history, so batches of similar lengths spare most
    of the padding (as the evaluation pass does); each user's list does not depend on its batch.
    """
    import numpy as np

    lengths = pipe.model.store.lengths[pipe.model.users.to_internal(ids)]  # user 0 (unknown): length 0
    order = np.argsort(lengths, kind="stable")
    ctx = kw.pop("contexts", None)
    labels, lists = pipe.recommend_lists(
        [ids[i] for i in order], contexts=None if ctx is None else [ctx[i] for i in order], **kw
    )
    back = np.argsort(order, kind="stable")
    return [labels[i] for i in back], [lists[i] for i in back]


def _echo_seen(pipe: Any, asked: bool | None) -> None:
    """Say on stderr when the lists keep items the user already has without being asked to (a
    repeat model's default), and why; the usual default (excluded) and explicit flags go unsaid."""
    if asked is not None:
        return
    exclude, why = pipe.default_exclude_seen
    if not exclude:
        typer.secho(f"note: items the user already has are included ({why}; --exclude-seen to drop them)", err=True)


def _parse_context(values: list[str] | None) -> dict[str, Any] | None:
    """``--context key=value`` options as a request context (None: none given)."""
    if not values:
        return None
    out: dict[str, Any] = {}
    for item in split_ids(values):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"--context {item!r}: expected key=value")
        out[key.strip()] = value.strip()
    return out


def _echo_warnings(lists: Any) -> None:
    """The service's warnings for a batch: each distinct one once, with how many lists it concerns."""
    from chronorec.recommend.frames import summarise_warnings

    unknown_users = [x for x in lists if any("is unknown to the model; cold-start" in w for w in x.warnings)]
    for x in unknown_users:  # one line for all of them instead of one per user
        x.warnings = [w for w in x.warnings if "is unknown to the model; cold-start" not in w]
    if unknown_users:
        typer.secho(
            f"warning: {len(unknown_users)} of {len(lists)} users are unknown to the model; they get popular items "
            "(source=popularity: raw scores are training counts, not model scores)",
            err=True,
        )
    for w in summarise_warnings(lists):
        typer.secho(f"warning: {w}", err=True)


def _write_recommendations(recs: Any, out: str | None) -> None:
    """To a .csv / .parquet file, or as CSV to stdout."""
    if not out:
        recs.to_csv(sys.stdout, index=False)
        return
    target = Path(out)
    if target.suffix.lower() not in (".csv", ".parquet"):
        raise ConfigError(f"--out {target}: use a .csv or .parquet file name")
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix.lower() == ".parquet":
        recs.to_parquet(target, index=False)
    else:
        recs.to_csv(target, index=False)
    typer.echo(f"Wrote {len(recs)} recommendations for {recs['user_id'].nunique()} users to {target}")
