"""kill -9 at random moments while a model is saved over an existing one, while a checkpoint is
written and while live events are committed: what is left is always whole (the old or the new model
with the service's live/ state, a checkpoint whose weights and progress name the same epoch, every
acknowledged event and no half batch; a retried batch is stored once). Two kills per write path here;
``benchmarks/crash.py --kills 20`` runs the same checks at length (docs/reliability.md); the harness
is chronorec.testing.crash."""

from __future__ import annotations

import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kill -9 semantics of Linux")


@pytest.fixture(scope="module")
def crash():
    from chronorec.testing import crash

    return crash


@pytest.mark.parametrize("path", ["model", "checkpoint", "events"])
def test_kill_9_while_writing_leaves_a_whole_version(crash, tmp_path, path):
    res = crash.run_path(path, kills=2, seed=7, root=tmp_path / path)
    assert res["failures"] == []
    assert res["survivors"] == 2


def test_the_checks_catch_a_broken_model_folder(crash, tmp_path):
    """The crash check is not vacuous: a folder cut in half (as a non-atomic save would) fails it."""
    root = tmp_path / "model"
    root.mkdir()
    ctx = crash.model_setup(root)
    (root / "model" / "model.safetensors").write_bytes(b"half")
    assert "unloadable" in crash.model_check(root, ctx, 1)


def test_the_checks_catch_a_checkpoint_mixing_two_epochs(crash, tmp_path):
    import torch

    from chronorec.training import checkpoint as ck

    module = crash.toy_module()
    opt = torch.optim.AdamW(module.parameters())
    for epoch in (1, 2):
        with torch.no_grad():
            for p in module.parameters():
                p.fill_(float(epoch))
        ck.save(tmp_path / "ck", module, ck.module_tensors(module), opt, ck.Checkpoint(epoch, epoch, 0.0, 0, 0.0))
    ck._write(tmp_path / "ck" / "state", module, ck.module_tensors(module), opt, ck.Checkpoint(1, 1, 0.0, 0, 0.0))
    assert "progress says epoch 1, weights hold [2.0]" in crash.checkpoint_check(tmp_path, {}, 1)


def test_the_checks_catch_a_lost_acknowledged_batch(crash, tmp_path):
    from chronorec.serving.store import LiveEventStore

    store = LiveEventStore(tmp_path / "live")
    store.append([{"user_id": 0, "item_id": j, "timestamp": 1} for j in range(crash.BATCH)])
    store.close()
    assert crash.events_check(tmp_path, {}, 2) == "2 batches acknowledged, 1 stored"
