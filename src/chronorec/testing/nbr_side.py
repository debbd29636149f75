"""The pure parts of the runner that drives the next-basket peer's own scripts
(``benchmarks/peers_nbr_runner.py``, run in the peer's virtual environment): its history rows and
the parsing of what their evaluation prints. Standard library only."""

from __future__ import annotations


def history_rows(history: dict[str, list[list[int]]]) -> list[tuple[int, int, int]]:
    """``(user_id, order_number, product_id)`` rows of their history json (``[[-1], b1, ..., bn, [-1]]``)."""
    rows = []
    for user, baskets in history.items():
        for number, basket in enumerate(baskets[1:-1], start=1):
            rows.extend((int(user), number, int(item)) for item in basket)
    return rows


def _floats(line: str, n: int) -> list[float]:
    return [float(x) for x in line.replace(":", " ").split()[-n:]]


def parse_repeat_eval(printed: str) -> dict[str, float]:
    """The figures ``model_performance.get_repeat_eval`` prints for one K."""
    out: dict[str, float] = {}
    for line in printed.splitlines():
        if line.startswith("recall, ndcg, hit:"):
            out["recall"], out["ndcg"], out["phr"] = _floats(line, 3)
        elif line.startswith("repeat-explore ratio:"):
            out["repeat_ratio"], out["explore_ratio"] = _floats(line, 2)
        elif line.startswith("repeat-explore recall"):
            out["recall_repeat"], out["recall_explore"] = _floats(line, 2)
        elif line.startswith("repeat-explore hit:"):
            out["phr_repeat"], out["phr_explore"] = _floats(line, 2)
    if "recall" not in out:
        raise SystemExit(f"model_performance.get_repeat_eval printed no figures:\n{printed[-2000:]}")
    return out
