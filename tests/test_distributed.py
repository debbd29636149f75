"""Data-parallel training with 2 CPU processes (gloo): each rank trains on its rows of every global batch,
gradients are averaged, rank 0 validates and checkpoints; the result learns the planted transitions and
matches a 1-process run with the same global batch (tolerance below); every sequence model keeps its ranks'
weights identical; resume continues the 2-process run; ``chronorec train --nproc-per-node 2`` saves once."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from chronorec.training import distributed as dist

TOLERANCE = 0.04  # |NDCG@10 (2 processes) - NDCG@10 (1 process)|, same global batch, seed and data
SASREC = {
    "dim": 32,
    "max_len": 30,
    "lr": 3e-3,
    "batch_size": 64,
    "dropout": 0.0,
    "progress": False,
    "seed": 1,
    "threads": 1,
}
EPOCHS = 8

WORKER = textwrap.dedent(
    """
    import json, sys, torch
    from chronorec.datasets.synthetic import make_sequences
    from chronorec.evaluation.ranking import evaluate_ranking
    from chronorec.evaluation.split import leave_one_out
    from chronorec.models import registry
    from chronorec.training import distributed

    out, ck, sasrec, epochs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4])
    sp = leave_one_out(make_sequences(n_users=400, n_items=120, seed=0, mean_length=25))
    rank = distributed.rank()
    # interrupted after 3 epochs, then resumed to the end
    registry.get("sasrec")(epochs=3, checkpoint_dir=ck, **sasrec).fit(sp.train, validation=sp.validation)
    m = registry.get("sasrec")(epochs=epochs, checkpoint_dir=ck, resume=True, **sasrec)
    m.fit(sp.train, validation=sp.validation)
    res = {"history": m.fit_info["history"], "best": m.fit_info["best_val_ndcg10"],
           "test": evaluate_ranking(m.score, sp.test, n_items=sp.train.n_items, ks=(10,))["NDCG@10"],
           "sums": {"sasrec": float(sum(p.double().sum() for p in m.module.parameters()))}}
    small = {"dim": 16, "max_len": 20, "epochs": 1, "progress": False, "batch_size": 50}
    for kind, extra in [("gru4rec", {}), ("bert4rec", {}), ("hstu", {}), ("sasrec", {"loss": "sampled", "n_negatives": 20})]:
        k = registry.get(kind)(**small, **extra).fit(sp.train, validation=sp.validation)
        res["sums"][kind + str(extra)] = float(sum(p.double().sum() for p in k.module.parameters()))
    json.dump(res, open(f"{out}/rank{rank}.json", "w"))
    distributed.shutdown()
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    port = free_port()
    procs = []
    for r in range(2):
        env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": "2",
               "RANK": str(r), "LOCAL_RANK": str(r), "OMP_NUM_THREADS": "1", "CHRONOREC_NO_PROGRESS": "1"}  # fmt: skip
        args = [sys.executable, "-c", WORKER, str(out), str(out / "ck"), json.dumps(SASREC), str(EPOCHS)]
        procs.append(subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    logs = [p.communicate(timeout=240)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n\n".join(log[-3000:] for log in logs)
    return out, [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]


def test_shard_rows_cover_the_batch_once_and_pad_small_batches():
    assert [dist.shard_rows(5, r, 2).tolist() for r in range(2)] == [[0, 2, 4], [1, 3]]
    assert [dist.shard_rows(1, r, 2).tolist() for r in range(2)] == [[0], [0]]  # padded: both ranks step
    batch = {"items": torch.arange(10).view(5, 2), "feats": {"hour": np.arange(5)}, "n": 3, "none": None}
    part = dist.shard_batch(batch, 1, 2)
    assert part["items"].tolist() == [[2, 3], [6, 7]] and part["feats"]["hour"].tolist() == [1, 3]
    assert part["n"] == 3 and part["none"] is None
    assert dist.strip_option(["train", "--nproc-per-node", "2", "--kind", "x", "--nproc-per-node=3"],
                             "--nproc-per-node") == ["train", "--kind", "x"]  # fmt: skip


def test_not_distributed_everything_is_a_no_op():
    assert not dist.active() and dist.rank() == 0 and dist.world_size() == 1 and dist.is_main()
    assert dist.on_main(lambda: 0.5) == 0.5 and dist.agree(False) is False
    batches = [1, 2]
    assert dist.shard_batches(batches) is batches


def test_two_processes_learn_and_match_one_process(two_ranks):
    from chronorec.datasets.synthetic import make_sequences
    from chronorec.evaluation.ranking import evaluate_ranking
    from chronorec.evaluation.split import leave_one_out
    from chronorec.models import registry

    out, (r0, r1) = two_ranks
    sp = leave_one_out(make_sequences(n_users=400, n_items=120, seed=0, mean_length=25))
    one = registry.get("sasrec")(epochs=EPOCHS, **SASREC).fit(sp.train, validation=sp.validation)
    one_test = evaluate_ranking(one.score, sp.test, n_items=sp.train.n_items, ks=(10,))["NDCG@10"]
    pop = evaluate_ranking(registry.get("popular")().fit(sp.train).score, sp.test, n_items=sp.train.n_items, ks=(10,))
    print(f"test NDCG@10: 2 processes {r0['test']:.4f}, 1 process {one_test:.4f}, popular {pop['NDCG@10']:.4f}; "
          f"best validation: {r0['best']:.4f} vs {one.fit_info['best_val_ndcg10']:.4f}")  # fmt: skip
    assert r0["test"] - pop["NDCG@10"] > 0.15  # learns the planted transitions
    assert abs(r0["test"] - one_test) < TOLERANCE, (r0["test"], one_test)
    assert abs(r0["best"] - one.fit_info["best_val_ndcg10"]) < TOLERANCE
    # rank 0 validated and broadcast: both ranks took the same decisions on the same metric
    assert [h.get("val_ndcg10") for h in r0["history"]] == [h.get("val_ndcg10") for h in r1["history"]]
    assert r0["test"] == r1["test"]


def test_every_sequence_model_keeps_its_ranks_identical(two_ranks):
    _, (r0, r1) = two_ranks
    assert len(r0["sums"]) == 5
    for kind, value in r0["sums"].items():
        assert value == pytest.approx(r1["sums"][kind], rel=1e-6, abs=1e-6), kind


def test_resume_continues_the_two_process_run(two_ranks):
    out, (r0, _) = two_ranks
    assert [h["epoch"] for h in r0["history"]] == list(range(1, EPOCHS + 1))  # 3 before the stop, 5 resumed
    from chronorec.training import checkpoint

    assert checkpoint.exists(out / "ck")


def test_cli_nproc_per_node_saves_once(tmp_path):
    from chronorec.datasets.synthetic import make_sequences

    make_sequences(n_users=120, n_items=40, seed=0, mean_length=12).save(tmp_path / "data")
    env = {**os.environ, "CHRONOREC_NO_PROGRESS": "1"}
    cmd = [sys.executable, "-m", "chronorec", "train", "--data", str(tmp_path / "data"), "--kind", "gru4rec",
           "--epochs", "1", "-p", "dim=8", "--out", str(tmp_path / "m"), "--nproc-per-node", "2"]  # fmt: skip
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("Saved the model to") == 1 and "Trained in 2 processes" in res.stdout
    assert (Path(tmp_path / "m") / "manifest.json").exists() or any((tmp_path / "m").iterdir())
