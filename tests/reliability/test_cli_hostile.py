"""Hostile command lines: each gets one ``error: ...`` line naming the problem and exit code 1 (never
a traceback, never exit 0 with a useless result), and nothing is written or changed."""

from __future__ import annotations

import pytest

from ._models import events_csv, save_popular, save_sasrec, scores
from .conftest import one_line_error, snapshot


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    return {
        "csv": events_csv(root / "events.csv"),
        "pop": save_popular(root / "popular"),
        "sasrec": save_sasrec(root / "sasrec"),
    }


def fails(res, *expected: str) -> str:
    """The result is exit 1 with one error line holding every ``expected`` text, and no traceback."""
    assert res.exit_code == 1, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    line = one_line_error(res.output)
    for text in expected:
        assert text in line or text in res.output, res.output
    return line


def train(cli, data, out, *args):
    return cli("train", "--data", data["csv"], "--out", out, "--no-progress", *args)


# ---------------------------------------------------------------------- model parameters
@pytest.mark.parametrize(
    ("kind", "param", "message"),
    [
        ("sasrec", "dim=-5", "dim: Input should be greater than or equal to 1"),
        ("sasrec", "dim=0", "dim: Input should be greater than or equal to 1"),
        ("sasrec", "layers=0", "layers: Input should be greater than or equal to 1"),
        ("sasrec", "heads=0", "heads: Input should be greater than or equal to 1"),
        ("sasrec", "heads=3", "dim 64 must be divisible by heads 3"),
        ("bert4rec", "heads=0", "heads: Input should be greater than or equal to 1"),
        ("bert4rec", "mask_prob=0", "mask_prob: Input should be greater than 0"),
        ("gru4rec", "layers=0", "layers: Input should be greater than or equal to 1"),
        ("gru4rec", "dropout=2", "dropout: Input should be less than 1"),
        ("sasrec", "max_len=0", "max_len: Input should be greater than or equal to 1"),
        ("sasrec", "batch_size=0", "batch_size: Input should be greater than or equal to 1"),
        ("sasrec", "lr=0", "lr: Input should be greater than 0"),
        ("ease", "l2=-1", "l2: Input should be greater than 0"),
        ("itemknn", "neighbours=0", "neighbours: Input should be greater than or equal to 1"),
        ("popular", "recent_share=0", "recent_share: Input should be greater than 0"),
        ("sasrec", "nosuch=1", "nosuch: Extra inputs are not permitted"),
    ],
)
def test_a_parameter_that_cannot_train_is_refused_before_training(cli, data, tmp_path, kind, param, message):
    res = train(cli, data, tmp_path / "m", "--kind", kind, "-p", param)
    fails(res, message)
    assert "Training" not in res.output
    assert not (tmp_path / "m").exists()


def test_zero_epochs_is_refused_not_an_untrained_model(cli, data, tmp_path):
    res = train(cli, data, tmp_path / "m", "--kind", "sasrec", "--epochs", "0")
    fails(res, "epochs: Input should be greater than or equal to 1")
    assert not (tmp_path / "m").exists()


def test_a_param_without_a_value_is_refused(cli, data, tmp_path):
    fails(train(cli, data, tmp_path / "m", "--kind", "sasrec", "-p", "dim"), "--param 'dim': expected key=value")


def test_a_yaml_tag_in_a_param_is_refused_and_never_run(cli, data, tmp_path):
    marker = tmp_path / "ran"
    value = f'dim=!!python/object/apply:os.system ["touch {marker}"]'
    line = fails(train(cli, data, tmp_path / "m", "--kind", "sasrec", "-p", value))
    assert "could not determine a constructor for the tag" in line
    assert not marker.exists()


def test_a_yaml_tag_in_a_config_file_is_refused_and_never_run(cli, data, tmp_path):
    marker = tmp_path / "ran"
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f'seed: !!python/object/apply:os.system ["touch {marker}"]\n')
    line = fails(train(cli, data, tmp_path / "m", "--kind", "popular", "--config", cfg))
    assert f"{cfg}: cannot parse: could not determine a constructor" in line
    assert not marker.exists()


def test_a_folder_as_config_is_refused(cli, data, tmp_path):
    fails(train(cli, data, tmp_path / "m", "--kind", "popular", "--config", tmp_path), "is a folder, not a config file")


def test_a_binary_config_file_is_refused(cli, data, tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_bytes(b"\xff\xfe\x00\x01")
    fails(train(cli, data, tmp_path / "m", "--kind", "popular", "--config", cfg), "cannot read the config file")


def test_a_missing_config_file_is_refused(cli, data, tmp_path):
    fails(
        train(cli, data, tmp_path / "m", "--kind", "popular", "--config", tmp_path / "no.yaml"), "config file not found"
    )


# ---------------------------------------------------------------------- ids and outputs
@pytest.mark.parametrize("option", ["--users", "--history"])
def test_an_id_beyond_64_bits_is_refused(cli, tmp_path, option):
    d = tmp_path / "pop"
    from chronorec.data.eventlog import EventLog
    from chronorec.models.baselines.popular import MostPopular

    MostPopular().fit(EventLog.from_sequences({1: [1, 2, 3], 2: [2, 3]})).save(d)  # integer ids
    res = cli("recommend", "--model", d, option, "99999999999999999999999")
    fails(res, "id 99999999999999999999999 is out of range: this model's ids are 64-bit integers")


def test_a_history_of_only_unknown_items_warns(cli, data):
    res = cli("recommend", "--model", data["pop"], "--history", "nosuch1,nosuch2")
    assert res.exit_code == 0, res.output
    assert "none of its items is known to the model" in res.output
    assert "answered from popularity" in res.output


def test_out_naming_an_existing_file_is_refused_and_the_file_kept(cli, data, tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("keep me")
    res = train(cli, data, f, "--kind", "popular")
    fails(res, "exists and is not a folder")
    assert "Training" not in res.output  # refused before any training, not after it
    assert f.read_text() == "keep me"


def test_out_naming_a_folder_that_is_not_a_model_is_refused_and_kept(cli, data, tmp_path):
    d = tmp_path / "mine"
    d.mkdir()
    (d / "thesis.tex").write_text("years of work")
    fails(train(cli, data, d, "--kind", "popular"), "is a non-empty folder without manifest.json")
    assert snapshot(d) == {"thesis.tex": b"years of work"}


def test_out_over_a_model_replaces_it_whole(cli, data, tmp_path):
    import shutil

    d = tmp_path / "m"
    shutil.copytree(data["sasrec"], d)
    res = train(cli, data, d, "--kind", "popular")
    assert res.exit_code == 0, res.output
    from chronorec.models.registry import load

    assert type(load(d)).__name__ == "MostPopular"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary folder left


def test_a_missing_model_folder_is_one_line(cli, tmp_path):
    fails(cli("recommend", "--model", tmp_path / "nope", "--users", "1"), "no manifest.json")


# ---------------------------------------------------------------------- benchmark and serve
def test_an_unknown_benchmark_dataset_lists_the_known_ones(cli, tmp_path):
    fails(
        cli("benchmark", "--datasets", "nope", "--out", tmp_path / "b"),
        "no benchmark presets for dataset 'nope'",
        "known: ",
    )
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("port", ["70000", "0", "-1"])
def test_serve_on_an_impossible_port_is_refused_before_serving(cli, data, port):
    res = cli("serve", "--model", data["pop"], "--port", port)
    fails(res, "serve.port")
    assert "Serving" not in res.output


def test_serve_with_an_empty_api_key_file_is_refused(cli, data, tmp_path):
    key = tmp_path / "key"
    key.write_text("\n")
    res = cli("serve", "--model", data["pop"], "--api-key-file", key)
    fails(res, "the first line is empty")
    assert "Serving" not in res.output


def test_a_good_model_is_unchanged_by_all_of_the_above(data):
    assert scores(data["sasrec"]).shape == (15, 2)
