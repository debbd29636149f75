"""The tables of the next-basket peer comparison (``benchmarks/peers_nbr.py``): the published
baselines of Li et al.'s "A Next Basket Recommendation Reality Check", run from their repository, on
Ta Feng."""

from __future__ import annotations

from typing import Any

PEER_URL = "https://github.com/liming-7/A-Next-Basket-Recommendation-Reality-Check"

METHODS = ("G-TopFreq", "P-TopFreq", "GP-TopFreq", "TIFU-KNN")

PROTOCOL = (
    "Li et al. (TOIS 2023), their code: users split 72/8/20 into train/validation/test (keyset_fold.py); "
    "per test user the truth is the last basket, the input every earlier basket; full-catalogue lists, "
    "items of the history not excluded; Recall@K = hits/|basket|, NDCG@K with the ideal DCG of the whole "
    "basket, PHR@K = share of users with a hit; averaged over the test users"
)

# Ta Feng figures the peer repository states: its README and files give none (the paper's tables are
# not part of the repository), so there is nothing to set beside the measured ones.
PUBLISHED: dict[str, dict[str, float]] = {}

PUBLISHED_SOURCE = f"{PEER_URL} (README and files): no Ta Feng figures stated"


# ---------------------------------------------------------------------------- pure parts
def _fmt(x: float | None, spec: str = ".4f") -> str:
    return "-" if x is None else f"{x:{spec}}"


def _load(m: dict[str, Any]) -> str:
    a, b = m.get("loadavg_start"), m.get("loadavg_end")
    return "-" if not a or not b else f"{a[0]:.1f} / {b[0]:.1f}"


def metric_rows(result: dict[str, Any]) -> list[str]:
    """One row per method: Recall, NDCG, PHR at 10 and 20, and its wall seconds."""
    rows = []
    for method, res in result["methods"].items():
        t10, t20 = res["test"]["10"], res["test"]["20"]
        figs = [t10["recall"], t10["ndcg"], t10["phr"], t20["recall"], t20["ndcg"], t20["phr"]]
        pub = PUBLISHED.get(method, {})
        pubs = [pub.get(k) for k in ("Recall@10", "NDCG@10", "PHR@10", "Recall@20", "NDCG@20", "PHR@20")]
        cells = [_fmt(f) + ("" if p is None else f" ({p:.4f})") for f, p in zip(figs, pubs, strict=True)]
        rows.append(f"| {method} | {' | '.join(cells)} | {res['wall_seconds']:.0f} |")
    return rows


def breakdown_rows(result: dict[str, Any]) -> list[str]:
    """Repeat / explore: share of repeat items in the list, Recall and PHR on each part of the basket,
    and the Recall each part of the list contributes."""
    rows = []
    for method, res in result["methods"].items():
        for k in ("10", "20"):
            t = res["test"][k]
            cells = [
                f"{t['repeat_ratio']:.3f}",
                f"{_fmt(t['recall_repeat'])} / {_fmt(t['recall_explore'])}",
                f"{_fmt(t['phr_repeat'])} / {_fmt(t['phr_explore'])}",
                f"{_fmt(t['recall_from_repeat_predictions'])} / {_fmt(t['recall_from_explore_predictions'])}",
            ]
            rows.append(f"| {method} | {k} | {' | '.join(cells)} |")
    return rows


def table(result: dict[str, Any]) -> str:
    """The Markdown tables of a saved result, with the command that made it."""
    split, data = result["split"], result["data"]
    head = [
        f"Data: `{data['file']}` ({data['n_users']} users, {data['n_items']} items, {data['n_baskets']} baskets; "
        f"sha256 {data['sha256'][:12]}...). Split: {split['how']}: {split['n_train']} train / {split['n_val']} "
        f"validation / {split['n_test']} test users (lists in `{result['split_file']}`). "
        f"Peer: {result['peer']['url']} at {result['peer']['commit'] or 'unknown commit'}, its own venv "
        f"({', '.join(f'{k} {v}' for k, v in result['versions'].items())}). "
        f"Machine: {result['machine']['cpu_count']} cores, load average {_load(result['machine'])} at start / end.",
        "",
        f"Their history csv: {result['preparation']['history_csv']}; its item counts equal their "
        "tafeng_pop.csv (the G-TopFreq ranking).",
        "",
        f"Protocol: {result['protocol']}.",
        "",
        "Test users, their evaluation code (published figures in brackets where the peer states them):",
        "",
        "| method | Recall@10 | NDCG@10 | PHR@10 | Recall@20 | NDCG@20 | PHR@20 | wall s |",
        "|---|---|---|---|---|---|---|---|",
        *metric_rows(result),
        "",
        f"Published: {result['published']['source']}.",
        "",
        "Repeat / explore (their `model_performance.get_repeat_eval` and `performance_gain.get_exp_recall`; "
        "Recall and PHR on the repeat / explore part of the basket average over the users whose basket has "
        "such items):",
        "",
        "| method | K | repeat share of the list | Recall repeat / explore | PHR repeat / explore "
        "| Recall from the list's repeat / explore items |",
        "|---|---|---|---|---|---|",
        *breakdown_rows(result),
        "",
        f"Command: `{result['command']}` (started {result['started_at']}).",
    ]
    return "\n".join(head)
