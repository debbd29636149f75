"""The peer side of ``benchmarks/peers_nbr.py``: Li et al.'s own next-basket scripts on Ta Feng.

Runs in the peer's virtual environment (numpy, pandas, scikit-learn, tqdm), imports nothing of
chronorec but ``chronorec.testing.nbr_side`` (standard library only; ``benchmarks/peers_nbr.py`` puts
``src`` on its path), and copies none of the peer's code: their scripts run unmodified from ``--peer-repo``
(``A-Next-Basket-Recommendation-Reality-Check``), each in a working folder (``--work``) laid out as
their relative paths expect::

    WORK/dataset/tafeng_{history,future}.csv   their csv files (history rebuilt if the checkout lacks it)
    WORK/jsondata/tafeng_{history,future}.json their json files
    WORK/keyset/tafeng_keyset_F.json           their keyset_fold.py, run under random.seed(--seed)
    WORK/methods/g-p-gp-topfreq/               cwd of g_topfreq.py, p_topfreq.py, gp_topfreq.py
    WORK/methods/tifuknn/                      cwd of tifuknn_new.py
    WORK/evaluation/                           cwd of their model_performance / performance_gain functions

Their ``keyset_fold.py`` shuffles the users with ``random.shuffle`` and no seed; this runner seeds
``random`` with ``--seed`` before running it, so the split is reproducible (or ``--keyset`` names a
keyset file to use as it is). Their ``model_performance.py`` main loops over all three data sets and
its ``--fold_list`` is parsed as a list of characters, so the runner calls its ``get_repeat_eval``
(and ``performance_gain.get_exp_recall``) for Ta Feng, one fold, K = 10 and 20, and reads the figures
from what they print.

The csv ``dataset/tafeng_history.csv`` (read by the TopFreq scripts, keyset_fold.py and the
evaluation) is stored in the repository as a large file that a snapshot may lack; it is then rebuilt
from ``jsondata/tafeng_history.json`` (columns ``user_id,order_number,product_id``, baskets numbered
from 1, items in the json's order, the layout of their ``tafeng_future.csv``), and the runner checks
that the item counts of the rebuilt file equal their ``tafeng_pop.csv`` (the G-TopFreq ranking).

    PYTHONPATH=src /work/peers/nbr-venv/bin/python benchmarks/peers_nbr_runner.py \\
        --peer-repo /work/peers/nbr-reality-check --data /work/shared/data/tafeng-nbr/tafeng_merged.json \\
        --work /tmp/nbrpeer --seed 0 --fold-id 0 --out /tmp/nbrpeer/result.json
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import csv
import hashlib
import importlib
import io
import json
import os
import platform
import random
import runpy
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from chronorec.testing.nbr_side import history_rows, parse_repeat_eval

DATASET = "tafeng"
KS = (10, 20)
TOPFREQ = {  # method -> (their script, the folder it writes its predictions to)
    "G-TopFreq": ("g_topfreq.py", "g_top_pred"),
    "P-TopFreq": ("p_topfreq.py", "p_top_pred"),
    "GP-TopFreq": ("gp_topfreq.py", "gp_top_pred"),
}
# Their README's Ta Feng command: tifuknn_new.py HISTORY FUTURE KEYSET 300 0.9 0.7 0.7 7 20
TIFU_PARAMS = {
    "num_nearest_neighbors": 300,
    "within_decay_rate": 0.9,
    "group_decay_rate": 0.7,
    "alpha": 0.7,
    "group_size": 7,
    "topk": 20,
}
METHODS = (*TOPFREQ, "TIFU-KNN")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_data(peer: Path, data: Path) -> dict[str, Any]:
    """Their history / future json against the merged file we read (history = every basket but the
    last, future = the last), and the counts that describe it."""
    merged = json.loads(data.read_text())
    history = json.loads((peer / "jsondata" / f"{DATASET}_history.json").read_text())
    future = json.loads((peer / "jsondata" / f"{DATASET}_future.json").read_text())
    if list(merged) != list(history) or list(merged) != list(future):
        raise SystemExit(f"{data}: its users differ from {peer}/jsondata/{DATASET}_*.json")
    for user, baskets in merged.items():
        if history[user][1:-1] + [future[user][1]] != baskets:
            raise SystemExit(f"{data}: user {user}'s baskets differ from history + future of {peer}/jsondata")
    peer_merged = peer / "mergeddataset" / f"{DATASET}_merged.json"
    return {
        "file": str(data),
        "sha256": sha256(data),
        "identical_to_peer_merged": peer_merged.exists() and sha256(peer_merged) == sha256(data),
        "n_users": len(merged),
        "n_items": len({i for b in merged.values() for basket in b for i in basket}),
        "n_baskets": sum(len(b) for b in merged.values()),
        "history_equals_all_but_last_basket": True,
    }


def prepare(peer: Path, work: Path) -> dict[str, Any]:
    """The working folder their relative paths expect; returns how the history csv was obtained."""
    for sub in ("dataset", "jsondata", "keyset", "evaluation", "methods/g-p-gp-topfreq", "methods/tifuknn"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    for name in (f"{DATASET}_history.json", f"{DATASET}_future.json"):
        shutil.copyfile(peer / "jsondata" / name, work / "jsondata" / name)
    shutil.copyfile(peer / "dataset" / f"{DATASET}_future.csv", work / "dataset" / f"{DATASET}_future.csv")
    pop = peer / "methods" / "g-p-gp-topfreq" / f"{DATASET}_pop.csv"
    shutil.copyfile(pop, work / "methods" / "g-p-gp-topfreq" / pop.name)
    hist_csv = work / "dataset" / f"{DATASET}_history.csv"
    theirs = peer / "dataset" / f"{DATASET}_history.csv"
    if theirs.exists():
        shutil.copyfile(theirs, hist_csv)
        origin = f"{theirs} (theirs, as stored)"
    else:
        rows = history_rows(json.loads((work / "jsondata" / f"{DATASET}_history.json").read_text()))
        with hist_csv.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["user_id", "order_number", "product_id"])
            w.writerows(rows)
        origin = f"rebuilt from {peer}/jsondata/{DATASET}_history.json ({theirs} absent from the checkout)"
    counts: collections.Counter[int] = collections.Counter()
    with hist_csv.open() as fh:
        for row in csv.DictReader(fh):
            counts[int(row["product_id"])] += 1
    with pop.open() as fh:
        pop_counts = {int(r["product_id"]): int(r["count"]) for r in csv.DictReader(fh)}
    if dict(counts) != pop_counts:
        raise SystemExit(f"{hist_csv}: its item counts differ from {pop} (the G-TopFreq ranking)")
    return {
        "history_csv": origin,
        "history_csv_rows": sum(counts.values()),
        "history_csv_sha256": sha256(hist_csv),
        "history_counts_equal_pop_csv": True,
    }


def make_keyset(peer: Path, work: Path, seed: int, fold: int, keyset: str | None) -> dict[str, Any]:
    """Their keyset_fold.py under ``random.seed(seed)`` (their script sets no seed), or ``keyset``."""
    dst = work / "keyset" / f"{DATASET}_keyset_{fold}.json"
    if keyset:
        shutil.copyfile(keyset, dst)
        how = f"given: {keyset}"
    else:
        argv, cwd = sys.argv, os.getcwd()
        try:
            sys.argv = ["keyset_fold.py", "--dataset", DATASET, "--fold_id", str(fold)]
            os.chdir(work)
            random.seed(seed)
            with contextlib.redirect_stdout(io.StringIO()):  # it prints the whole keyset
                runpy.run_path(str(peer / "keyset_fold.py"), run_name="__main__")
        finally:
            sys.argv = argv
            os.chdir(cwd)
        how = f"{peer}/keyset_fold.py --dataset {DATASET} --fold_id {fold}, run after random.seed({seed})"
    ks = json.loads(dst.read_text())
    return {
        "how": how,
        "seed": None if keyset else seed,
        "fold_id": fold,
        "keyset_sha256": sha256(dst),
        "item_num": ks["item_num"],
        "n_train": len(ks["train"]),
        "n_val": len(ks["val"]),
        "n_test": len(ks["test"]),
        "users": {"train": ks["train"], "val": ks["val"], "test": ks["test"]},
    }


def run_timed(cmd: list[str], cwd: Path, log: Path) -> dict[str, Any]:
    """Run one of their scripts; wall and CPU seconds and its peak memory."""
    t0 = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code
    if code:
        raise SystemExit(f"{' '.join(cmd)} (in {cwd}) exited {code}; the end of {log}:\n{log.read_text()[-3000:]}")
    return {
        "command": " ".join(cmd),
        "cwd": str(cwd),
        "wall_seconds": wall,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
    }


def run_method(method: str, peer: Path, work: Path, fold: int) -> tuple[dict[str, Any], Path]:
    """Their script for ``method``; its facts and the folder of its prediction file."""
    keyset = f"../../keyset/{DATASET}_keyset_{fold}.json"
    if method in TOPFREQ:
        script, pred_dir = TOPFREQ[method]
        cwd = work / "methods" / "g-p-gp-topfreq"
        cmd = [sys.executable, str(peer / "methods" / "g-p-gp-topfreq" / script)]
        cmd += ["--dataset", DATASET, "--fold_id", str(fold)]
        facts = run_timed(cmd, cwd, work / f"{method}.log")
        return facts, cwd / pred_dir
    cwd = work / "methods" / "tifuknn"
    cmd = [sys.executable, str(peer / "methods" / "tifuknn" / "tifuknn_new.py")]
    cmd += [f"../../jsondata/{DATASET}_history.json", f"../../jsondata/{DATASET}_future.json", keyset]
    cmd += [str(v) for v in TIFU_PARAMS.values()]
    facts = run_timed(cmd, cwd, work / f"{method}.log")
    pred_dir = cwd / "pred"  # it writes {dataset}_pred{fold}.json to its working folder
    pred_dir.mkdir(exist_ok=True)
    os.replace(cwd / f"{DATASET}_pred{fold}.json", pred_dir / f"{DATASET}_pred{fold}.json")
    return {**facts, "params": TIFU_PARAMS}, pred_dir


def evaluate(peer: Path, work: Path, pred_dir: Path, fold: int) -> dict[str, dict[str, float]]:
    """Their evaluation functions on the test users of the keyset, K = 10 and 20."""
    cwd = os.getcwd()
    sys.path.insert(0, str(peer / "evaluation"))
    try:
        os.chdir(work / "evaluation")
        model_performance = importlib.import_module("model_performance")
        performance_gain = importlib.import_module("performance_gain")
        figures = {}
        for k in KS:
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                model_performance.get_repeat_eval(str(pred_dir), DATASET, k, [str(fold)], io.StringIO())
                gain = performance_gain.get_exp_recall(f"{pred_dir}/", DATASET, k, str(fold))
            figures[str(k)] = {
                **parse_repeat_eval(printed.getvalue()),
                "recall_from_repeat_predictions": float(gain[0]),
                "recall_from_explore_predictions": float(gain[1]),
            }
        return figures
    finally:
        os.chdir(cwd)
        sys.path.remove(str(peer / "evaluation"))


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("numpy", "pandas", "scikit-learn", "scipy", "tqdm"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--peer-repo", required=True, help="checkout of A-Next-Basket-Recommendation-Reality-Check")
    p.add_argument("--data", required=True, help="tafeng_merged.json (checked against their json files)")
    p.add_argument("--work", required=True, help="working folder (created; outside chronorec's repository)")
    p.add_argument("--seed", type=int, default=0, help="random.seed before their keyset_fold.py (default 0)")
    p.add_argument("--fold-id", type=int, default=0)
    p.add_argument("--keyset", help="use this keyset file instead of making one")
    p.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, of {', '.join(METHODS)}")
    p.add_argument("--out", required=True, help="result JSON")
    args = p.parse_args(argv)
    peer, work = Path(args.peer_repo).resolve(), Path(args.work).resolve()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise SystemExit(f"--methods: unknown {unknown}; known: {', '.join(METHODS)}")
    if "_" in str(work):  # tifuknn_new.py names its output after keyset_file.split('_')[0]
        raise SystemExit(f"--work {work}: no '_' in the path, please (their TIFU-KNN script splits paths on it)")
    t0 = time.perf_counter()
    data = check_data(peer, Path(args.data))
    prep = prepare(peer, work)
    split = make_keyset(peer, work, args.seed, args.fold_id, args.keyset)
    print(f"[runner] split: {split['n_train']} train / {split['n_val']} val / {split['n_test']} test users", flush=True)
    results = {}
    for method in methods:
        print(f"[runner] {method} ...", flush=True)
        facts, pred_dir = run_method(method, peer, work, args.fold_id)
        t_eval = time.perf_counter()
        figures = evaluate(peer, work, pred_dir, args.fold_id)
        results[method] = {
            **facts,
            "eval_seconds": time.perf_counter() - t_eval,
            "pred_file": str(pred_dir / f"{DATASET}_pred{args.fold_id}.json"),
            "test": figures,
        }
        f10 = figures["10"]
        print(f"[runner] {method}: {facts['wall_seconds']:.1f} s; Recall@10 {f10['recall']:.4f} "
              f"NDCG@10 {f10['ndcg']:.4f} PHR@10 {f10['phr']:.4f}", flush=True)  # fmt: skip
    out = {
        "data": data,
        "preparation": prep,
        "split": split,
        "methods": results,
        "versions": versions(),
        "work": str(work),
        "total_seconds": time.perf_counter() - t0,
    }
    Path(args.out).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
