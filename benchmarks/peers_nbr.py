"""The published next-basket baselines, run from their own repository in their own virtual
environment, on Ta Feng: the figures our next-basket protocol is set beside.

    python benchmarks/peers_nbr.py [--peer-repo DIR] [--peer-python PATH] [--data-dir /work/shared/data]
        [--seed 0] [--fold-id 0] [--keyset FILE] [--methods G-TopFreq,P-TopFreq,GP-TopFreq,TIFU-KNN]
    python benchmarks/peers_nbr.py --table benchmarks/results/nbr-peers-tafeng.json   # only rebuild the table

The peer is Li et al., "A Next Basket Recommendation Reality Check" (TOIS 2023), whose repository holds
the Ta Feng file we use (``tafeng_merged.json``), its user split, G-/P-/GP-TopFreq, TIFU-KNN and the
evaluation (Recall, NDCG, PHR and the repeat / explore breakdown). It lives outside chronorec, in its own
virtual environment; none of its code is in this repository. Install it once::

    git clone https://github.com/liming-7/A-Next-Basket-Recommendation-Reality-Check /work/peers/nbr-reality-check
    python3.11 -m venv /work/peers/nbr-venv
    /work/peers/nbr-venv/bin/pip install numpy==2.4.6 pandas==3.1.2 scikit-learn==1.9.1 tqdm==4.70.1

(numpy, pandas, scikit-learn and tqdm are all that their split, TopFreq, TIFU-KNN and evaluation scripts
import; no torch. ``--peer-repo`` / ``$PEERS_NBR_REPO`` and ``--peer-python`` / ``$PEERS_NBR_PYTHON`` name
other places. A checkout that is not a git clone, e.g. a ``git archive`` of a snapshot, says its commit
with ``--peer-commit``.)

What runs, in the peer venv (``benchmarks/peers_nbr_runner.py`` drives their unmodified scripts in a
scratch folder laid out as their relative paths expect):

* split: their ``keyset_fold.py`` (users who have a future basket, shuffled, 72% train / 8% validation /
  20% test), which sets no seed: the runner calls ``random.seed(--seed)`` first, and the user lists are
  saved to ``benchmarks/results/tafeng-reality-check-split.json`` so that our side evaluates the same
  test users (``--keyset`` runs on a given keyset file instead);
* G-TopFreq, P-TopFreq, GP-TopFreq: their ``methods/g-p-gp-topfreq/*.py`` (no hyper-parameters;
  G-TopFreq ranks by their ``tafeng_pop.csv``, the item counts of every user's history baskets);
* TIFU-KNN: their ``methods/tifuknn/tifuknn_new.py`` with their README's Ta Feng settings (300
  neighbours, within-group decay 0.9, group decay 0.7, alpha 0.7, group size 7); neighbours are the
  training users, whose history baskets only are used;
* evaluation: their ``evaluation/model_performance.py`` (``get_repeat_eval``: Recall, NDCG, PHR, repeat
  / explore ratio of the list, Recall and PHR on the repeat and on the explore part of the basket) and
  ``evaluation/performance_gain.py`` (``get_exp_recall``: the Recall that the list's repeat items and
  its explore items each contribute), for the keyset's test users, K = 10 and 20.

Their metric definitions (``evaluation/metrics.py``), per test user, averaged over the test users: the
truth is the user's last basket (a set), the input the user's earlier baskets; Recall@K = hits in the
top K / |basket|; NDCG@K = DCG@K (1 / log2(rank + 1) per hit) / IDCG over all |basket| positions (not
min(K, |basket|)); PHR@K = 1 if any of the top K is in the basket. A list shorter than K (P-TopFreq for a
user with few items) is scored as it is.

Writes ``benchmarks/results/nbr-peers-tafeng.json`` (figures, wall times, command, data file and hash,
split and seed, machine, peer commit, versions), the split's user lists, and a Markdown table beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from chronorec.testing.peers_nbr import METHODS, PEER_URL, PROTOCOL, PUBLISHED, PUBLISHED_SOURCE, table

ROOT = Path(__file__).resolve().parent.parent
RUNNER = Path(__file__).resolve().parent / "peers_nbr_runner.py"
DEFAULT_PEER_REPO = "/work/peers/nbr-reality-check"
DEFAULT_PEER_PYTHON = "/work/peers/nbr-venv/bin/python"
DATA_FILE = "tafeng-nbr/tafeng_merged.json"


def peer_commit(repo: Path, given: str | None) -> str | None:
    if given:
        return given
    r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=False)
    return r.stdout.strip() or None if r.returncode == 0 else None


def machine() -> dict[str, Any]:
    return {"platform": platform.platform(), "processor": platform.processor(), "cpu_count": os.cpu_count()}


def chronorec_commit() -> str:
    r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False)
    return r.stdout.strip()


# ---------------------------------------------------------------------------- the run
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_data = os.environ.get("CHRONOREC_DATA") or str(ROOT.parent / "shared" / "data")
    p.add_argument("--data-dir", default=default_data, help=f"folder holding {DATA_FILE}")
    p.add_argument("--peer-repo", default=os.environ.get("PEERS_NBR_REPO", DEFAULT_PEER_REPO))
    p.add_argument("--peer-python", default=os.environ.get("PEERS_NBR_PYTHON", DEFAULT_PEER_PYTHON))
    p.add_argument("--peer-commit", help="the peer's commit, where --peer-repo is not a git checkout")
    p.add_argument("--seed", type=int, default=0, help="random.seed before their keyset_fold.py (default 0)")
    p.add_argument("--fold-id", type=int, default=0, help="their keyset index (default 0)")
    p.add_argument("--keyset", help="an existing keyset file of theirs to use instead of making one")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--out-dir", default=str(ROOT / "benchmarks" / "results"))
    p.add_argument("--table", metavar="JSON", help="only print the table of a saved result")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.table:
        print(table(json.loads(Path(args.table).read_text())))
        return 0
    repo, data = Path(args.peer_repo), Path(args.data_dir) / DATA_FILE
    if not Path(args.peer_python).exists():
        raise SystemExit(f"no peer interpreter at {args.peer_python}: install it as this script's docstring says")
    if not (repo / "keyset_fold.py").exists():
        raise SystemExit(f"{repo}: not a checkout of {PEER_URL} (no keyset_fold.py); see the docstring")
    if not data.exists():
        raise SystemExit(f"{data} not found (--data-dir or $CHRONOREC_DATA)")
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started, load0 = time.strftime("%Y-%m-%dT%H:%M:%S%z"), os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="nbrpeers-"))
    peer_out = work / "peer.json"
    cmd = [args.peer_python, str(RUNNER), "--peer-repo", str(repo), "--data", str(data), "--work", str(work / "run")]
    cmd += ["--seed", str(args.seed), "--fold-id", str(args.fold_id), "--methods", args.methods, "--out", str(peer_out)]
    if args.keyset:
        cmd += ["--keyset", args.keyset]
    t0 = time.perf_counter()
    # the runner's pure parts come from chronorec.testing.nbr_side (standard library only): src on its path
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run(cmd, check=False, env=env)  # its progress lines go to our terminal
    if proc.returncode:
        raise SystemExit(f"the peer runner exited {proc.returncode}; its folder: {work}")
    peer = json.loads(peer_out.read_text())
    split = peer["split"]
    split_file = out_dir / "tafeng-reality-check-split.json"
    split_file.write_text(
        json.dumps(
            {
                "what": "Li et al.'s user split of Ta Feng (their keyset file): user ids are the keys of "
                "tafeng_merged.json; each user's last basket is the target, every earlier basket the input",
                "data_file": str(data),
                "data_sha256": peer["data"]["sha256"],
                "how": split["how"],
                "seed": split["seed"],
                "fold_id": split["fold_id"],
                "keyset_sha256": split["keyset_sha256"],
                "item_num": split["item_num"],
                **split["users"],
            }
        )
        + "\n"
    )
    result = {
        "command": " ".join(["python", *sys.argv]),
        "started_at": started,
        "protocol": PROTOCOL,
        "data": peer["data"],
        "preparation": peer["preparation"],
        "split": {k: v for k, v in split.items() if k != "users"},
        "split_file": str(split_file.relative_to(ROOT)) if split_file.is_relative_to(ROOT) else str(split_file),
        "peer": {"url": PEER_URL, "repo": str(repo), "commit": peer_commit(repo, args.peer_commit)},
        "peer_python": args.peer_python,
        "versions": peer["versions"],
        "methods": peer["methods"],
        "published": {"source": PUBLISHED_SOURCE, "figures": PUBLISHED},
        "machine": {**machine(), "loadavg_start": list(load0), "loadavg_end": list(os.getloadavg())},
        "wall_seconds": time.perf_counter() - t0,
        "chronorec_commit": chronorec_commit(),
    }
    (out_dir / "nbr-peers-tafeng.json").write_text(json.dumps(result, indent=2) + "\n")
    (out_dir / "nbr-peers-tafeng.md").write_text(table(result) + "\n")
    print(table(result))
    print(f"[peers_nbr] the peer's predictions and logs stay in {work}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
