"""The server variants of the load test of ``chronorec serve`` (``benchmarks/load_test.py``) and the
command that starts each."""

from __future__ import annotations

import sys
from typing import Any

HOST = "127.0.0.1"  # never anything else


def parse_variants(
    specs: list[str], *, server_threads: int, baseline: tuple[str, str] | None = None
) -> list[dict[str, Any]]:
    """Server variants from ``name:max_batch[:threads[:query_cache]]`` specs (max_batch 64, the
    threads ``server_threads`` and the query cache the server's own when left out); ``baseline``:
    first a variant serving the ``src`` folder at that path (the code of another revision), named
    ``main@<label>`` where ``baseline`` is ``(label, path)``."""
    out: list[dict[str, Any]] = []
    if baseline is not None:
        label, path = baseline
        out.append({"name": f"main@{label}", "max_batch": None, "pythonpath": path})
    for spec in specs:
        name, _, rest = spec.partition(":")
        mb, _, rest = rest.partition(":")
        th, _, cache = rest.partition(":")
        out.append(
            {
                "name": name,
                "max_batch": int(mb or 64),
                "threads": int(th) if th else None,
                "query_cache": int(cache) if cache else None,
            }
        )
    for v in out:
        v["threads"] = v.get("threads") or server_threads
    return out


def server_command(model: str, variant: dict[str, Any], port: int, state: str, *, max_wait_ms: float) -> list[str]:
    """``chronorec serve`` of ``model`` as ``variant`` on ``HOST:port`` with its state in ``state``."""
    cmd = [sys.executable, "-m", "chronorec", "serve", "--model", str(model), "--host", HOST]
    cmd += ["--port", str(port), "--state-dir", state, "--threads", str(variant["threads"])]
    if variant["max_batch"] is not None:
        cmd += ["--max-batch", str(variant["max_batch"]), "--max-wait-ms", str(max_wait_ms)]
    if variant.get("query_cache") is not None:
        cmd += ["--query-cache", str(variant["query_cache"])]
    return cmd
