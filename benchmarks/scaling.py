"""How SASRec-style models scale with size, and what mixed precision and torch.compile buy.

Two parts, each on the device it runs on (``--device auto`` picks a GPU when present):

* ``--sizes 2x64,3x64,4x128``: one model per *layers x width* (heads = width / 32), trained on
  the leave-one-out split with early stopping on validation NDCG@10 (within ``--budget-s``
  seconds of training each), then evaluated on test over the full catalogue, history filtered.
  Reports NDCG@10, HR@10, parameters, epochs and the median epoch time.
* ``--speed``: the median epoch time of one configuration trained for ``--speed-epochs`` epochs
  in float32, with bfloat16 autocast, with bfloat16 autocast and length-bucketed token batches,
  and (on a GPU) with bfloat16 autocast + ``torch.compile`` (the first
  epoch, which holds the compilation, is left out of the median and reported on its own).

Writes JSON (figures, command, data file, machine and device) and a Markdown table::

    python benchmarks/scaling.py --data-dir ../shared/data --sizes 2x64,3x64 --budget-s 600 \\
        --out benchmarks/results/scaling-cpu.json
    python benchmarks/scaling.py --data-dir ../shared/data --speed --sizes '' --out scaling-gpu.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from chronorec.datasets.formats import DATASETS, load_sequence_file
from chronorec.datasets.formats import data_dir as resolve_data_dir
from chronorec.evaluation.ranking import evaluate_ranking
from chronorec.evaluation.split import leave_one_out
from chronorec.models.sequential.sasrec import SASRec
from chronorec.training.trainer import resolve_device
from chronorec.workflows.benchmark import presets
from chronorec.workflows.experiment import peak_rss_mb, provenance

PROTOCOL = "leave-one-out, full-catalogue ranking, history items filtered, best epoch by validation NDCG@10"


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """'2x64,4x128' -> [(2, 64), (4, 128)] (layers x width)."""
    sizes = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        layers, width = part.lower().split("x")
        sizes.append((int(layers), int(width)))
    return sizes


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"


def median_epoch_seconds(history: list[dict[str, Any]], skip_first: bool) -> float | None:
    secs = [h["seconds"] for h in history[1:] if "seconds" in h] if skip_first else [h["seconds"] for h in history]
    return statistics.median(secs) if secs else None


def size_params(layers: int, width: int, args: argparse.Namespace) -> dict[str, Any]:
    return {
        "max_len": args.max_len,
        "dim": width,
        "layers": layers,
        "heads": max(1, width // 32),
        "dropout": args.dropout,
        "lr": args.lr if width <= 64 else args.lr / 2,
        "batch_size": 128,
        "batching": args.batching,
        "patience": args.patience,
        "epochs": args.max_epochs,
        "amp": args.amp,
        "device": args.device,
        "progress": not args.no_progress,
        "seed": args.seed,
    }


def run_size(split, layers: int, width: int, args: argparse.Namespace) -> dict[str, Any]:
    params = {**size_params(layers, width, args), "time_budget_s": args.budget_s}
    model = SASRec(**params)
    t0 = time.perf_counter()
    model.fit(split.train, validation=split.validation)
    fit_seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    test = evaluate_ranking(model.score, split.test, n_items=split.train.n_items, ks=(10,))
    eval_seconds = time.perf_counter() - t1
    info = model.fit_info
    return {
        "layers": layers,
        "width": width,
        "heads": params["heads"],
        "parameters": sum(p.numel() for p in model.module.parameters()),
        "test_NDCG@10": test["NDCG@10"],
        "test_HR@10": test["HR@10"],
        "val_NDCG@10": info["best_val_ndcg10"],
        "best_epoch": info["best_epoch"],
        "epochs_run": info["epochs_run"],
        "stopped": info["stopped"],
        "train_seconds": info["train_seconds"],
        "fit_seconds": fit_seconds,
        "median_epoch_seconds": median_epoch_seconds(info["history"], skip_first=False),
        "eval_seconds": eval_seconds,
        "config": params,
    }


def run_speed(split, args: argparse.Namespace) -> list[dict[str, Any]]:
    layers, width = parse_sizes(args.speed_size)[0]
    variants = [
        ("float32", {"amp": False}),
        ("bfloat16 autocast", {"amp": True}),
        # similar-length sequences batched together: no padding tokens to run through the layers
        ("bfloat16 autocast + token batches", {"amp": True, "batching": "tokens"}),
    ]
    if resolve_device(args.device).type == "cuda":
        variants.append(("bfloat16 autocast + torch.compile", {"amp": True, "compile": True}))
        variants.append(
            (
                "bfloat16 autocast + torch.compile (reduce-overhead)",
                {"amp": True, "compile": True, "compile_mode": "reduce-overhead"},
            )
        )
    rows = []
    for name, extra in variants:
        params = {**size_params(layers, width, args), **extra, "epochs": args.speed_epochs, "patience": 10**6}
        model = SASRec(**params)
        model.fit(split.train)  # no validation: epoch time of training alone
        hist = model.fit_info["history"]
        rows.append(
            {
                "variant": name,
                "layers": layers,
                "width": width,
                "epochs": len(hist),
                "first_epoch_seconds": hist[0]["seconds"],
                "median_epoch_seconds": median_epoch_seconds(hist, skip_first=True),
                "final_loss": hist[-1]["loss"],
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def markdown(result: dict[str, Any]) -> str:
    lines = [f"Device: {result['device']}. Protocol: {PROTOCOL}.", ""]
    if result["sizes"]:
        lines += [
            "| layers x width | heads | parameters | val NDCG@10 | test NDCG@10 | test HR@10 | epochs | s/epoch |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in result["sizes"]:
            lines.append(
                f"| {r['layers']} x {r['width']} | {r['heads']} | {r['parameters']:,} | {r['val_NDCG@10']:.4f} "
                f"| {r['test_NDCG@10']:.4f} | {r['test_HR@10']:.4f} | {r['best_epoch']}/{r['epochs_run']} "
                f"| {r['median_epoch_seconds']:.2f} |"
            )
        lines.append("")
    if result["speed"]:
        lines += ["| variant | first epoch s | median epoch s | final loss |", "|---|---|---|---|"]
        for r in result["speed"]:
            lines.append(
                f"| {r['variant']} ({r['layers']} x {r['width']}) | {r['first_epoch_seconds']:.2f} "
                f"| {r['median_epoch_seconds']:.2f} | {r['final_loss']:.4f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=None, help="benchmark data folder (else $CHRONOREC_DATA)")
    ap.add_argument("--dataset", default="ml-1m", choices=sorted(presets()))
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    ap.add_argument("--sizes", default="2x64,3x64,4x128", help="comma-separated layers x width ('' for none)")
    ap.add_argument("--budget-s", type=float, default=600.0, help="training seconds per size")
    ap.add_argument("--max-epochs", type=int, default=200)
    ap.add_argument("--patience", type=int, default=10)
    ap.add_argument("--max-len", type=int, default=200)
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--lr", type=float, default=2e-3, help="for width <= 64; half of it above")
    ap.add_argument("--batching", default="random", choices=["random", "tokens"], help="for the sizes")
    ap.add_argument("--no-amp", dest="amp", action="store_false", help="train the sizes in float32")
    ap.add_argument("--speed", action="store_true", help="also time float32 / bf16 / bf16 + compile epochs")
    ap.add_argument("--speed-size", default="3x64")
    ap.add_argument("--speed-epochs", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/scaling.json"))
    args = ap.parse_args(argv)

    path = Path(resolve_data_dir(args.data_dir)) / DATASETS[args.dataset]
    split = leave_one_out(load_sequence_file(path))
    device = resolve_device(args.device)
    result: dict[str, Any] = {
        "dataset": args.dataset,
        "data_file": str(path),
        "protocol": PROTOCOL,
        "device": device_name(device),
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "sizes": [],
        "speed": [],
        "provenance": provenance(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        result["peak_rss_mb"] = peak_rss_mb()
        if device.type == "cuda":
            result["peak_gpu_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
        args.out.write_text(json.dumps(result, indent=2, default=float))
        args.out.with_suffix(".md").write_text(markdown(result))

    if args.speed:
        result["speed"] = run_speed(split, args)
        save()
    for layers, width in parse_sizes(args.sizes):
        row = run_size(split, layers, width, args)
        print(json.dumps({k: v for k, v in row.items() if k != "config"}), flush=True)
        result["sizes"].append(row)
        save()
    save()
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
