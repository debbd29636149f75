"""RePlay's SasRec on a leave-one-out split, under a training-time budget: the peer side of
``benchmarks/peers.py``.

Runs in RePlay's own virtual environment (never chronorec's: see ``docs/benchmarks/peers.md``);
of chronorec it imports only ``chronorec.testing.replay_side`` (numpy and torch alone, none of the
library; ``benchmarks/peers.py`` puts ``src`` on its path). It reads a ``user item item ...`` file (one line per user, items
oldest first), splits it as chronorec's ``leave_one_out`` does (last item = test target,
second-to-last = validation target, the rest = training; users with fewer than 3 events train on
all of them and are not evaluated), trains RePlay's SasRec (``replay.nn.sequential.SasRec.from_params``
through ``replay.nn.lightning.LightningModule``, the data through RePlay's ``ParquetModule`` and
``make_default_sasrec_transforms``, a Lightning ``Trainer``: RePlay's own example pipeline) and
after every epoch scores the validation users over the full catalogue.

Timing and stopping follow chronorec's ``Trainer``: an epoch's seconds are its training steps
(data loading included, validation excluded); training stops once the training seconds spent
plus the mean epoch so far would pass ``--budget-s``. The model kept is the epoch with the best
validation NDCG@10 (history filtered, as chronorec chooses); test is read once, for that epoch,
with the history both filtered and not. Ranks are pessimistic (ties count against the target),
as in ``chronorec.evaluation.ranking``; ``tests/test_peers.py`` checks that the two agree.
The split, ranks and figures live in ``chronorec.testing.replay_side``.

Writes one JSON (per-epoch history, figures, versions, machine) to ``--out``::

    PYTHONPATH=src /work/peers/replay-venv/bin/python benchmarks/peers_replay.py \\
        --data /work/shared/data/ml-1m/ml-1m.txt --budget-s 420 --threads 2 --out /tmp/replay.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from chronorec.testing.replay_side import figures, leave_one_out, left_pad, pessimistic_ranks, read_sequences


class Catalogue:
    """Raw item ids <-> RePlay's dense codes 0..n-1 (padding code n)."""

    def __init__(self, seqs: list[np.ndarray]):
        self.ids = np.unique(np.concatenate(seqs))
        self.n = len(self.ids)

    def codes(self, seq: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.ids, seq).astype(np.int64)


def evaluate(sasrec, inputs: list[np.ndarray], targets: np.ndarray, *, width: int, pad: int, batch: int = 512):
    """Test-style figures of ``sasrec`` (coded inputs and targets): history filtered and not."""
    import torch

    was_training = sasrec.training
    sasrec.eval()
    ranks = {"filtered": [], "unfiltered": []}
    with torch.inference_mode():
        for s in range(0, len(inputs), batch):
            x = torch.from_numpy(left_pad(inputs[s : s + batch], width, pad))
            out = sasrec(feature_tensors={"item_id": x}, padding_mask=x != pad)
            scores = out["logits"].float()[:, :pad]  # the catalogue's columns (no padding column)
            tg = targets[s : s + batch]
            ranks["unfiltered"].append(pessimistic_ranks(scores.clone(), tg))
            ranks["filtered"].append(pessimistic_ranks(scores, tg, inputs[s : s + batch]))
    sasrec.train(was_training)
    return {name: figures(np.concatenate(r)) for name, r in ranks.items()}


def budget_callback(args, sasrec, val_inputs, val_targets, pad: int):
    """A Lightning callback: times each training epoch, validates after it (time not counted),
    keeps the best weights and stops by chronorec's budget rule."""
    import lightning as L
    import torch

    class Budget(L.Callback):
        def __init__(self):
            self.history: list[dict[str, Any]] = []
            self.train_seconds = 0.0
            self.best = (-math.inf, 0)
            self.best_state: dict[str, torch.Tensor] | None = None
            self.t0 = self.cpu0 = 0.0
            self.stopped = ""

        def on_train_epoch_start(self, trainer, pl_module):
            self.t0, self.cpu0 = time.perf_counter(), time.process_time()

        def on_train_epoch_end(self, trainer, pl_module):
            seconds = time.perf_counter() - self.t0
            cpu_seconds = time.process_time() - self.cpu0
            self.train_seconds += seconds
            t1 = time.perf_counter()
            val = evaluate(sasrec, val_inputs, val_targets, width=args.max_len, pad=pad)
            epoch = len(self.history) + 1
            loss = trainer.callback_metrics.get("train_loss_epoch")
            entry = {
                "epoch": epoch,
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "loss": float(loss) if loss is not None else None,
                "val_ndcg10": val["filtered"]["NDCG@10"],
                "val_ndcg10_unfiltered": val["unfiltered"]["NDCG@10"],
                "val_seconds": time.perf_counter() - t1,
                "train_seconds": self.train_seconds,
            }
            self.history.append(entry)
            if entry["val_ndcg10"] > self.best[0]:
                self.best = (entry["val_ndcg10"], epoch)
                self.best_state = {k: v.detach().clone() for k, v in sasrec.state_dict().items()}
            print(
                f"[replay sasrec] epoch {epoch}: loss {entry['loss']}, val ndcg10 {entry['val_ndcg10']:.4f} "
                f"(unfiltered {entry['val_ndcg10_unfiltered']:.4f}), {seconds:.1f}s",
                file=sys.stderr,
                flush=True,
            )
            mean_epoch = self.train_seconds / epoch
            if self.train_seconds + mean_epoch > args.budget_s:
                self.stopped = f"time budget of {args.budget_s:.0f}s reached (another epoch would pass it)"
                trainer.should_stop = True

    return Budget()


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("replay-rec", "torch", "lightning", "numpy", "polars", "pyarrow"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def write_train_parquet(path: Path, train_codes: list[np.ndarray]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "user_id": pa.array(np.arange(len(train_codes), dtype=np.int64)),
            "item_id": pa.array([c.tolist() for c in train_codes], type=pa.list_(pa.int64())),
        }
    )
    pq.write_table(table, path)


def run(args) -> dict[str, Any]:  # Long: one linear recipe, RePlay's example pipeline step by step
    import lightning as L
    import torch
    from replay.data import FeatureHint, FeatureType
    from replay.data.nn import ParquetModule, TensorFeatureInfo, TensorSchema
    from replay.nn.lightning import LightningModule
    from replay.nn.lightning.optimizer import OptimizerFactory
    from replay.nn.sequential import SasRec
    from replay.nn.transform.template import make_default_sasrec_transforms

    torch.set_num_threads(args.threads)
    L.seed_everything(args.seed, verbose=False)
    load_start = os.getloadavg()
    t_load = time.perf_counter()
    _, seqs = read_sequences(args.data)
    split = leave_one_out(seqs)
    cat = Catalogue(seqs)
    pad = cat.n
    code = cat.codes
    val_inputs = [code(s) for s in split["val_inputs"]]
    test_inputs = [code(s) for s in split["test_inputs"]]
    val_targets, test_targets = code(split["val_targets"]), code(split["test_targets"])
    schema = TensorSchema(
        [
            TensorFeatureInfo(
                name="item_id",
                is_seq=True,
                padding_value=pad,
                cardinality=cat.n,
                embedding_dim=args.dim,
                feature_type=FeatureType.CATEGORICAL,
                feature_hint=FeatureHint.ITEM_ID,
            )
        ]
    )
    work = Path(tempfile.mkdtemp(prefix="peers-replay-"))
    train_path = work / "train.parquet"
    write_train_parquet(train_path, [code(s) for s in split["train"]])
    data = ParquetModule(
        train_path=str(train_path),
        batch_size=args.batch_size,
        metadata={"train": {"item_id": {"shape": args.max_len + 1, "padding": pad}}},
        transforms=make_default_sasrec_transforms(schema),
    )
    sasrec = SasRec.from_params(
        schema=schema,
        embedding_dim=args.dim,
        num_heads=args.heads,
        num_blocks=args.blocks,
        max_sequence_length=args.max_len,
        dropout=args.dropout,
    )
    module = LightningModule(sasrec, optimizer_factory=OptimizerFactory(learning_rate=args.lr))
    load_seconds = time.perf_counter() - t_load
    budget = budget_callback(args, sasrec, val_inputs, val_targets, pad)
    trainer = L.Trainer(
        max_epochs=args.max_epochs,
        callbacks=[budget],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        accelerator="cpu",
        devices=1,
    )
    t_fit = time.perf_counter()
    trainer.fit(module, datamodule=data)
    fit_seconds = time.perf_counter() - t_fit
    if budget.best_state is not None:
        sasrec.load_state_dict(budget.best_state)
    t_test = time.perf_counter()
    test = evaluate(sasrec, test_inputs, test_targets, width=args.max_len, pad=pad)
    return {
        "peer": "replay",
        "model": f"RePlay SasRec ({args.blocks} x {args.dim}, {args.heads} heads, fp32)",
        "config": {
            k: getattr(args, k)
            for k in ("max_len", "dim", "blocks", "heads", "dropout", "lr", "batch_size", "budget_s", "seed", "threads")
        },
        "data_file": str(args.data),
        "n_users": len(seqs),
        "n_items": cat.n,
        "n_evaluated": len(split["rows"]),
        "history": budget.history,
        "epochs_run": len(budget.history),
        "best_epoch": budget.best[1],
        "train_seconds": budget.train_seconds,
        "fit_seconds": fit_seconds,
        "load_seconds": load_seconds,
        "test_seconds": time.perf_counter() - t_test,
        "stopped": budget.stopped or "ran all epochs",
        "test": test["unfiltered"],
        "test_filtered": test["filtered"],
        "versions": versions(),
        "torch_threads": torch.get_num_threads(),
        "loadavg_start": list(load_start),
        "loadavg_end": list(os.getloadavg()),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", required=True, help="a 'user item item ...' file (e.g. ML-1M's ml-1m.txt)")
    p.add_argument("--out", required=True, help="the JSON to write")
    p.add_argument("--budget-s", type=float, default=420.0, help="training seconds (default 420 = 7 minutes)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--max-len", type=int, default=200, help="input length (default 200)")
    p.add_argument("--dim", type=int, default=64, help="embedding size (default 64)")
    p.add_argument("--blocks", type=int, default=2, help="transformer blocks (default 2)")
    p.add_argument("--heads", type=int, default=2, help="attention heads (default 2)")
    p.add_argument("--dropout", type=float, default=0.2, help="dropout (default 0.2)")
    p.add_argument("--lr", type=float, default=0.001, help="Adam learning rate (default 0.001, RePlay's)")
    p.add_argument("--batch-size", type=int, default=128, help="sequences per batch (default 128)")
    p.add_argument("--max-epochs", type=int, default=1000, help="epoch cap besides the budget (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    res = run(args)
    res["command"] = " ".join([Path(sys.executable).name, *sys.argv])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2))
    print(
        f"[replay sasrec] {res['epochs_run']} epochs, best {res['best_epoch']}: test NDCG@10 "
        f"{res['test']['NDCG@10']:.4f} (filtered {res['test_filtered']['NDCG@10']:.4f})",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
