"""Careless and hostile inputs of the newer commands: each one is refused with one line (exit 1), and
nothing is written. The regression cases (one-line errors that had turned into tracebacks) come first."""

from __future__ import annotations

import pytest

from chronorec.settings import ServeSettings, clean_api_key

from ._models import events_csv, save_popular
from .conftest import one_line_error


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("bounded")
    return {"csv": events_csv(root / "events.csv"), "pop": save_popular(root / "popular"), "root": root}


def fails(res, *expected: str) -> str:
    assert res.exit_code == 1, res.output
    line = one_line_error(res.output)
    for text in expected:
        assert text in res.output, res.output
    return line


# ---------------------------------------------------------------------- regressions to tracebacks
def test_an_unknown_model_kind_is_one_line(cli, data, tmp_path):
    res = cli("train", "--data", data["csv"], "--kind", "bogus", "--out", tmp_path / "m", "--no-progress")
    fails(res, "unknown model kind 'bogus'", "sasrec")
    assert not (tmp_path / "m").exists()


def test_a_cutoff_that_is_not_a_date_is_refused_before_training(cli, data, tmp_path):
    args = ("--split", "temporal", "--cutoff", "notadate", "--out", tmp_path / "m", "--no-progress")
    res = cli("train", "--data", data["csv"], "--kind", "popular", *args)
    fails(res, "split.cutoff 'notadate' is not a time", "ISO date")
    assert "Training" not in res.output and not (tmp_path / "m").exists()


def test_cutoffs_that_are_not_integers_name_the_option(cli, data):
    fails(cli("evaluate", data["pop"], "--data", data["csv"], "--ks", "a,b"), "evaluation.ks.0", "integer")


def test_a_binary_users_file_is_one_line(cli, data, tmp_path):
    users = tmp_path / "users.dat"
    users.write_bytes(bytes(range(256)) * 4)
    fails(cli("recommend", "--model", data["pop"], "--users-file", users), "--users-file", "not UTF-8 text")


@pytest.mark.parametrize("seed", ["-1", str(2**32)])
def test_a_seed_out_of_range_is_refused(cli, data, tmp_path, seed):
    res = cli("train", "--data", data["csv"], "--kind", "popular", "--seed", seed, "--out", tmp_path / "m")
    fails(res, "seed")
    assert not (tmp_path / "m").exists()


# ---------------------------------------------------------------------- nothing read is trusted
def test_names_that_do_not_cover_every_field_are_refused(cli, data, tmp_path):
    """Three names for five fields made pandas turn the leading fields into an index: users became
    categories and items became behaviours, with exit 0."""
    raw = tmp_path / "raw.csv"
    raw.write_text("".join(f"{u},{u * 7},{u % 3},pv,{1_600_000_000 + u}\n" for u in range(50)))
    res = cli("ingest", raw, "--no-header", "--names", "user_id,item_id,timestamp", "--out", tmp_path / "o")
    fails(res, "--names gives 3 names", "line 1 has 5 fields")
    assert not (tmp_path / "o").exists()


def test_a_repeated_column_name_is_refused(cli, tmp_path):
    raw = tmp_path / "dup.csv"
    raw.write_text("user_id,item_id,user_id,timestamp\n1,2,3,1000\n2,3,4,2000\n")
    fails(cli("ingest", raw, "--out", tmp_path / "o"), "more than one column is named 'user_id'")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--encoding", "rot13", "'rot13' is not a text encoding"),
        ("--encoding", "base64", "is not a text encoding"),
        ("--sep", "", "separator '' is empty"),
    ],
)
def test_reader_options_that_cannot_read_text_are_one_line(cli, data, tmp_path, option, value, message):
    fails(cli("ingest", data["csv"], option, value, "--out", tmp_path / "o"), message)
    assert not (tmp_path / "o").exists()


def test_a_rejects_folder_is_refused_before_reading(cli, data, tmp_path):
    (tmp_path / "rej").mkdir()
    fails(cli("ingest", data["csv"], "--rejects", tmp_path / "rej", "--out", tmp_path / "o"), "is a folder")
    assert not (tmp_path / "o").exists()


def test_rules_that_remove_every_row_write_nothing(cli, tmp_path):
    """The taobao recipe keeps the nine days of the competition: a file from other days used to give an
    empty EventLog with exit 0."""
    raw = tmp_path / "UserBehavior.csv"
    raw.write_text("".join(f"{u},{u + 10},5,pv,{1_400_000_000 + u}\n" for u in range(20)))
    res = cli("ingest", raw, "--recipe", "taobao", "--out", tmp_path / "o")
    fails(res, "no events left to write", "outside the nine days")
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------------- training never saves non-finite weights
@pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
def test_a_non_finite_learning_rate_is_refused(cli, data, tmp_path, value):
    res = cli("train", "--data", data["csv"], "--kind", "sasrec", "-p", f"lr={value}", "--out", tmp_path / "m")
    fails(res, "lr")
    assert not (tmp_path / "m").exists()


def test_a_diverging_run_stops_with_one_line_and_saves_nothing(tmp_path):
    """Inputs of 1e20 make the squared loss overflow: the trainer stops at the first epoch, before any
    validation or checkpoint, with the error the CLI prints as one line."""
    import torch

    from chronorec.errors import DivergedError
    from chronorec.training.settings import TrainSettings
    from chronorec.training.trainer import train

    torch.manual_seed(0)
    module = torch.nn.Linear(4, 1)
    x = torch.full((8, 4), 1e20)

    def loss_fn(m, batch):
        return (m(batch) ** 2).mean()

    validated = []
    settings = TrainSettings(epochs=3, progress=False, grad_clip=None, checkpoint_dir=str(tmp_path / "ck"))
    with pytest.raises(DivergedError, match="training diverged at epoch 1 .*lower the learning rate"):
        train(module, batches=lambda e, rng: [x], loss_fn=loss_fn, validate=lambda: validated.append(1) or 0.0,
              settings=settings)  # fmt: skip
    assert validated == [] and not (tmp_path / "ck").exists()


# ---------------------------------------------------------------------- keys an operator can use
@pytest.mark.parametrize("raw", ["\ufeffs3cret", "  s3cret \n", "s3cret\r\n"])
def test_an_api_key_is_cleaned_of_bom_and_whitespace(raw):
    assert ServeSettings(api_key=raw).key() == "s3cret"


@pytest.mark.parametrize("raw", ["clé", "a\nb", "tab\tkey", "   ", "\ufeff"])
def test_an_api_key_no_client_could_send_is_refused(raw):
    with pytest.raises(ValueError, match="printable ASCII|empty"):
        clean_api_key(raw)


def test_a_key_file_with_a_bom_and_crlf_gives_the_plain_key(cli, data, tmp_path):
    from chronorec.cli.serve import _api_key

    f = tmp_path / "key.txt"
    f.write_bytes(b"\xef\xbb\xbfs3cret \r\n")
    assert _api_key(ServeSettings(api_key_file=f)) == "s3cret"
    f.write_bytes("clé\n".encode())
    from chronorec.errors import ConfigError

    with pytest.raises(ConfigError, match="printable ASCII"):
        _api_key(ServeSettings(api_key_file=f))


def test_health_shows_the_model_folder_only_with_the_key(data, tmp_path):
    from fastapi.testclient import TestClient

    from chronorec.serving.app import create_app

    with TestClient(create_app(data["pop"], state_dir=tmp_path / "live", api_key="s3cret")) as c:
        anonymous = c.get("/health").json()
        assert anonymous["status"] == "ok" and "model_dir" not in anonymous
        assert str(tmp_path) not in str(anonymous) and str(data["root"]) not in str(anonymous)
        assert c.get("/health", headers={"X-API-Key": "s3cret"}).json()["model_dir"] == str(data["pop"])


# ---------------------------------------------------------------------- safe recipes
def _recipe_ingest(cli, tmp_path, recipe: str, rows: str):
    (tmp_path / "r.yaml").write_text(recipe)
    (tmp_path / "e.csv").write_text("user_id,item_id,timestamp,description\n" + rows)
    return cli("ingest", tmp_path / "e.csv", "--recipe", tmp_path / "r.yaml", "--out", tmp_path / "o")


def test_a_backtracking_regex_runs_in_linear_time(cli, tmp_path):
    """``^(\\w+\\s?)*$`` on a 30-word line that does not match backtracks for minutes in Python's ``re``;
    the linear-time engine answers at once (the test would time out otherwise)."""
    words = " ".join(["word"] * 30) + " !"
    rows = "".join(f"{u},{u},{1_600_000_000 + u},{words if u % 2 else 'plain text'}\n" for u in range(40))
    recipe = "rules:\n  - name: wordy\n    drop: {column: description, regex: '^(\\w+\\s?)*$'}\n"
    res = _recipe_ingest(cli, tmp_path, recipe, rows)
    assert res.exit_code == 0, res.output
    assert "wordy" in res.output  # the 20 plain-text rows matched and were removed, the others kept


def test_a_regex_the_linear_engine_cannot_run_is_refused(cli, tmp_path):
    recipe = "rules:\n  - name: back\n    drop: {column: description, regex: '(a)\\1'}\n"
    res = _recipe_ingest(cli, tmp_path, recipe, "1,1,1600000000,aa\n")
    fails(res, "invalid regex", "back-references")


def test_nested_yaml_aliases_are_refused_at_once(cli, tmp_path):
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 12)]
    recipe = "\n".join(levels) + "\nrules: []\n"
    res = _recipe_ingest(cli, tmp_path, recipe, "1,1,1600000000,a\n")
    fails(res, "expands to more than 100,000 values")


def test_a_quote_in_a_column_name_is_a_name_not_sql(cli, tmp_path):
    pytest.importorskip("duckdb")
    raw = tmp_path / "q.csv"
    raw.write_text('us"er,item_id,timestamp,behavior\n1,2,1600000000,pv\n2,3,1600000100,pv\n1,3,1600000200,buy\n')
    res = cli("store", "build", raw, "--out", tmp_path / "st", "--user-col", 'us"er')
    assert res.exit_code == 0, res.output
    assert "2 users, 2 items" in res.output


# ---------------------------------------------------------------------- cost checked before it is paid
def test_a_huge_embedding_width_is_refused_before_allocating(cli, data, tmp_path):
    res = cli("train", "--data", data["csv"], "--kind", "sasrec", "-p", "dim=100000000", "--out", tmp_path / "m")
    fails(res, "dim: Input should be less than or equal to 16384")
    # within the bound, the memory check answers: 12 x 16384^2 weights per layer and their Adam moments
    res = cli("train", "--data", data["csv"], "--kind", "sasrec", "-p", "dim=16384", "-p", "layers=8")
    fails(res, "needs about", "GiB", "lower -p dim")
    assert "epoch 1" not in res.output


def test_a_synthetic_log_larger_than_memory_is_refused_at_once(cli, tmp_path):
    res = cli("datasets", "synth", "--items", "3G", "--out", tmp_path / "s")
    fails(res, "3,000,000,000 items", "needs about", "lower --items")
    assert not (tmp_path / "s").exists()


# ---------------------------------------------------------------------- event stores are verified at open
@pytest.fixture
def store(cli, data, tmp_path):
    pytest.importorskip("duckdb")
    res = cli("store", "build", data["csv"], "--out", tmp_path / "st", "--behavior-col", "")
    assert res.exit_code == 0, res.output
    return tmp_path / "st"


def _train_on(cli, store, tmp_path):
    return cli("train", "--data", store, "--kind", "popular", "--out", tmp_path / "m")


def test_an_intact_store_trains(cli, store, tmp_path):
    assert _train_on(cli, store, tmp_path).exit_code == 0


def test_offsets_that_are_not_monotone_are_refused(cli, store, tmp_path):
    import numpy as np

    off = np.load(store / "sequences" / "offsets.npy")
    off[[2, 3]] = off[[3, 2]]
    np.save(store / "sequences" / "offsets.npy", off)  # same size: only the checksum and shape tell
    fails(_train_on(cli, store, tmp_path), "offsets.npy does not match its checksum")


def test_a_store_json_claiming_more_events_is_refused(cli, store, tmp_path):
    import json

    meta = json.loads((store / "store.json").read_text())
    meta["n_events"] *= 3
    (store / "store.json").write_text(json.dumps(meta))
    fails(_train_on(cli, store, tmp_path), "not monotone from 0 to the")
    assert not (tmp_path / "m").exists()


def test_item_ids_outside_the_catalogue_are_refused(cli, store, tmp_path):
    import json

    import numpy as np

    items = np.load(store / "sequences" / "items.npy")
    items[5] = 10_000
    np.save(store / "sequences" / "items.npy", items)
    meta = json.loads((store / "store.json").read_text())
    meta["files"]["sequences/items.npy"].pop("sha256")  # as for an array too large to hash
    (store / "store.json").write_text(json.dumps(meta))
    fails(_train_on(cli, store, tmp_path), "item ids outside the catalogue")


def test_a_truncated_array_is_refused(cli, store, tmp_path):
    p = store / "sequences" / "timestamps.npy"
    p.write_bytes(p.read_bytes()[:-16])
    fails(_train_on(cli, store, tmp_path), "timestamps.npy has", "bytes")


def test_a_history_id_beyond_64_bits_is_answered_as_an_id(data, tmp_path):
    from fastapi.testclient import TestClient

    from chronorec.serving.app import create_app

    with TestClient(create_app(data["pop"], state_dir=tmp_path / "live")) as c:
        r = c.post("/recommend", json={"history": [2**70], "k": 3})
        assert r.status_code == 422
        assert "history.0" in r.json()["error"] and "less than or equal to 9223372036854775807" in r.json()["error"]
        assert "dictionary" not in r.text
        assert c.post("/recommend", json={"history": [3, "i0001", {"item_id": 4}], "k": 3}).status_code == 200


@pytest.mark.parametrize("command", ["train", "ingest"])
def test_an_output_under_proc_is_refused_before_the_work_naming_the_target(cli, data, command):
    """It used to fail after training, naming an internal temporary folder (``/proc/.x.tmp-...``)."""
    if command == "train":
        res = cli("train", "--data", data["csv"], "--kind", "popular", "--out", "/proc/chronorec-x")
        assert "Training" not in res.output
    else:
        res = cli("ingest", data["csv"], "--out", "/proc/chronorec-x")
    line = fails(res, "cannot write /proc/chronorec-x")
    assert ".tmp-" not in line and ".probe-" not in line


def test_an_ensemble_of_models_on_different_catalogues_is_one_line(cli, data, tmp_path):
    other = tmp_path / "other.csv"
    other.write_text("user_id,item_id,timestamp\n1,2,1600000000\n1,3,1600000100\n")
    assert cli("train", "--data", other, "--kind", "popular", "--out", tmp_path / "p2").exit_code == 0
    res = cli("ensemble", data["pop"], tmp_path / "p2", "--out", tmp_path / "ens")
    fails(res, "fitted on another catalogue", "trained on the same data")
    assert not (tmp_path / "ens").exists()


def test_distributed_training_checks_its_options_once_before_starting_workers(cli, data, tmp_path):
    res = cli("train", "--data", data["csv"], "--kind", "bogus", "--nproc-per-node", "2", "--out", tmp_path / "m")
    line = fails(res, "unknown model kind 'bogus'")
    assert res.output.count("unknown model kind") == 1 and "rank" not in line
    res = cli("train", "--data", data["csv"], "--kind", "popular", "--nproc-per-node", "0", "--out", tmp_path / "m")
    assert res.exit_code == 2 and "--nproc-per-node" in res.output  # click's range check: 1..1024
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("bad", [[True], [False], [2**64], [1.0]])
def test_predict_behavior_user_ids_take_json_types_as_they_are(bad):
    """``[true]`` was answered 200 for user "1"."""
    from pydantic import ValidationError

    from chronorec.serving.behavior import BehaviorRequest

    with pytest.raises(ValidationError):
        BehaviorRequest.model_validate({"user_ids": bad})
    assert BehaviorRequest.model_validate({"user_ids": [7, "u1"]}).user_ids == [7, "u1"]


# ---------------------------------------------------------------------- forecast inputs
@pytest.mark.parametrize(
    ("cell", "message"),
    [("", "'y' is missing, not a number or infinite"), ("inf", "infinite"), ("many", "not a number")],
)
def test_a_series_value_that_is_not_a_finite_number_is_refused(cli, tmp_path, cell, message):
    """NaN used to be read as 0 sales (an all-NaN series forecast as zeros) and inf gave [0, inf] bands."""
    rows = "".join(f"a,2024-01-{d:02d},{d % 3}\n" for d in range(1, 29)) + f"a,2024-01-29,{cell}\n"
    (tmp_path / "s.csv").write_text("series_id,period,y\n" + rows)
    res = cli("forecast", "--series", tmp_path / "s.csv", "--out", tmp_path / "fc")
    fails(res, "1 of 29 rows where", message, "row 30")
    assert not (tmp_path / "fc").exists()


def test_a_period_that_is_not_a_date_is_refused(cli, tmp_path):
    rows = "".join(f"a,2024-01-{d:02d},{d % 3}\n" for d in range(1, 29)) + "a,someday,1\n"
    (tmp_path / "s.csv").write_text("series_id,period,y\n" + rows)
    fails(cli("forecast", "--series", tmp_path / "s.csv", "--out", tmp_path / "fc"), "'period' is not a date-time")
