"""Scale benchmarks: each step runs in its own process (so its peak RSS is its own) and saves JSON.

    python benchmarks/scale.py synth --events 100M --users 1M --items 4M --out /tmp/scale/synth-100m
    python benchmarks/scale.py ingest /tmp/scale/synth-100m/events --out /tmp/scale/store-100m --engine duckdb
    python benchmarks/scale.py train /tmp/scale/store-100m --steps 200
    python benchmarks/scale.py topk --users 1M --engine spark
    python benchmarks/scale.py report   # growth table (Markdown) + plot from the saved JSON

Every JSON holds the command, the sizes, wall time, events/s, the peak RSS of the process (getrusage
``ru_maxrss``, which counts the file-backed pages a memory map touched too) and the machine. Results go to
``benchmarks/results/scale-<step>-<label>.json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def save(step: str, label: str, record: dict[str, Any]) -> Path:
    from chronorec.workflows.experiment import provenance

    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"scale-{step}-{label}.json"
    path.write_text(json.dumps({**provenance(), "step": step, **record}, indent=2, default=str))
    print(json.dumps(record, indent=2, default=str))
    return path


def size_label(n: int) -> str:
    return f"{n // 1_000_000}m" if n >= 1_000_000 else f"{n // 1000}k"


# ---------------------------------------------------------------------- steps
def cmd_synth(a: argparse.Namespace) -> None:
    from chronorec.datasets.large import TaobaoShape, parse_count, write_taobao

    shape = TaobaoShape(
        n_events=parse_count(a.events), n_users=parse_count(a.users), n_items=parse_count(a.items), seed=a.seed
    )
    t0 = time.perf_counter()
    meta = write_taobao(shape, a.out, chunk_events=parse_count(a.chunk_events))
    secs = time.perf_counter() - t0
    disk = sum(p.stat().st_size for p in Path(a.out).rglob("*.parquet"))
    save("synth", size_label(shape.n_events), {
        "events": shape.n_events, "users": shape.n_users, "items": shape.n_items, "chunk_events": a.chunk_events,
        "seconds": secs, "events_per_s": shape.n_events / secs, "peak_rss_mb": peak_rss_mb(),
        "files": len(meta["files"]), "parquet_mb": disk / 2**20, "behaviors": meta["behaviors"], "out": str(a.out),
    })  # fmt: skip


def cmd_ingest(a: argparse.Namespace) -> None:
    from chronorec.data.store import build_store

    t0 = time.perf_counter()
    r = build_store(a.source, a.out, memory_limit=a.memory_limit, threads=a.threads)
    secs = time.perf_counter() - t0
    save("ingest", a.label or size_label(r.rows_read), {
        "engine": "duckdb", "source": str(a.source), "out": str(a.out), "memory_limit": a.memory_limit,
        "rows_read": r.rows_read, "kept": r.kept, "rejected": r.rejected, "duplicates": r.duplicates,
        "balanced": r.balanced, "users": r.n_users, "items": r.n_items, "seconds": secs,
        "events_per_s": r.rows_read / secs, "phases": r.phases, "peak_rss_mb": peak_rss_mb(),
        "sequences_events_per_s": r.rows_read / r.phases["sort_sequences_parts"],
    })  # fmt: skip


def cmd_ingest_polars(a: argparse.Namespace) -> None:
    """The same work with polars' streaming engine: validate, deduplicate, map ids, sort, then the CSR arrays."""
    import polars as pl
    import pyarrow.parquet as pq

    from chronorec.data.store import CsrWriter

    t0 = time.perf_counter()
    files = sorted(str(f) for f in Path(a.source).rglob("*.parquet"))
    lf = pl.scan_parquet(files).with_row_index("ord")
    n_read = lf.select(pl.len()).collect(engine="streaming").item()
    valid = lf.filter(
        pl.col("user_id").is_not_null() & pl.col("item_id").is_not_null() & pl.col("timestamp").is_not_null()
    )
    dedup = valid.group_by(["user_id", "item_id", "timestamp", "behavior"]).agg(pl.col("ord").min())
    work = Path(a.out)
    work.mkdir(parents=True, exist_ok=True)
    dedup.sink_parquet(work / "dedup.parquet", engine="streaming")
    d = pl.scan_parquet(work / "dedup.parquet")
    users = d.select("user_id").unique().sort("user_id").with_row_index("user_idx", offset=1)
    items = d.select("item_id").unique().sort("item_id").with_row_index("item_idx", offset=1)
    users.sink_parquet(work / "users.parquet", engine="streaming")
    items.sink_parquet(work / "items.parquet", engine="streaming")
    t_dedupe = time.perf_counter() - t0
    out = (d.join(pl.scan_parquet(work / "users.parquet"), on="user_id")
           .join(pl.scan_parquet(work / "items.parquet"), on="item_id")
           .sort(["user_idx", "timestamp", "ord"])
           .select(pl.col("user_idx").cast(pl.Int64), pl.col("item_idx").cast(pl.Int32), "timestamp",
                   pl.lit(0, pl.Int8).alias("behavior_idx")))  # fmt: skip
    out.sink_parquet(work / "sorted.parquet", engine="streaming")
    kept = pq.ParquetFile(work / "sorted.parquet").metadata.num_rows
    n_users = pq.ParquetFile(work / "users.parquet").metadata.num_rows
    writer = CsrWriter(work, kept, n_users)
    for batch in pq.ParquetFile(work / "sorted.parquet").iter_batches(1 << 20):
        writer.add(batch)
    writer.close()
    secs = time.perf_counter() - t0
    save("ingest-polars", a.label or size_label(n_read), {
        "engine": f"polars {pl.__version__} (streaming)", "source": str(a.source), "rows_read": n_read, "kept": kept,
        "seconds": secs, "events_per_s": n_read / secs, "phases": {"validate_dedupe_maps": t_dedupe,
        "sort_sequences_parts": secs - t_dedupe}, "peak_rss_mb": peak_rss_mb(),
    })  # fmt: skip


def cmd_train(a: argparse.Namespace) -> None:
    """SASRec with sampled softmax from a store for a fixed number of steps: peak RSS and time per million positions.

    The item table is sized to ``--catalogue`` items (default: the store's) so two stores train the same model."""
    from itertools import islice

    import numpy as np
    import psutil
    import torch

    from chronorec.data.eventlog import EventLog
    from chronorec.data.idmap import IdMap
    from chronorec.models import registry

    t_open = time.perf_counter()
    log = EventLog.load(a.store)
    model = registry.get("sasrec")(loss="sampled", n_negatives=a.negatives, dim=a.dim, max_len=a.max_len,
                                   batch_size=a.batch_size, progress=False, threads=a.threads, seed=0)  # fmt: skip
    n_items = a.catalogue or log.n_items
    model.users, model.store = log.users, log.sequences()
    model.items = IdMap(np.arange(1, n_items + 1))  # the same table for every store
    rss_open = psutil.Process().memory_info().rss / 2**20
    batcher, make_batch, loss_fn = model.training_parts()
    module = model.module
    opt = torch.optim.AdamW(module.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    t_setup = time.perf_counter() - t_open
    positions, losses, t0, c0 = 0, [], time.perf_counter(), time.process_time()
    module.train()
    for spans in islice(batcher.epoch(rng), a.steps):
        batch = make_batch(spans, rng)
        positions += int((batch["targets"] > 0).sum())
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(module, batch)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    mem = psutil.Process().memory_full_info()
    params = sum(p.numel() for p in module.parameters())
    save("train", a.label or Path(a.store).name, {
        "store": str(a.store), "events": len(log), "users": log.n_users, "store_items": log.n_items,
        "model_items": n_items, "params": params, "dim": a.dim, "max_len": a.max_len, "batch_size": a.batch_size,
        "negatives": a.negatives, "steps": a.steps, "positions": positions, "seconds": secs,
        "seconds_per_million_positions": secs / positions * 1e6, "setup_seconds": t_setup, "cpu_seconds": cpu,
        "cpu_seconds_per_million_positions": cpu / positions * 1e6,
        "loss_first": losses[0], "loss_last": losses[-1], "peak_rss_mb": peak_rss_mb(), "rss_after_open_mb": rss_open,
        "rss_end_mb": mem.rss / 2**20, "uss_end_mb": mem.uss / 2**20, "threads": torch.get_num_threads(),
        "protocol": "fixed steps of SASRec, sampled softmax, uniform negatives, AdamW; no validation",
    })  # fmt: skip


class TreeRss:
    """Peak resident memory of this process and all its children (the JVM and Spark's Python workers), sampled."""

    def __init__(self, every_s: float = 0.5):
        import threading

        self.peak_mb, self.every_s, self._stop = 0.0, every_s, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak_mb = max(self.peak_mb, total / 2**20)
            self._stop.wait(self.every_s)

    def __enter__(self) -> "TreeRss":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def compare_topk(a_path: Path, b_path: Path) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    key = ["user_id", "rank"]
    a = pd.read_parquet(a_path).sort_values(key).reset_index(drop=True)
    b = pd.read_parquet(b_path).sort_values(key).reset_index(drop=True)
    same_rows = len(a) == len(b) and bool((a["user_id"].to_numpy() == b["user_id"].to_numpy()).all())
    same_items = same_rows and bool((a["item_id"].to_numpy() == b["item_id"].to_numpy()).all())
    diff = float(np.abs(a["score"].to_numpy() - b["score"].to_numpy()).max()) if same_rows else None
    return {"rows": [len(a), len(b)], "same_users_and_ranks": same_rows, "identical_items": same_items,
            "max_abs_score_diff": diff}  # fmt: skip


def cmd_topk(a: argparse.Namespace) -> None:
    """Top-10 of every user of a saved model: the single-process path or Spark (local mode), to Parquet."""
    import shutil

    from chronorec.workflows import spark_jobs

    out = Path(a.out)
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    with TreeRss() as rss:
        users = spark_jobs.model_users(a.model)[: a.users] if a.users else None
        if a.engine == "local":
            recs = spark_jobs.topk_local(a.model, users, k=a.k, batch=a.batch)
            out.mkdir(parents=True)
            recs.to_parquet(out / "part-0.parquet", index=False)
            n_users = recs["user_id"].nunique()
        else:
            spark = spark_jobs.spark_session(f"local[{a.cores}]", "chronorec-topk", **{"spark.driver.memory": "2g"})
            t_start = time.perf_counter() - t0
            recs = spark_jobs.topk_spark(spark, a.model, users, k=a.k, batch=a.batch, partitions=a.partitions)
            recs.write.parquet(str(out))
            n_users = spark.read.parquet(str(out)).select("user_id").distinct().count()
            spark.stop()
    secs = time.perf_counter() - t0
    record = {"engine": a.engine, "model": str(a.model), "k": a.k, "users": n_users, "seconds": secs,
              "users_per_s": n_users / secs, "peak_rss_mb_tree": rss.peak_mb, "peak_rss_mb_driver": peak_rss_mb(),
              "batch": a.batch, "out": str(out)}  # fmt: skip
    if a.engine == "spark":
        record |= {"cores": a.cores, "partitions": a.partitions, "session_start_seconds": t_start}
    if a.compare:
        record["compare_with"] = str(a.compare)
        record |= compare_topk(Path(a.compare), out)
    save("topk", f"{a.engine}-{a.label}", record)


def load_results(step: str) -> list[dict[str, Any]]:
    rows = [json.loads(p.read_text()) | {"_file": p.name} for p in sorted(RESULTS.glob(f"scale-{step}-*.json"))]
    rows = [r for r in rows if r.get("step") == step]
    return sorted(rows, key=lambda r: r.get("events") or r.get("rows_read") or 0)


def cmd_report(a: argparse.Namespace) -> None:
    """Growth table (Markdown, stdout) and plot (time and peak RSS against events) from the saved JSON."""
    from chronorec.plots import pyplot, save_figure

    ingest = load_results("ingest")
    series = {
        "synth": load_results("synth"),
        "ingest (DuckDB)": [r for r in ingest if "plain-writes" not in r["_file"]],
        "ingest (DuckDB), CSR by plain writes, quieter machine": [r for r in ingest if "plain-writes" in r["_file"]],
    }
    lines = ["| step | events | seconds | events/s | peak RSS (MB) |", "|---|---:|---:|---:|---:|"]
    for name, rows in series.items():
        for r in rows:
            n = r.get("events") or r.get("rows_read")
            lines.append(f"| {name} | {n:,} | {r['seconds']:.0f} | {n / r['seconds']:,.0f} | {r['peak_rss_mb']:,.0f} |")
            if name.startswith("ingest"):
                sq = r["phases"]["sort_sequences_parts"]
                lines.append(f"| sequences (sort + CSR + parts, inside ingest) | {n:,} | {sq:.0f} | {n / sq:,.0f} | |")
    for r in load_results("ingest-polars"):
        n = r["rows_read"]
        lines.append(
            f"| ingest (polars streaming) | {n:,} | {r['seconds']:.0f} | {n / r['seconds']:,.0f} | {r['peak_rss_mb']:,.0f} |"
        )
    print("\n".join(lines))
    plt = pyplot()
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.5))
    for name, rows in series.items():
        if rows:
            n = [(r.get("events") or r.get("rows_read")) / 1e6 for r in rows]
            ax_t.plot(n, [r["seconds"] for r in rows], "o-", label=name)
            ax_m.plot(n, [r["peak_rss_mb"] for r in rows], "o-", label=name)
    ax_t.set(xlabel="events (millions)", ylabel="seconds", title="time (2 shared cores)")
    ax_m.set(xlabel="events (millions)", ylabel="peak RSS (MB)", title="peak memory")
    ax_m.axhline(4096, color="grey", ls="--", lw=0.8)  # the 4 GB bar
    for ax in (ax_t, ax_m):
        ax.legend(fontsize=7, loc="upper left")
        ax.grid(alpha=0.3)
    print(save_figure(fig, a.plot))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="step", required=True)
    s = sub.add_parser("synth", help="generate a Taobao-shaped log; time and peak RSS")
    s.add_argument("--events", default="10M")
    s.add_argument("--users", default="1M")
    s.add_argument("--items", default="4M")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--chunk-events", default="2M")
    s.add_argument("--out", type=Path, required=True)
    s.set_defaults(fn=cmd_synth)
    for name, fn in (("ingest", cmd_ingest), ("ingest-polars", cmd_ingest_polars)):
        s = sub.add_parser(name, help="build an event store (DuckDB) / the same work with polars; time and peak RSS")
        s.add_argument("source", type=Path)
        s.add_argument("--out", type=Path, required=True)
        s.add_argument("--memory-limit", default="2GB")
        s.add_argument("--threads", type=int, default=None)
        s.add_argument("--label", default=None)
        s.set_defaults(fn=fn)
    s = sub.add_parser("train", help="SASRec (sampled softmax) from a store for a fixed number of steps")
    s.add_argument("store", type=Path)
    s.add_argument("--steps", type=int, default=100)
    s.add_argument("--dim", type=int, default=32)
    s.add_argument("--max-len", type=int, default=50)
    s.add_argument("--batch-size", type=int, default=256)
    s.add_argument("--negatives", type=int, default=256)
    s.add_argument("--catalogue", type=int, default=0, help="item-table size (0: the store's items)")
    s.add_argument("--threads", type=int, default=None)
    s.add_argument("--label", default=None)
    s.set_defaults(fn=cmd_train)
    s = sub.add_parser("topk", help="top-K of every user of a saved model: single process or Spark")
    s.add_argument("--model", type=Path, required=True)
    s.add_argument("--engine", choices=("local", "spark"), default="local")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--k", type=int, default=10)
    s.add_argument("--batch", type=int, default=4096)
    s.add_argument("--cores", type=int, default=2)
    s.add_argument("--partitions", type=int, default=8)
    s.add_argument("--compare", type=Path, default=None, help="another run's output folder to compare with")
    s.add_argument("--users", type=int, default=0, help="the model's first N users (0: all)")
    s.add_argument("--label", default="run")
    s.set_defaults(fn=cmd_topk)
    s = sub.add_parser("report", help="growth table and plot from the saved results")
    s.add_argument("--plot", type=Path, default=Path("docs/benchmarks/scale-growth.png"))
    s.set_defaults(fn=cmd_report)
    a = p.parse_args(argv)
    a.fn(a)


if __name__ == "__main__":
    sys.exit(main())
