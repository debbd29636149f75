"""Resuming from checkpoints: a checkpoint of another run (another dim, another dataset), a damaged
one, or none at all is one CheckpointError (CLI: one line, exit 1) that changes nothing; a true
resumption -- also after kill -9 in the middle of an epoch -- ends byte-identical to a run that was
never interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from chronorec.errors import CheckpointError
from chronorec.models.sequential.sasrec import SASRec

from ._models import SASREC, events_csv, small_log
from .conftest import one_line_error, snapshot


def fit(ck: Path, log=None, **params):
    return SASRec(**{**SASREC, "checkpoint_dir": str(ck), **params}).fit(log or small_log())


@pytest.fixture()
def ck(tmp_path):
    d = tmp_path / "ck"
    fit(d, epochs=2)
    return d


def refused(ck: Path, message: str, **params) -> CheckpointError:
    before = snapshot(ck) if ck.is_dir() else None
    with pytest.raises(CheckpointError, match=message) as e:
        fit(ck, resume=True, epochs=3, **params)
    assert "\n" not in str(e.value)
    if before is not None:
        assert snapshot(ck) == before
    return e.value


def test_the_checkpoint_carries_the_runs_fingerprint(ck):
    meta = json.loads((ck / "state" / "trainer.json").read_text())
    fp = meta["fingerprint"]
    assert fp["config"]["dim"] == 8 and "epochs" not in fp["config"] and "checkpoint_dir" not in fp["config"]
    assert fp["data"]["n_items"] == 20
    # the one data fingerprint: the one the model's training_data (config.json) records
    assert fp["data"]["fingerprint"] == fit(ck, resume=True, epochs=2).training_data["fingerprint"]


def _old_data_record(ck: Path, **sizes) -> None:
    """Rewrite the checkpoint's data record as an older chronorec wrote it (hashes of the sequences and
    of the catalogue instead of the data fingerprint)."""
    path = ck / "state" / "trainer.json"
    meta = json.loads(path.read_text())
    data = meta["fingerprint"]["data"]
    del data["fingerprint"]
    data.update({"sequences": "0123456789abcdef", "catalogue": "fedcba9876543210", **sizes})
    path.write_text(json.dumps(meta))


def test_a_checkpoint_of_an_older_chronorec_resumes_on_its_sizes(ck, caplog):
    _old_data_record(ck)
    with caplog.at_level("WARNING", logger="chronorec.training.checkpoint"):
        m = fit(ck, resume=True, epochs=3)
    assert [h["epoch"] for h in m.fit_info["history"]] == [1, 2, 3]
    assert "written by an older chronorec" in caplog.text


def test_a_checkpoint_of_an_older_chronorec_with_other_sizes_is_refused(ck):
    _old_data_record(ck, n_events=1)
    refused(ck, r"data n_events: 1 in the checkpoint, \d+ now")


def test_another_dim_is_refused(ck):
    refused(ck, r"written by another run \(config dim: 8 in the checkpoint, 16 now", dim=16)


def test_another_architecture_setting_is_refused(ck):
    refused(ck, r"config layers: 1 in the checkpoint, 2 now", layers=2)


def test_another_dataset_is_refused(ck):
    with pytest.raises(CheckpointError, match=r"data n_events: \d+ in the checkpoint, \d+ now"):
        fit(ck, log=small_log(seed=0, n_users=20), resume=True, epochs=3)


def test_another_dataset_of_the_same_shape_is_refused(ck):
    before = snapshot(ck)
    with pytest.raises(CheckpointError, match=r"data fingerprint: '[0-9a-f]{12}\.\.\.' in the checkpoint"):
        fit(ck, log=small_log(seed=1), resume=True, epochs=3)
    assert snapshot(ck) == before


def test_run_settings_may_change_on_resume(ck):
    m = fit(ck, resume=True, epochs=3, threads=1, progress=False)
    assert [h["epoch"] for h in m.fit_info["history"]] == [1, 2, 3]


@pytest.mark.parametrize(
    ("name", "cut", "message"),
    [
        ("last.safetensors", 100, r"last\.safetensors: corrupt or truncated checkpoint file \(weights"),
        ("best.safetensors", 0, r"best\.safetensors: corrupt or truncated checkpoint file \(best weights"),
        ("optimizer.safetensors", 50, r"optimizer\.safetensors: corrupt or truncated checkpoint file"),
        ("trainer.json", 30, r"trainer\.json: corrupt or truncated checkpoint file \(progress file"),
    ],
)
def test_a_truncated_checkpoint_file_is_refused_naming_it(ck, name, cut, message):
    f = ck / "state" / name
    f.write_bytes(f.read_bytes()[:cut])
    e = refused(ck, message)
    assert "run without --resume" in str(e)


def test_a_missing_checkpoint_file_is_refused(ck):
    (ck / "state" / "torch_rng.safetensors").unlink()
    refused(ck, r"torch_rng\.safetensors: a checkpoint file \(random generator state\) is missing")


def test_a_progress_file_of_the_wrong_shape_is_refused(ck):
    (ck / "state" / "trainer.json").write_text("[1, 2]")
    refused(ck, r"trainer\.json: corrupt or truncated checkpoint file \(progress file: not a JSON object")


def test_resume_from_an_empty_folder_is_refused_not_a_fresh_start(tmp_path):
    (tmp_path / "empty").mkdir()
    refused(tmp_path / "empty", r"--resume: no checkpoint in .*empty; run without --resume")
    assert list((tmp_path / "empty").iterdir()) == []


def test_resume_from_a_missing_folder_is_refused(tmp_path):
    refused(tmp_path / "nowhere", r"--resume: no checkpoint in")


def test_the_cli_reports_another_runs_checkpoint_in_one_line(cli, tmp_path):
    csv = events_csv(tmp_path / "events.csv")
    base = ["train", "--data", csv, "--kind", "sasrec", "-p", "max_len=8", "--no-progress", "--checkpoint-dir"]
    assert cli(*base, tmp_path / "ck", "-p", "dim=8", "--epochs", "1", "--out", tmp_path / "m1").exit_code == 0
    res = cli(*base, tmp_path / "ck", "-p", "dim=16", "--epochs", "2", "--resume", "--out", tmp_path / "m2")
    assert res.exit_code == 1
    assert "config dim: 8 in the checkpoint, 16 now" in one_line_error(res.output)
    assert not (tmp_path / "m2").exists()


def test_the_cli_refuses_resume_without_a_checkpoint(cli, tmp_path):
    csv = events_csv(tmp_path / "events.csv")
    (tmp_path / "ck").mkdir()
    res = cli("train", "--data", csv, "--kind", "sasrec", "--epochs", "1", "--checkpoint-dir", tmp_path / "ck",
              "--resume", "--out", tmp_path / "m")  # fmt: skip
    assert res.exit_code == 1
    assert "--resume: no checkpoint in" in one_line_error(res.output)


# ---------------------------------------------------------------------- kill -9, then resume
RUN = """
import sys
from chronorec.datasets.synthetic import make_sequences
from chronorec.models.sequential.sasrec import SASRec
log = make_sequences(n_users=400, n_items=60, seed=3, mean_length=20)
m = SASRec(max_len=20, dim=32, layers=1, epochs=6, batch_size=16, seed=0, progress=False, threads=1,
           checkpoint_dir=sys.argv[1], resume=sys.argv[2] == "resume").fit(log)
m.save(sys.argv[3])
"""


def _run(*args: str, wait: bool = True) -> subprocess.Popen:
    env = {**os.environ, "PYTHONHASHSEED": "0", "CHRONOREC_NO_PROGRESS": "1"}
    p = subprocess.Popen([sys.executable, "-c", RUN, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if wait:
        assert p.wait(timeout=120) == 0, p.stderr.read().decode()[-2000:]
    return p


def _epoch(ck: Path) -> int:
    try:
        return json.loads((ck / "state" / "trainer.json").read_text())["epoch"]
    except (OSError, ValueError):
        return 0


def test_kill_9_mid_epoch_then_resume_is_byte_identical(tmp_path):
    from safetensors.numpy import load_file

    _run(str(tmp_path / "ck_full"), "fresh", str(tmp_path / "full"))
    ck = tmp_path / "ck"
    p = _run(str(ck), "fresh", str(tmp_path / "never"), wait=False)
    deadline = time.time() + 100
    while _epoch(ck) < 2 and p.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)  # into the next epoch
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert not (tmp_path / "never").exists(), "the run ended before the kill: make it longer"
    assert 2 <= _epoch(ck) < 6
    _run(str(ck), "resume", str(tmp_path / "resumed"))
    a = load_file(str(tmp_path / "full" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k
