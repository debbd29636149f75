"""The comparison of chronorec's SASRec preset with RePlay's SasRec (``benchmarks/peers.py``): the
training curves, the time each side needs to reach a common validation quality, the ratios and the
Markdown table of a saved result."""

from __future__ import annotations

from typing import Any

PROTOCOL = (
    "leave-one-out, full-catalogue ranking (ties against the target), best epoch by validation NDCG@10 "
    "(history filtered), test read once with the history not filtered and filtered"
)

BARS = {"epoch_speedup": 4.0, "ndcg_ratio": 1.6}  # chronorec vs RePlay, the targets of the speed work


def curve(history: list[dict[str, Any]], key: str = "val_ndcg10") -> list[tuple[float, float]]:
    """``(training seconds so far, validation value)`` after each validated epoch."""
    out, spent = [], 0.0
    for entry in history:
        spent += float(entry["seconds"])
        if entry.get(key) is not None:
            out.append((spent, float(entry[key])))
    return out


def time_to_quality(points: list[tuple[float, float]], target: float) -> float | None:
    """Training seconds at the end of the first epoch whose validation value reaches ``target``."""
    for seconds, value in points:
        if value >= target:
            return seconds
    return None


def common_quality(curves: list[list[tuple[float, float]]]) -> float | None:
    """The highest validation value every curve reaches: the lowest of their bests."""
    bests = [max(v for _, v in c) for c in curves if c]
    return min(bests) if len(bests) == len(curves) and bests else None


def median(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    if not n:
        return float("nan")
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def side_summary(res: dict[str, Any]) -> dict[str, Any]:
    """The table's figures of one side from its result (``history``, ``test``, ``test_filtered``)."""
    secs = [float(e["seconds"]) for e in res["history"]]
    return {
        "model": res["model"],
        "epochs": len(secs),
        "epoch_seconds_median": median(secs),
        "epoch_seconds_mean": sum(secs) / len(secs) if secs else float("nan"),
        "train_seconds": sum(secs),
        "best_epoch": res["best_epoch"],
        "test": {k: res["test"][k] for k in ("NDCG@10", "HR@10")},
        "test_filtered": {k: res["test_filtered"][k] for k in ("NDCG@10", "HR@10")},
        "best_val_ndcg10": max((v for _, v in curve(res["history"])), default=None),
        "epoch_cpu_seconds_est": cpu_estimate(res),
    }


def cpu_estimate(res: dict[str, Any]) -> float | None:
    """CPU seconds of a median epoch, estimated as its wall seconds x the side's CPU share x its
    threads (what the epoch would take on idle cores, if the share held through the run)."""
    secs = [float(e["seconds"]) for e in res["history"]]
    if not secs or res.get("cpu_share") is None:
        return None
    return median(secs) * res["cpu_share"] * res.get("threads", 1)


def compare(chrono: dict[str, Any], peer: dict[str, Any]) -> dict[str, Any]:
    """Ratios of chronorec to the peer, the common validation quality and the time each needs to reach it."""
    a, b = side_summary(chrono), side_summary(peer)
    curves = [curve(chrono["history"]), curve(peer["history"])]
    target = common_quality(curves)
    times = [time_to_quality(c, target) if target is not None else None for c in curves]
    speedup = b["epoch_seconds_median"] / a["epoch_seconds_median"]
    cpu_a, cpu_b = a["epoch_cpu_seconds_est"], b["epoch_cpu_seconds_est"]
    ndcg_ratio = a["test"]["NDCG@10"] / b["test"]["NDCG@10"] if b["test"]["NDCG@10"] else float("inf")
    return {
        "chronorec": a,
        "peer": b,
        "epoch_speedup": speedup,
        "epoch_cpu_speedup_est": cpu_b / cpu_a if cpu_a and cpu_b else None,
        "ndcg_ratio_unfiltered": ndcg_ratio,
        "common_val_ndcg10": target,
        "seconds_to_common": {"chronorec": times[0], "peer": times[1]},
        "time_to_common_speedup": times[1] / times[0] if None not in times and times[0] else None,
        "bars": {
            f"epoch_speedup >= {BARS['epoch_speedup']:.1f}": speedup >= BARS["epoch_speedup"],
            f"test NDCG@10 (not filtered) ratio >= {BARS['ndcg_ratio']:.1f}": ndcg_ratio >= BARS["ndcg_ratio"],
        },
    }


def _fmt(x: float | None, spec: str = ".1f", unit: str = "") -> str:
    return "-" if x is None else f"{x:{spec}}{unit}"


def _pair(fig: dict[str, float]) -> str:
    return f"{fig['NDCG@10']:.4f} / {fig['HR@10']:.4f}"


def _load(side: dict[str, Any]) -> str:
    a, b = side.get("loadavg_start"), side.get("loadavg_end")
    return "-" if not a or not b else f"{a[0]:.1f} / {b[0]:.1f}"


def table(result: dict[str, Any]) -> str:
    """The side-by-side Markdown table of a saved result, with the command that made it."""
    sides = result["sides"]
    ca, cb = sides["chronorec"], sides["replay"]
    for side in (ca, cb):
        side.setdefault("threads", result["threads"])
    c = compare(ca, cb)  # from the saved sides, so a result saved by an older version reads too
    a, b = c["chronorec"], c["peer"]
    budget = result["budget_s"]
    t_a, t_b = c["seconds_to_common"]["chronorec"], c["seconds_to_common"]["peer"]
    q = c["common_val_ndcg10"]
    rows = [
        ("training seconds per epoch (median)", _fmt(a["epoch_seconds_median"]), _fmt(b["epoch_seconds_median"]),
         f"{c['epoch_speedup']:.2f}x shorter"),
        (f"epochs in {budget:.0f} s of training", str(a["epochs"]), str(b["epochs"]), ""),
        ("epoch chosen on validation", str(a["best_epoch"]), str(b["best_epoch"]), ""),
        (f"test NDCG@10 / HR@10 after {budget:.0f} s, history not filtered", _pair(a["test"]), _pair(b["test"]),
         f"{c['ndcg_ratio_unfiltered']:.2f}x"),
        (f"test NDCG@10 / HR@10 after {budget:.0f} s, history filtered", _pair(a["test_filtered"]),
         _pair(b["test_filtered"]), ""),
        (f"training seconds to validation NDCG@10 {_fmt(q, '.4f')} (filtered; the lower best)",
         _fmt(t_a), _fmt(t_b), "" if c["time_to_common_speedup"] is None else f"{c['time_to_common_speedup']:.2f}x"),
        ("CPU seconds per epoch, estimated (epoch s x CPU share x threads)", _fmt(a["epoch_cpu_seconds_est"]),
         _fmt(b["epoch_cpu_seconds_est"]),
         "" if c["epoch_cpu_speedup_est"] is None else f"{c['epoch_cpu_speedup_est']:.2f}x fewer"),
        ("load average (1 min) at start / end", _load(ca), _load(cb), ""),
        ("CPU share of its threads (CPU s / (wall s x threads))", _fmt(ca.get("cpu_share"), ".2f"),
         _fmt(cb.get("cpu_share"), ".2f"), ""),
    ]  # fmt: skip
    lines = [
        f"| | {a['model']} | {b['model']} | chronorec vs RePlay |",
        "|---|---|---|---|",
        *(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} |" for r in rows),
    ]
    bars = ", ".join(f"{name}: {'met' if ok else 'not met'}" for name, ok in c["bars"].items())
    return "\n".join(
        [
            f"Data: {result['data']['file']} ({result['data']['n_users']} users, {result['data']['n_items']} items). "
            f"Protocol: {result['protocol']}. Machine: {result['machine']['cpu_count']} cores, "
            f"{result['threads']} torch threads per side, sides run {' then '.join(result['order'])}.",
            "",
            *lines,
            "",
            f"Bars: {bars}.",
            "",
            f"Command: `{result['command']}` (started {result['started_at']}).",
        ]
    )
