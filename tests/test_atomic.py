"""Saves are atomic: a model folder or a checkpoint is either the old one or the new one, whole;
a failed or killed save leaves the previous version loadable, and nothing stale survives."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from chronorec.artifacts import atomic_dir
from chronorec.data.eventlog import EventLog
from chronorec.errors import ConfigError
from chronorec.models.baselines.popular import MostPopular
from chronorec.models.registry import load

SEQS = {"u1": list("abcdef"), "u2": list("abcd"), "u3": list("abc"), "u4": list("ab")}


def _model(names: bool = False) -> MostPopular:
    log = EventLog.from_sequences(SEQS)
    if names:
        log.item_names = __import__("pandas").Series({i: f"name {i}" for i in range(1, log.n_items + 1)})
    return MostPopular().fit(log)


def _leftovers(parent) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_a_failed_save_leaves_the_previous_model_whole(tmp_path, monkeypatch):
    d = tmp_path / "pop"
    _model().save(d)
    before = {p.name: p.read_bytes() for p in d.iterdir()}

    import chronorec.models.base as base

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(base, "write_manifest", boom)
    with pytest.raises(OSError, match="disk full"):
        _model(names=True).save(d)
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before
    assert _leftovers(tmp_path) == []
    assert load(d).recommend(users=["u4"], k=2)["item_id"].tolist() == ["c", "d"]


def test_a_save_over_a_model_keeps_nothing_stale(tmp_path):
    d = tmp_path / "pop"
    _model(names=True).save(d)
    assert (d / "item_names.parquet").exists()
    _model(names=False).save(d)
    assert not (d / "item_names.parquet").exists()
    assert load(d).item_names is None
    assert _leftovers(tmp_path) == []


def test_a_service_state_folder_survives_a_save_over_the_model(tmp_path):
    d = tmp_path / "pop"
    _model().save(d)
    (d / "live").mkdir()
    (d / "live" / "events.sqlite").write_bytes(b"live events")
    _model().save(d)
    assert (d / "live" / "events.sqlite").read_bytes() == b"live events"


def test_a_non_model_folder_is_refused_not_replaced(tmp_path):
    d = tmp_path / "mine"
    d.mkdir()
    (d / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="non-empty folder without manifest.json"):
        _model().save(d)
    assert (d / "notes.txt").read_text() == "keep me"
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ConfigError, match="not a folder"):
        _model().save(f)


def test_atomic_dir_swaps_only_on_success(tmp_path):
    target = tmp_path / "t"
    with atomic_dir(target, marker="done") as d:
        (d / "done").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_dir(target, marker="done") as d:
            (d / "done").write_text("2")
            raise RuntimeError("interrupted")
    assert (target / "done").read_text() == "1"
    assert _leftovers(tmp_path) == []


_SAVER = """
import sys, time
from chronorec.data.eventlog import EventLog
from chronorec.models.baselines.popular import MostPopular
seqs = {f"u{u}": [f"i{(u * 7 + j) % 300}" for j in range(40)] for u in range(400)}
m = MostPopular().fit(EventLog.from_sequences(seqs))
print("ready", flush=True)
while True:
    m.save(sys.argv[1])
"""


def test_kill_9_during_saves_never_leaves_a_broken_model(tmp_path):
    d = tmp_path / "pop"
    _model().save(d)
    rng = np.random.default_rng(0)
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, "-c", _SAVER, str(d)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(float(rng.uniform(0.05, 0.6)))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        m = load(d)  # old or new, but always whole (the manifest's checksums hold)
        assert m.n_items in (6, 300)
    manifest = json.loads((d / "manifest.json").read_text())
    assert set(manifest["files"]) == {p.name for p in d.iterdir() if p.name != "manifest.json"}


def test_a_checkpoint_is_whole_after_a_failed_write(tmp_path, monkeypatch):
    import torch

    from chronorec.training import checkpoint as ck

    module = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(module.parameters())
    state = ck.Checkpoint(epoch=1, best_epoch=1, best_metric=0.5, bad_epochs=0, train_seconds=1.0)
    ck.save(tmp_path, module, ck.module_tensors(module), opt, state)
    epoch1 = ck.module_tensors(module)

    with torch.no_grad():
        module.weight.add_(1.0)  # epoch 2 changes the weights ...
    calls = {"n": 0}
    real = ck.save_tensors

    def fail_on_third(path, tensors):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("killed")
        real(path, tensors)

    monkeypatch.setattr(ck, "save_tensors", fail_on_third)
    with pytest.raises(OSError):  # ... and its checkpoint dies after the weights were written
        ck.save(tmp_path, module, ck.module_tensors(module), opt, ck.Checkpoint(2, 2, 0.6, 0, 2.0))
    monkeypatch.setattr(ck, "save_tensors", real)

    fresh = torch.nn.Linear(3, 2)
    restored, _ = ck.load(tmp_path, fresh, torch.optim.AdamW(fresh.parameters()))
    assert restored.epoch == 1
    assert torch.equal(fresh.weight, epoch1["weight"])  # the weights of the epoch the state names


def test_a_checkpoint_written_by_an_older_version_still_resumes(tmp_path):
    import torch

    from chronorec.training import checkpoint as ck

    module = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(module.parameters())
    ck._write(tmp_path, module, ck.module_tensors(module), opt, ck.Checkpoint(4, 3, 0.7, 1, 9.0))  # flat layout
    assert ck.exists(tmp_path)
    restored, _ = ck.load(tmp_path, torch.nn.Linear(3, 2), torch.optim.AdamW(module.parameters()))
    assert restored.epoch == 4
