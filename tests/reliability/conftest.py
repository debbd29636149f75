"""Shared helpers of the hostile-input suite: run the CLI, snapshot a folder, check row accounting.

Every hostile case asserts the exact answer (message, exit code, exception type or status) and
that nothing was lost or changed; these fixtures keep those two checks short.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

WIDE = {"COLUMNS": "250", "TERMINAL_WIDTH": "250", "NO_COLOR": "1"}


@pytest.fixture
def cli() -> Callable[..., Any]:
    """``cli("ingest", path, "--out", out)``: the typer app's result (``exit_code``, ``output``)."""
    from chronorec.cli.main import app

    runner = CliRunner()

    def invoke(*args: Any) -> Any:
        return runner.invoke(app, [str(a) for a in args], env=WIDE)

    return invoke


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes): compare before and after to prove a
    failed command changed nothing."""
    folder = Path(folder)
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(parent: Path) -> list[str]:
    """Hidden temporary folders an atomic write left next to its target (there should be none)."""
    return sorted(p.name for p in Path(parent).iterdir() if p.name.startswith("."))


def one_line_error(output: str) -> str:
    """The CLI's ``error: ...`` line; fails the test on a traceback or on no error line."""
    assert "Traceback" not in output, output
    lines = [ln for ln in output.splitlines() if ln.startswith("error: ")]
    assert lines, output
    return lines[0]


def accounted(report: Any) -> bool:
    """Whether an ingest report (object or its ``to_dict``) accounts for every row read."""
    r = report if isinstance(report, dict) else report.to_dict()
    parts = r["rows_kept"] + r["rows_rejected"] + r["duplicates_removed"] + r["kcore_removed"]
    parts += sum(r.get("rules_removed", {}).values())
    return r["rows_read"] == parts and r["balanced"]
