import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from chronorec.cli.main import app

runner = CliRunner()
WIDE = {"COLUMNS": "250", "TERMINAL_WIDTH": "250", "NO_COLOR": "1"}

HELP_OPTIONS = {
    "calibrate": ["--model", "--out", "--items", "--sparse-below", "--data", "--dataset", "--split", "--config"],
    "ingest": [
        "--out",
        "--user-col",
        "--item-col",
        "--time-col",
        "--behavior-col",
        "--context-col",
        "--rejects",
        "--config",
    ],
    "train": [
        "--kind",
        "--out",
        "--param",
        "--epochs",
        "--resume",
        "--threads",
        "--checkpoint-dir",
        "--data",
        "--dataset",
        "--data-dir",
        "--split",
        "--config",
    ],
    "evaluate": ["--data", "--dataset", "--split", "--cutoff", "--ks", "--out", "--seed", "--config"],
    "recommend": ["--model", "--users", "--users-file", "--history", "-k", "--out", "--config"],
    "demo": ["--out", "--quick", "--seed", "--threads"],
    "ensemble": ["--out", "--weights", "--combine"],
}


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], env=WIDE)


@pytest.mark.parametrize("command", sorted(HELP_OPTIONS))
def test_help_lists_every_option_with_help_text(command):
    res = invoke(command, "--help")
    assert res.exit_code == 0, res.output
    for opt in HELP_OPTIONS[command]:
        assert opt in res.output, f"{command} --help lacks {opt}"


def test_every_option_has_help_text():
    import typer.main

    group = typer.main.get_group(app)
    for name, cmd in group.commands.items():
        for p in cmd.params:
            assert getattr(p, "help", None), f"{name}: {p.name} has no help text"


def test_top_level_help_and_benchmark_passthrough():
    res = invoke("--help")
    assert res.exit_code == 0
    for cmd in ("ingest", "train", "evaluate", "recommend", "demo", "benchmark"):
        assert cmd in res.output
    res = invoke("benchmark", "--help")
    assert res.exit_code == 0, res.output
    assert "--datasets" in res.output and "--models" in res.output


def test_python_dash_m():
    out = subprocess.run(
        [sys.executable, "-m", "chronorec", "--help"], capture_output=True, text=True, env={**WIDE, "PATH": ""}
    )
    assert out.returncode == 0, out.stderr
    assert "recommend" in out.stdout


CSV = """uid,sku,ts,action,price
u1,a,1000,view,1.5
u1,b,1010,view,2.0
u1,b,1010,view,2.0
u2,a,1005,view,1.5
,c,1020,view,3.0
u2,c,1030,cart,3.0
u3,a,not-a-time,view,1.5
u3,d,1040,view,4.0
"""


def test_ingest_writes_eventlog_and_counts_add_up(tmp_path):
    src = tmp_path / "events.csv"
    src.write_text(CSV)
    out = tmp_path / "log"
    res = invoke(
        "ingest", src, "--out", out, "--user-col", "uid", "--item-col", "sku", "--time-col", "ts",
        "--behavior-col", "action", "--value-col", "price",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    from chronorec.data.eventlog import EventLog

    log = EventLog.load(out)
    report = json.loads((out / "ingest_report.json").read_text())
    rejects = pd.read_csv(out / "rejects.csv")
    assert report["rows_read"] == 8
    assert report["rows_rejected"] == 2 == len(rejects)
    assert report["duplicates_removed"] == 1
    assert report["rows_kept"] == len(log) == 5
    assert (
        report["rows_read"]
        == report["rows_kept"] + report["rows_rejected"] + report["duplicates_removed"] + report["kcore_removed"]
    )
    assert sorted(rejects["line"].tolist()) == [6, 8]  # 1-based file lines (header = line 1)
    assert (log.n_users, log.n_items) == (3, 4)
    frame = log.to_external_frame()
    assert frame["user_id"].tolist() == ["u1", "u1", "u2", "u2", "u3"]
    assert frame["item_id"].tolist() == ["a", "b", "a", "c", "d"]
    assert frame["behavior"].tolist() == ["view", "view", "view", "cart", "view"]
    assert "Wrote the EventLog (5 events, 3 users, 4 items)" in res.output


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    from chronorec.datasets.synthetic import make_ecommerce_log

    d = tmp_path_factory.mktemp("shop")
    df = make_ecommerce_log(n_users=40, n_items=30, n_clusters=2, mean_length=10, seed=5, return_frame=True)
    df.to_csv(d / "events.csv", index=False)
    return d, df


def _expected_popular(df: pd.DataFrame, user: str, k: int) -> tuple[list[float], set[str]]:
    """Leave-one-out training part = all but each user's last 2 events; popular = training counts."""
    s = df.sort_values(["user_id", "timestamp"], kind="stable")
    pos_from_end = s.groupby("user_id").cumcount(ascending=False)
    n = s.groupby("user_id")["item_id"].transform("size")
    train = s[(pos_from_end >= 2) | (n < 3)]
    counts = train["item_id"].value_counts()
    seen = set(train.loc[train["user_id"] == user, "item_id"])
    cand = counts[~counts.index.isin(seen)].sort_values(ascending=False, kind="stable")
    return cand.iloc[:k].astype(float).tolist(), seen


def test_train_recommend_evaluate_popular(shop, tmp_path):
    d, df = shop
    model_dir = tmp_path / "pop"
    res = invoke(
        "train", "--data", d / "events.csv", "--behavior-col", "behavior", "--kind", "popular", "--out", model_dir,
        "-p", "history=exclude",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert (model_dir / "manifest.json").exists()
    assert "leave-one-out: " in res.output and "History protocol: history excluded (exclude:" in res.output

    out_csv = tmp_path / "recs.csv"
    res = invoke(
        "recommend", "--model", model_dir, "--users", "u0001,u0002", "--users", "u0003", "-k", 5, "--out", out_csv
    )
    assert res.exit_code == 0, res.output
    assert "Wrote 15 recommendations for 3 users" in res.output
    recs = pd.read_csv(out_csv)
    assert list(recs.columns) == ["user_id", "item_id", "score", "rank", "source"]
    assert set(recs["source"]) == {"model"}
    assert recs["user_id"].tolist() == ["u0001"] * 5 + ["u0002"] * 5 + ["u0003"] * 5
    assert recs["rank"].tolist() == [1, 2, 3, 4, 5] * 3
    counts = df.sort_values(["user_id", "timestamp"], kind="stable")
    for user in ("u0001", "u0002", "u0003"):
        scores, seen = _expected_popular(counts, user, 5)
        got = recs[recs["user_id"] == user]
        assert got["score"].tolist() == scores
        assert not (set(got["item_id"]) & seen)

    # parquet output and printing to stdout give the same rows
    out_pq = tmp_path / "recs.parquet"
    assert invoke("recommend", "-m", model_dir, "-u", "u0001,u0002,u0003", "-k", 5, "-o", out_pq).exit_code == 0
    pd.testing.assert_frame_equal(
        pd.read_parquet(out_pq)[["user_id", "item_id", "rank"]], recs[["user_id", "item_id", "rank"]]
    )
    res = invoke("recommend", "-m", model_dir, "-u", "u0001", "-k", 2)
    assert res.exit_code == 0
    assert res.output.splitlines()[0] == "user_id,item_id,score,rank,source"
    assert len(res.output.strip().splitlines()) == 3

    # evaluate: the JSON holds the same numbers as evaluating in-process
    out_json = tmp_path / "eval.json"
    res = invoke("evaluate", model_dir, "--data", d / "events.csv", "--behavior-col", "behavior", "--out", out_json)
    assert res.exit_code == 0, res.output
    payload = json.loads(out_json.read_text())
    assert payload["protocol"] == "leave-one-out" and payload["seed"] == 0 and "git_commit" in payload
    assert payload["data"] == str(d / "events.csv")
    from chronorec.data import read_events
    from chronorec.evaluation.ranking import evaluate_ranking
    from chronorec.evaluation.split import leave_one_out
    from chronorec.models import registry

    sp = leave_one_out(read_events(d / "events.csv", behavior_col="behavior"))
    m = registry.get("popular")(history="exclude").fit(sp.train, validation=sp.validation)
    # the protocol the model recorded at training (-p history=exclude), though a third of this log's
    # validation targets repeat a history item (auto would include them)
    assert payload["history_protocol"]["used"] == "excluded" and payload["repeat"]["repeat_share"] > 0.01
    assert "recorded with the model at fit" in payload["history_protocol"]["reason"]
    expected = evaluate_ranking(m, sp.test)
    got = payload["results"]["pop"]["test"]
    assert got == pytest.approx(expected)
    assert f"{expected['NDCG@10']:.4f}" in res.output


def test_evaluate_maps_ids_between_model_and_data(shop, tmp_path):
    """A model trained on one file evaluated on a reordered copy: same metrics (ids are matched by name)."""
    d, df = shop
    model_dir = tmp_path / "pop"
    assert invoke("train", "--data", d / "events.csv", "--kind", "popular", "--out", model_dir).exit_code == 0
    shuffled = tmp_path / "shuffled.csv"
    df.iloc[::-1].to_csv(shuffled, index=False)  # different first-appearance order -> different internal ids
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert invoke("evaluate", model_dir, "--data", d / "events.csv", "--out", a).exit_code == 0
    assert invoke("evaluate", model_dir, "--data", shuffled, "--out", b).exit_code == 0
    ra = json.loads(a.read_text())["results"]["pop"]["test"]
    rb = json.loads(b.read_text())["results"]["pop"]["test"]
    assert ra == pytest.approx(rb)


def test_evaluate_two_models_reports_paired_tests(shop, tmp_path):
    d, _ = shop
    pop, knn = tmp_path / "pop", tmp_path / "knn"
    assert invoke("train", "--data", d / "events.csv", "--kind", "popular", "--out", pop).exit_code == 0
    assert invoke("train", "--data", d / "events.csv", "--kind", "itemknn", "--out", knn).exit_code == 0
    out = tmp_path / "cmp.json"
    res = invoke("evaluate", pop, knn, "--data", d / "events.csv", "--out", out)
    assert res.exit_code == 0, res.output
    assert "Paired tests against pop" in res.output
    payload = json.loads(out.read_text())
    t = payload["significance"]["knn"]["NDCG@10"]
    r = payload["results"]
    assert t["diff"] == pytest.approx(r["knn"]["test"]["NDCG@10"] - r["pop"]["test"]["NDCG@10"])
    assert t["ci_low"] <= t["diff"] <= t["ci_high"] and 0.0 <= t["t_test_p"] <= 1.0
    assert "pop" not in payload["significance"]


def test_calibrate_fits_settings_on_validation_and_recommend_uses_them(shop, tmp_path):
    d, _ = shop
    model_dir = tmp_path / "sas"
    res = invoke(
        "train", "--data", d / "events.csv", "--kind", "sasrec", "-p", "epochs=3", "-p", "dim=16", "-p", "max_len=20",
        "--out", model_dir,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    out = tmp_path / "deploy" / "recommend.json"
    res = invoke("calibrate", "--model", model_dir, "--data", d / "events.csv", "--out", out, "--sparse-below", 4)
    assert res.exit_code == 0, res.output
    settings = json.loads(out.read_text())
    report = json.loads((tmp_path / "deploy" / "recommend.report.json").read_text())
    assert (tmp_path / "deploy" / "recommend.reliability.png").stat().st_size > 1000
    cal = report["calibration"]
    assert settings["temperature"] > 0 and settings["calibration"] == cal
    assert cal["nll_after"] <= cal["nll_before"] + 1e-9  # the fitted temperature is at least as good as T = 1
    assert settings["blend"]["sparse_below"] == 4 and len(report["blend_grid"]) == 25
    variants = [r["variant"] for r in report["postprocessing"]]
    assert variants == ["plain", "diversity 0.2", "diversity 0.5"]
    rows = {r["variant"]: r for r in report["postprocessing"]}
    assert rows["diversity 0.5"]["ILD"] >= rows["plain"]["ILD"] - 1e-9  # MMR never lowers diversity here
    res = invoke("recommend", "--model", model_dir, "-u", "u0001", "-k", 3, "--settings", out, "--calibrated")
    assert res.exit_code == 0, res.output
    probs = [float(line.split(",")[2]) for line in res.stdout.strip().splitlines()[1:]]
    assert len(probs) == 3 and all(0 < p < 1 for p in probs) and probs == sorted(probs, reverse=True)


def test_train_config_file_and_errors(shop, tmp_path):
    d, _ = shop
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"data: {{path: {d / 'events.csv'}}}\nmodels:\n  - {{kind: itemknn, name: knn, neighbours: 5}}\n")
    res = invoke("train", "--config", cfg, "--out", tmp_path / "knn")
    assert res.exit_code == 0, res.output
    saved = json.loads((tmp_path / "knn" / "config.json").read_text())
    assert saved["kind"] == "itemknn" and saved["config"]["neighbours"] == 5

    bad = tmp_path / "bad.yaml"
    bad.write_text("data: {path: x.csv}\nmodels: [{kind: sasrec, dimm: 3}]\n")
    res = invoke("train", "--config", bad)
    assert res.exit_code == 1
    assert "models.0.sasrec.dimm: Extra inputs are not permitted" in res.output

    res = invoke("train", "--kind", "popular", "--out", tmp_path / "x")
    assert res.exit_code == 1 and "no data: give --data PATH or --dataset NAME" in res.output
    res = invoke("train", "--data", d / "events.csv", "--kind", "popular", "--epochs", 3)
    assert res.exit_code == 1 and "--epochs does not apply to model kind 'popular'" in res.output
    res = invoke("recommend", "--users", "u0001")
    assert res.exit_code == 1 and "no model: give --model DIR" in res.output


def test_demo_command_writes_the_run_folder(tmp_path, monkeypatch):
    """The demo with two fast models stands in for the full one (which trains neural models for minutes)."""
    import chronorec.workflows.demo as demo

    def fast_models(**_):
        from chronorec.models import registry

        return {"popular": registry.get("popular")(), "itemknn": registry.get("itemknn")()}

    monkeypatch.setattr(demo, "demo_models", fast_models)
    out = tmp_path / "run"
    res = invoke("demo", "--out", out, "--quick", "--no-progress")
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["protocol"] == "leave-one-out" and summary["seed"] == 0
    assert summary["data"]["n_users"] == 300 and summary["data"]["n_items"] == 200
    assert set(summary["models"]) == {"popular", "itemknn"}
    assert {"machine", "git_commit"} <= set(summary)
    recs = pd.read_csv(out / "recommendations.csv")
    assert len(recs) == 2 * 3 * 5 and recs["item_name"].str.contains(r"\(cluster \d\)").all()
    assert (out / "metrics.png").stat().st_size > 0
    for name in ("popular", "itemknn"):
        assert (out / "models" / name / "manifest.json").exists()
    ndcg = {n: m["test"]["NDCG@10"] for n, m in summary["models"].items()}
    # the planted transitions are learnable (history included: 41% of this log's targets repeat an item)
    assert summary["models"]["itemknn"]["history_protocol"]["exclude"] is False
    assert ndcg["itemknn"] > 1.5 * ndcg["popular"]
    assert "HR@10" in res.output and "Sample recommendations" in res.output
    assert np.isfinite(summary["total_seconds"])


def test_ensemble_command_saves_a_model_that_evaluate_reads(shop, tmp_path):
    d, _ = shop
    pop, knn, ens = tmp_path / "pop", tmp_path / "knn", tmp_path / "ens"
    assert invoke("train", "--data", d / "events.csv", "--kind", "popular", "--out", pop).exit_code == 0
    assert invoke("train", "--data", d / "events.csv", "--kind", "itemknn", "--out", knn).exit_code == 0
    res = invoke("ensemble", knn, pop, "--weights", "1,0.2", "--out", ens)
    assert res.exit_code == 0, res.output
    out = tmp_path / "cmp.json"
    res = invoke("evaluate", knn, ens, "--data", d / "events.csv", "--out", out)
    assert res.exit_code == 0, res.output
    r = json.loads(out.read_text())["results"]
    assert r["ens"]["test"]["NDCG@10"] > 0 and r["ens"]["test"] != r["knn"]["test"]
    bad = invoke("ensemble", knn, pop, "--weights", "1", "--out", tmp_path / "x")
    assert bad.exit_code == 1 and "1 weights for 2 models" in bad.output


# ---------------------------------------------------------------------- one CLI architecture
def _commands():
    import typer.main

    return typer.main.get_command(app).commands


def _leaf_commands(commands, prefix=""):
    for name, cmd in commands.items():
        if hasattr(cmd, "commands"):  # a group such as `datasets` or `store`
            yield from _leaf_commands(cmd.commands, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", cmd


def test_every_command_accepts_a_config_file():
    commands = dict(_leaf_commands(_commands()))
    assert {"ingest", "train", "evaluate", "recommend", "serve", "forecast", "datasets synth", "store build"} <= set(
        commands
    )
    assert len(commands) == 15
    for name, cmd in commands.items():
        assert any("--config" in p.opts for p in cmd.params), f"{name} takes no --config"


@pytest.mark.parametrize(
    ("command", "section", "option"),
    [
        ("ensemble", "ensemble: {weights: '1,2,3'}", ["a", "b"]),
        ("benchmark", "benchmark: {datasets: ml-1m, models: nosuchpreset}", []),
        ("features", "features: {freq: fortnight}", []),
        ("forecast", "forecast: {horizon: 0}", []),
        ("predict-behavior", "behavior: {epochs: 0}", []),
        ("predict-when", "when: {horizons_hours: [-1]}", []),
        ("serve", "serve: {port: 99999}", []),
        ("demo", "seed: not-a-number", []),
        ("evaluate", "evaluation: {ks: []}", []),
    ],
)
def test_config_file_values_reach_the_command(tmp_path, command, section, option):
    """A config file's section is read by its command: an invalid value there is reported as one line."""
    cfg = tmp_path / "run.yaml"
    cfg.write_text(section + "\n")
    res = invoke(command, *option, "--config", cfg)
    assert res.exit_code == 1, res.output
    assert res.output.startswith("error: "), res.output
    assert "Traceback" not in res.output


def test_command_line_options_win_over_the_config_file(shop, tmp_path):
    d, _ = shop
    pop, knn = tmp_path / "pop", tmp_path / "knn"
    assert invoke("train", "--data", d / "events.csv", "--kind", "popular", "--out", pop).exit_code == 0
    assert invoke("train", "--data", d / "events.csv", "--kind", "itemknn", "--out", knn).exit_code == 0
    cfg = tmp_path / "ens.yaml"
    cfg.write_text(f"ensemble: {{model_dirs: [{knn}, {pop}], weights: [1, 0.2], out: {tmp_path / 'from-file'}}}\n")
    res = invoke("ensemble", "--config", cfg, "--weights", "1,0.5", "--out", tmp_path / "ens")
    assert res.exit_code == 0, res.output
    saved = json.loads((tmp_path / "ens" / "config.json").read_text())
    assert saved["config"]["weights"] == [1.0, 0.5]  # the option, not the file's [1, 0.2]
    assert not (tmp_path / "from-file").exists()


def test_the_error_handler_prints_one_line_for_user_errors_and_keeps_bugs(monkeypatch, tmp_path):
    from chronorec.errors import DataError
    from chronorec.workflows import run

    def user_error(*_, **__):
        raise DataError("the history is too short")

    monkeypatch.setattr(run, "load_events", user_error)
    res = invoke("train", "--kind", "popular", "--dataset", "synthetic", "--out", tmp_path / "m")
    assert res.exit_code == 1
    assert res.output == "error: the history is too short\n"

    def bug(*_, **__):
        raise KeyError("a bug, not a user error")

    monkeypatch.setattr(run, "load_events", bug)
    res = invoke("train", "--kind", "popular", "--dataset", "synthetic", "--out", tmp_path / "m")
    assert res.exit_code == 1 and isinstance(res.exception, KeyError)  # not swallowed into a message
    assert "error:" not in res.output

    monkeypatch.undo()
    res = invoke("evaluate", tmp_path / "missing-model", "--dataset", "synthetic", "--out", tmp_path / "e.json")
    assert res.exit_code == 1 and res.output.startswith("error: ") and len(res.output.strip().splitlines()) == 1


def test_recommend_on_an_unfitted_model_says_so(monkeypatch):
    import importlib

    from chronorec.models import registry

    registry_module = importlib.import_module("chronorec.models.registry")
    monkeypatch.setattr(registry_module, "load", lambda *_, **__: registry.get("popular")())
    res = invoke("recommend", "--model", "some-model", "--users", "u1")
    assert res.exit_code == 1
    assert res.output == "error: MostPopular is not fitted: train it (chronorec train) before recommending\n"


def test_benchmark_is_a_typer_command_with_every_option():
    res = invoke("benchmark", "--help")
    assert res.exit_code == 0, res.output
    for opt in ("--datasets", "--models", "--data-dir", "--out", "--seed", "--threads", "--set", "--tag",
                "--progress", "--no-progress", "--save-model", "--aggregate", "--refit", "--refit-from", "--config"):  # fmt: skip
        assert opt in res.output, opt
    bad = invoke("benchmark", "--datasets", "ml-1m", "--models", "nosuch")
    assert bad.exit_code == 1 and "unknown model preset 'nosuch'" in bad.output
    bad = invoke("benchmark", "--refit-from", "run.json")
    assert bad.exit_code == 1 and "one dataset" in bad.output


def test_benchmark_presets_are_yaml_files_in_the_package():
    from chronorec.workflows.benchmark import PRESET_DIR, preset_params, presets

    assert sorted(p.name for p in PRESET_DIR.glob("*.yaml")) == ["beauty.yaml", "ml-1m.yaml"]
    table = presets()
    assert table["ml-1m-full"] == table["ml-1m"]  # the 3,706-item variant reuses ML-1M's presets
    sasrec = preset_params("ml-1m", "sasrec", {"sasrec": {"lr": 0.01}})
    assert (sasrec["layers"], sasrec["heads"], sasrec["lr"], sasrec["max_len"]) == (3, 2, 0.01, 200)
    assert table["ml-1m"]["sasrec"]["lr"] == 0.002  # the override is a copy
    assert table["ml-1m"]["bert4rec"]["plateau_factor"] is None and table["beauty"]["sasrec"]["max_len"] == 50


def test_benchmark_command_runs_each_model_in_its_own_process(tmp_path):
    from chronorec.datasets.formats import DATASETS
    from chronorec.datasets.synthetic import make_sequences

    log = make_sequences(n_users=60, n_items=30, seed=1, mean_length=8)
    store = log.sequences()
    lines = [
        " ".join(map(str, [u, *store.items[store.offsets[u] : store.offsets[u + 1]]])) for u in range(1, log.n_users)
    ]
    path = tmp_path / "data" / DATASETS["beauty"]
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    res = invoke("benchmark", "--datasets", "beauty", "--models", "popular,itemknn", "--data-dir", tmp_path / "data",
                 "--out", out, "--no-progress", "--tag", "t", "--set", "itemknn.neighbours=5")  # fmt: skip
    assert res.exit_code == 0, res.output
    runs = {p.name for p in (out / "runs").glob("*.json")}
    assert runs == {"beauty-popular-seed0-t.json", "beauty-itemknn-seed0-t.json"}
    knn = json.loads((out / "runs" / "beauty-itemknn-seed0-t.json").read_text())
    assert knn["config"]["neighbours"] == 5 and knn["n_users"] == log.n_users - 1
    assert "| beauty | itemknn |" in (out / "summary-t.md").read_text() and "| beauty | popular |" in res.output


def test_compare_models_returns_metrics_paired_tests_and_provenance(shop, tmp_path):
    from chronorec.data import read_events
    from chronorec.evaluation.ranking import evaluate_ranking
    from chronorec.evaluation.split import leave_one_out
    from chronorec.models import registry
    from chronorec.workflows.experiment import compare_models

    d, _ = shop
    log = read_events(d / "events.csv")
    sp = leave_one_out(log)
    pop = registry.get("popular")().fit(sp.train)
    knn = registry.get("itemknn")().fit(sp.train)
    pop.save(tmp_path / "pop")
    knn.save(tmp_path / "knn")
    res = compare_models([tmp_path / "pop", tmp_path / "knn"], log, sp.test, ks=(5, 10), data="shop")
    assert res["data"] == "shop" and {"git_commit", "machine", "command"} <= set(res)
    assert res["n_cases"] == len(sp.test) and res["ks"] == [5, 10] and res["part"] == "test"
    expected = evaluate_ranking(knn, sp.test, ks=(5, 10))  # the model's own history protocol, as compare_models
    assert res["results"]["knn"]["test"] == pytest.approx(expected)
    assert res["history_protocol"]["exclude"] is knn.exclude_history is False  # a third of the targets repeat
    assert res["results"]["knn"]["kind"] == "itemknn" and res["results"]["knn"]["model_dir"] == str(tmp_path / "knn")
    t = res["significance"]["knn"]["NDCG@10"]
    assert t["diff"] == pytest.approx(expected["NDCG@10"] - res["results"]["pop"]["test"]["NDCG@10"])
    assert list(res["significance"]) == ["knn"]


def test_the_command_reference_is_up_to_date():
    from pathlib import Path

    from chronorec.cli.reference import reference

    page = Path(__file__).resolve().parents[1] / "docs" / "reference" / "cli.md"
    assert page.read_text() == reference(), "regenerate: python -m chronorec.cli.reference > docs/reference/cli.md"


def test_epoch_lines_reach_piped_output_without_progress_bars(shop, tmp_path):
    """With progress bars off and output piped, every epoch is one plain line: no carriage returns."""
    d, _ = shop
    res = invoke(
        "train",
        "--data",
        d / "events.csv",
        "--kind",
        "gru4rec",
        "--epochs",
        2,
        "--no-progress",
        "--out",
        tmp_path / "g",
    )
    assert res.exit_code == 0, res.output
    epoch_lines = [ln for ln in res.output.splitlines() if "] epoch " in ln and "loss" in ln]
    assert len(epoch_lines) == 2, res.output
    assert "\r" not in res.output
    quiet = invoke(
        "--log-level",
        "warning",
        "train",
        "--data",
        d / "events.csv",
        "--kind",
        "gru4rec",
        "--epochs",
        1,
        "--no-progress",
        "--out",
        tmp_path / "g2",
    )
    assert quiet.exit_code == 0, quiet.output
    assert not [ln for ln in quiet.output.splitlines() if "epoch 1:" in ln]


def test_train_passes_a_tracking_uri_given_as_a_parameter(shop, tmp_path, monkeypatch):
    """-p tracking_uri=... reaches the trainer although saved configs leave it out."""
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    d, _ = shop
    uri = (tmp_path / "mlruns").as_uri()
    res = invoke(
        "train",
        "--data",
        d / "events.csv",
        "--kind",
        "gru4rec",
        "--epochs",
        2,
        "--no-progress",
        "-p",
        f"tracking_uri={uri}",
        "--out",
        tmp_path / "g",
    )
    assert res.exit_code == 0, res.output
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("chronorec").experiment_id])
    assert len(runs) == 1
    assert len(client.get_metric_history(runs[0].info.run_id, "loss")) == 2
    assert "tracking_uri" not in json.loads((tmp_path / "g" / "config.json").read_text())["config"]
