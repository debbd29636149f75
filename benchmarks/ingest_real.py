"""Real logs through ``chronorec ingest``: the retail log with the bundled ``online-retail`` recipe,
the Taobao UserBehavior file with the bundled ``taobao`` recipe and MovieLens-100K without a
header. Checks what the ingest guide promises and saves every rule's row count.

    python benchmarks/ingest_real.py [--data-dir /work/shared/data] [--out benchmarks/results/ingest_real.json]

Each log goes through the command line exactly as a user types it (``chronorec ingest ...``); the
JSON holds the command, the ingest report (rows read, kept, rejected, duplicates, k-core and each
named rule), the checks below and the machine:

* retail: no non-product stock code in the catalogue (every code starts with five digits or is a
  ``DCGS`` dotcom product), cancellations accounted for by rule name, the accounting exact, and
  ``chronorec recommend`` for customer 13047 (popular and item-kNN) ranks no non-product code;
* every log: ``rows_read == kept + rejected + duplicates + k-core + sum(rules)``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CLI = [sys.executable, "-m", "chronorec"]
NON_PRODUCT = re.compile(r"^(?!\d{5}|DCGS)")  # a retail stock code that is not a product


def run(args: list[str]) -> str:
    res = subprocess.run([*CLI, *args], capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"chronorec {' '.join(args)} failed:\n{res.stdout}\n{res.stderr}")
    return res.stdout


def ingest(name: str, args: list[str], out: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    printout = run(["ingest", *args, "--out", str(out)])
    report = json.loads((out / "ingest_report.json").read_text())
    identity = (
        report["rows_kept"]
        + report["rows_rejected"]
        + report["duplicates_removed"]
        + report["kcore_removed"]
        + sum(report["rules_removed"].values())
    )
    return {
        "name": name,
        "command": "chronorec ingest " + " ".join(args) + f" --out {out.name}",
        "seconds": round(time.perf_counter() - t0, 1),
        "report": report,
        "accounting_exact": identity == report["rows_read"] and report["balanced"],
        "printout": printout,
    }


def retail_checks(out: Path, work: Path) -> dict[str, Any]:
    from chronorec.data import EventLog

    log = EventLog.load(out)
    codes = [str(c) for c in log.items.external_ids]
    bad = sorted(c for c in codes if NON_PRODUCT.match(c))
    recs = {}
    for kind in ("popular", "itemknn"):
        model = work / f"retail-{kind}"
        run(["train", "--kind", kind, "--data", str(out), "--out", str(model)])
        lines = run(["recommend", "--model", str(model), "--users", "13047", "--k", "10"]).strip().splitlines()
        items = [ln.split(",")[1] for ln in lines[1:]]
        recs[kind] = {"top10": items, "non_product": [c for c in items if NON_PRODUCT.match(c)]}
    return {"catalogue_size": len(codes), "non_product_codes_in_catalogue": bad, "recommend_13047": recs}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get("CHRONOREC_DATA", "/work/shared/data"))
    ap.add_argument("--out", default="benchmarks/results/ingest_real.json")
    a = ap.parse_args(argv)
    d = Path(a.data_dir)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        retail = ingest(
            "online-retail",
            [str(d / "online-retail/online_retail.csv.xz"), "--recipe", "online-retail"],
            work / "retail",
        )
        retail["checks"] = retail_checks(work / "retail", work)
        runs.append(retail)
        taobao = d / "taobao-userbehavior/UserBehavior_first814users.csv"
        runs.append(ingest("taobao", [str(taobao), "--recipe", "taobao"], work / "taobao"))
        ml = [str(d / "ml-100k/u.data"), "--no-header", "--names", "user,item,rating,time", "--sep", "\\t"]
        runs.append(ingest("ml-100k", ml, work / "ml100k"))
    from chronorec.workflows.experiment import provenance

    result = {"provenance": provenance(data_dir=str(d)), "runs": runs}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=2, default=str))
    for r in runs:
        rep = r["report"]
        print(f"{r['name']}: read {rep['rows_read']:,} kept {rep['rows_kept']:,} rules {rep['rules_removed']}")
        print(f"  accounting exact: {r['accounting_exact']}")
    print("retail checks:", json.dumps(retail["checks"]))
    return result


if __name__ == "__main__":
    main()
