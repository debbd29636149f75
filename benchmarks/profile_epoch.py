"""Where a training epoch of a sequence-model preset spends its time, and what each speed lever buys.

Three parts, all on the leave-one-out training split of one dataset (default: ML-1M and its
``ml-1m.yaml`` preset; ``--model``, ``--set KEY=VALUE`` change it):

* the **profile** (always): ``--steps`` training steps of the preset, each split into phases by
  wall-clock timers (CPU ops run synchronously, so a phase's time is its ops' time): batch
  building; forward embedding, attention, feed-forward, the rest of the encoder (layer norms,
  dropout, residuals, masks), output layer + loss; backward by the same phases; gradient
  clipping; the optimiser; and the rest of the step (zeroing gradients, reading the loss, Python
  between the phases). Steps are the first ``--steps`` of a shuffled epoch after ``--warmup``; the
  epoch figure is the mean step x the epoch's batches (stated as an extrapolation);
* ``--compare NAME:KEY=VALUE,... ...``: variants of the same preset stepped in this one process,
  interleaved (A B A B ...) over ``--rounds`` rounds of ``--steps-per-round`` steps, each variant
  its own model and batches; reports the median step and epoch estimate and the ratio to the
  first variant (absolute seconds on a shared machine are noise, ratios within a run are not).
  Besides configuration fields a variant may set code-level levers, to measure each alone:
  ``_ce=legacy`` (the fused output layer + cross-entropy as it was: a fresh float32 chunk of 4096
  rows per chunk), ``_ce_chunk`` (rows per chunk), ``_attention=manual`` (matmul + softmax instead
  of ``scaled_dot_product_attention``), ``_padding=left`` (SASRec's rows padded on the left, so
  attention needs a mask, instead of on the right with ``is_causal``) and ``_mask=bool`` (a boolean
  mask that every layer converts, instead of an additive one built once per forward) and
  ``_adamw=plain`` (AdamW's per-parameter loop instead of its fused kernel) and
  ``_score_attention=fp32`` (scoring's attention in float32 under bf16 autocast, as training's) and
  ``_score_batch=N`` (rows per evaluation batch). ``_ce``, ``_ce_chunk``, ``_attention`` and
  ``_score_attention`` set the model's ``ce_kernel``, ``ce_chunk_rows``, ``attention`` and
  ``scoring_attention_fp32`` fields; steps run through ``Trainer.step``, timed by its ``on_phase`` marks;
* ``--quality-epochs E``: each variant (or the preset) trained for E epochs through the real
  training loop, then validation NDCG@10 (full catalogue, history filtered), so a faster variant is
  only kept when it learns as well; ``--eval`` times the full-catalogue evaluation of every user
  (with ``--compare``: of each variant, interleaved over ``--rounds``; ``--eval-model DIR`` scores a
  saved model instead of each variant's few-step one).

Writes JSON (figures, command, data, machine) to ``--out`` and a Markdown table beside it::

    python benchmarks/profile_epoch.py --out benchmarks/results/profile-sasrec-ml1m.json --eval
    python benchmarks/profile_epoch.py --compare base: tokens:batching=tokens --rounds 6 \\
        --out benchmarks/results/compare-tokens.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

PHASES = (
    "batch building",
    "fwd embedding",
    "fwd attention",
    "fwd feed-forward",
    "fwd norms/dropout/residual",
    "fwd output layer + loss",
    "bwd output layer + loss",
    "bwd feed-forward",
    "bwd attention",
    "bwd embedding",
    "bwd other",
    "grad clipping",
    "optimiser",
    "rest (zero_grad, loss read, Python)",
)


def now() -> float:
    """The phase timers' clock: wall time, or with ``--clock thread`` the calling thread's CPU time
    (with ``--threads 1`` every op runs in this thread, so the phases are then immune to other
    processes taking the cores)."""
    return CLOCK[0]()


CLOCK = [time.perf_counter]


class PhaseClock:
    """Enter/exit marks of named phases; time between marks goes to the innermost open phase."""

    def __init__(self):
        self.marks: list[tuple[float, str, str]] = []

    def mark(self, op: str, label: str) -> None:
        self.marks.append((now(), op, label))

    def attribute(self, t0: float, t1: float, idle: str) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        stack: list[str] = []
        last = t0
        for t, op, label in self.marks:
            out[stack[-1] if stack else idle] += t - last
            last = t
            if op == "+":
                stack.append(label)
            elif label in stack:
                del stack[len(stack) - 1 - stack[::-1].index(label)]
        out[stack[-1] if stack else idle] += t1 - last
        self.marks.clear()
        return out


def _first_tensor(args: Any) -> torch.Tensor | None:
    for a in args if isinstance(args, tuple) else (args,):
        if torch.is_tensor(a):
            return a
    return None


def instrument(module: torch.nn.Module, name: str, clock: PhaseClock) -> None:
    """Forward marks around ``module``, and backward marks from its output's gradient to its input's."""

    def pre(mod, args):
        clock.mark("+", f"fwd {name}")
        x = _first_tensor(args)
        if x is not None and x.requires_grad:
            x.register_hook(lambda g: clock.mark("-", f"bwd {name}"))

    def post(mod, args, out):
        clock.mark("-", f"fwd {name}")
        y = _first_tensor(out)
        if y is not None and y.requires_grad:
            y.register_hook(lambda g: clock.mark("+", f"bwd {name}"))

    module.register_forward_pre_hook(pre)
    module.register_forward_hook(post)


def instrument_model(model, clock: PhaseClock) -> None:
    """Phase marks on the model's encoder (embedding, attention, feed-forward) and its loss."""
    enc = model.module
    blocks = getattr(enc, "blocks", None)
    if blocks is not None:

        def enter(mod, args):  # a pre-hook that returns something replaces the inputs: return None
            clock.mark("+", "fwd norms/dropout/residual")
            clock.mark("+", "fwd embedding")

        enc.register_forward_pre_hook(enter)
        enc.register_forward_hook(lambda m, a, o: clock.mark("-", "fwd norms/dropout/residual"))

        def first_block(mod, args):
            clock.mark("-", "fwd embedding")
            if args[0].requires_grad:
                args[0].register_hook(lambda g: clock.mark("+", "bwd embedding"))

        blocks[0].register_forward_pre_hook(first_block)
        for b in blocks:
            if hasattr(b, "attn"):
                instrument(b.attn, "attention", clock)
                instrument(b.ffn, "feed-forward", clock)
            else:  # an HSTU layer is attention and gating in one
                instrument(b, "attention", clock)
    elif hasattr(enc, "rnn"):  # GRU4Rec: the recurrent layer stands in the attention's row
        instrument(enc.item_emb, "embedding", clock)
        instrument(enc.rnn, "attention", clock)

    def loss_start(mod, args, out):  # the encoder's output feeds the output layer and the loss
        clock.mark("+", "fwd output layer + loss")
        y = _first_tensor(out)
        if y is not None and y.requires_grad:
            y.register_hook(lambda g: clock.mark("-", "bwd output layer + loss"))

    enc.register_forward_hook(loss_start)


def load_split(data: str):
    from chronorec.datasets.formats import load_sequence_file
    from chronorec.evaluation.split import leave_one_out

    return leave_one_out(load_sequence_file(data))


def config_levers(patches: dict[str, Any]) -> dict[str, Any]:
    """The code-level levers of a variant (see the module docstring) as the model configuration
    fields that set them."""
    out: dict[str, Any] = {}
    if patches.get("_ce") == "legacy":  # the earlier kernel, with its 4096-row chunks unless _ce_chunk says
        out.update(ce_kernel="fresh", ce_chunk_rows=4096)
    if "_ce_chunk" in patches:
        out["ce_chunk_rows"] = int(patches["_ce_chunk"])
    if "_attention" in patches:
        out["attention"] = str(patches["_attention"])
    if patches.get("_score_attention") == "fp32":
        out["scoring_attention_fp32"] = True
    return out


def variant_params(dataset: str, model_name: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The preset's parameters with a variant's configuration fields and code-level levers."""
    from chronorec.workflows.benchmark import preset_params

    fields = {k: v for k, v in overrides.items() if k[0] != "_"}
    patches = {k: v for k, v in overrides.items() if k.startswith("_")}
    return {**preset_params(dataset, model_name), **fields, **config_levers(patches)}


class Run:
    """One model of a preset ready to step: its module, batches, loss and the trainer's optimiser."""

    def __init__(self, split, model_name: str, dataset: str, overrides: dict[str, Any], threads: int, seed: int):
        from chronorec.training.settings import TrainSettings
        from chronorec.training.trainer import Trainer
        from chronorec.workflows.benchmark import model_params

        self.patches = {k: v for k, v in overrides.items() if k.startswith("_")}
        params = variant_params(dataset, model_name, overrides)
        self.params = params
        _, cls, kw = model_params(params, seed=seed, progress=False, threads=threads)
        self.model = cls(**kw)
        self.model.fit_info = {}
        if self.patches.get("_padding") == "left":  # the rows' padding before right-padded batches
            self.model.right_padding = False
        parts = self.model.training_parts(split.train)
        self.batcher, self.make_batch, self.loss_fn = parts
        if self.patches.get("_mask") == "bool":  # a boolean mask converted by every layer, as before
            self.model.module.block_mask = lambda mask: mask
        cfg = self.model.config
        settings = TrainSettings.of(cfg, label=model_name)
        self.trainer = Trainer(self.model.module, settings, monitor="ndcg10")
        if self.patches.get("_adamw") == "plain":  # AdamW's per-parameter loop instead of its fused kernel
            tr = self.trainer
            tr.opt = torch.optim.AdamW(
                self.model.module.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
            )
        self.rng = np.random.default_rng(seed)
        self.epoch_iter = iter(())

    def next_spans(self):
        for spans in self.epoch_iter:
            return spans
        self.epoch_iter = iter(self.batcher.epoch(self.rng))
        return next(self.epoch_iter)

    def step(self, clock: PhaseClock | None = None) -> tuple[float, dict[str, float]]:
        """One training step of the trainer (``Trainer.step``), its phases timed through its
        ``on_phase`` marks.

        Returns (wall seconds, phases); ``phases["cpu seconds"]`` is the process's CPU time of the step."""
        tr, module = self.trainer, self.model.module
        module.train()
        ends: dict[str, float] = {}

        def on_phase(name: str) -> None:
            ends[name] = now()
            if clock is not None and name == "forward":
                clock.mark("+", "bwd other")  # backward time outside the instrumented phases
            elif clock is not None and name == "backward":
                clock.mark("-", "bwd other")

        def loss_fn(module, batch):
            loss = self.loss_fn(module, batch)
            if clock is not None:
                clock.mark("-", "fwd output layer + loss")
                loss.register_hook(lambda g: clock.mark("+", "bwd output layer + loss"))
            return loss

        tr.on_phase = on_phase
        c0 = time.process_time()
        t0 = now()
        batch = self.make_batch(self.next_spans(), self.rng)
        t1 = now()
        tr.step(batch, loss_fn)
        t5 = now()
        tr.on_phase = None
        t2, t3, t4 = ends["backward"], ends["clip"], ends["optimiser"]
        phases = {"batch building": t1 - t0, "grad clipping": t3 - t2, "optimiser": t4 - t3}
        cpu = time.process_time() - c0
        if clock is not None:
            inner = clock.attribute(t1, t2, idle="rest (zero_grad, loss read, Python)")
            for k, v in inner.items():
                phases[k] = phases.get(k, 0.0) + v
            phases["rest (zero_grad, loss read, Python)"] = (
                phases.get("rest (zero_grad, loss read, Python)", 0.0) + t5 - t4
            )
        phases["cpu seconds"] = cpu
        return t5 - t0, phases


def profile(run: Run, steps: int, warmup: int) -> dict[str, Any]:
    clock = PhaseClock()
    instrument_model(run.model, clock)
    for _ in range(warmup):
        run.step(clock)
    totals, cpus, per_phase = [], [], defaultdict(list)
    for _ in range(steps):
        total, phases = run.step(clock)
        totals.append(total)
        cpus.append(phases.pop("cpu seconds"))
        for k in PHASES:
            per_phase[k].append(phases.get(k, 0.0))
        for k in phases:
            if k not in PHASES:
                per_phase[k].append(phases[k])
    mean_step = statistics.fmean(totals)
    n = run.batcher.n_batches
    rows = {
        k: {
            "ms_per_step": 1000 * statistics.fmean(v),
            "share": statistics.fmean(v) / mean_step,
            "seconds_per_epoch": statistics.fmean(v) * n,
        }
        for k, v in per_phase.items()
    }
    return {
        "steps_timed": steps,
        "warmup_steps": warmup,
        "batches_per_epoch": n,
        "mean_step_ms": 1000 * mean_step,
        "median_step_ms": 1000 * statistics.median(totals),
        "mean_step_cpu_ms": 1000 * statistics.fmean(cpus),
        "epoch_seconds_extrapolated": mean_step * n,
        "phases": rows,
    }


def compare(runs: dict[str, Run], rounds: int, per_round: int, warmup: int) -> dict[str, Any]:
    for run in runs.values():
        for _ in range(warmup):
            run.step()
    wall: dict[str, list[float]] = {k: [] for k in runs}
    cpu: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            steps = [run.step() for _ in range(per_round)]
            wall[name].append(statistics.fmean(s[0] for s in steps))
            cpu[name].append(statistics.fmean(s[1]["cpu seconds"] for s in steps))
    first = next(iter(runs))
    base_wall = statistics.median(wall[first]) * runs[first].batcher.n_batches
    base_cpu = statistics.median(cpu[first]) * runs[first].batcher.n_batches
    out = {}
    for name, run in runs.items():
        n = run.batcher.n_batches
        epoch, epoch_cpu = statistics.median(wall[name]) * n, statistics.median(cpu[name]) * n
        out[name] = {
            "median_step_ms": 1000 * statistics.median(wall[name]),
            "median_step_cpu_ms": 1000 * statistics.median(cpu[name]),
            "round_step_ms": [1000 * t for t in wall[name]],
            "batches_per_epoch": n,
            "epoch_seconds_extrapolated": epoch,
            "epoch_cpu_seconds_extrapolated": epoch_cpu,
            "speed-up vs first": base_wall / epoch,
            "cpu speed-up vs first": base_cpu / epoch_cpu,
        }
    return out


def quality(split, model_name, dataset, variants, epochs: int, threads: int, seed: int) -> dict[str, Any]:
    """Validation NDCG@10 (full catalogue, history filtered) after ``epochs`` epochs of each variant."""
    from chronorec.workflows.benchmark import model_params

    out = {}
    for name, overrides in variants.items():
        params = variant_params(dataset, model_name, overrides)
        params.update(epochs=epochs, patience=epochs, time_budget_s=None)
        _, cls, kw = model_params(params, seed=seed, progress=False, threads=threads)
        m = cls(**kw).fit(split.train, validation=split.validation)
        hist = m.fit_info["history"]
        out[name] = {
            "epochs": epochs,
            "val_ndcg10_per_epoch": [h.get("val_ndcg10") for h in hist],
            "train_seconds": m.fit_info["train_seconds"],
            "final_loss": hist[-1]["loss"],
        }
    return out


def time_eval(model, split, repeats: int = 3, batch_size: int | None = None) -> dict[str, Any]:
    """Seconds to score and rank the whole catalogue for every validation user (history filtered)."""
    from chronorec.evaluation.ranking import SCORE_BATCH, evaluate_ranking

    model.module.eval()
    rows = batch_size or SCORE_BATCH
    secs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = evaluate_ranking(model.score, split.validation, n_items=model.n_items, ks=(10,), batch_size=rows)
        secs.append(time.perf_counter() - t0)
    return {
        "users": len(split.validation),
        "batch_rows": rows,
        "seconds": secs,
        "median_seconds": statistics.median(secs),
        "ndcg10": float(res["NDCG@10"]),
    }


def compare_eval(runs: dict[str, Run], split, rounds: int, model=None) -> dict[str, Any]:
    """``time_eval`` of each variant, interleaved over ``rounds``, with its code levers applied
    (``_score_batch``: rows per scoring batch); ``model``: a saved model scored by every variant
    instead of each variant's own."""
    from chronorec.nn.blocks import set_attention

    secs: dict[str, list[float]] = {k: [] for k in runs}
    ndcg: dict[str, float] = {}
    for _ in range(max(rounds, 1)):
        for name, run in runs.items():
            if model is not None:  # the saved model scored with this variant's attention
                set_attention(model.module, run.model.config.attention, run.model.config.scoring_attention_fp32)
            res = time_eval(model or run.model, split, repeats=1, batch_size=run.patches.get("_score_batch"))
            secs[name].append(res["seconds"][0])
            ndcg[name] = res["ndcg10"]
    first = statistics.median(secs[next(iter(runs))])
    return {
        k: {
            "seconds": v,
            "median_seconds": statistics.median(v),
            "speed-up vs first": first / statistics.median(v),
            "ndcg10": ndcg[k],
        }
        for k, v in secs.items()
    }


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """'name:key=value,key=value' -> (name, {key: JSON value or string})."""
    name, _, rest = text.partition(":")
    out: dict[str, Any] = {}
    for part in filter(None, rest.split(",")):
        k, _, v = part.partition("=")
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return name, out


def markdown(result: dict[str, Any]) -> str:
    lines = [f"Command: `{result['command']}`", "", f"Device: {result['device']}; clock: {result['clock']}.", ""]
    if "profile" in result:
        p = result["profile"]
        lines += [
            f"Profile of {p['steps_timed']} steps (after {p['warmup_steps']} warm-up), {p['batches_per_epoch']} "
            f"batches per epoch; epoch = mean step x batches (extrapolated): "
            f"**{p['epoch_seconds_extrapolated']:.1f} s** (mean step {p['mean_step_ms']:.0f} ms wall, "
            f"{p['mean_step_cpu_ms']:.0f} ms CPU).",
            "",
            "| phase | ms / step | share | s / epoch |",
            "|---|---|---|---|",
        ]
        for k, v in p["phases"].items():
            lines.append(f"| {k} | {v['ms_per_step']:.1f} | {100 * v['share']:.1f}% | {v['seconds_per_epoch']:.2f} |")
        lines.append("")
    if "compare" in result:
        lines += ["| variant | median step ms (CPU ms) | batches / epoch | epoch s, extrapolated (CPU s) "
                  "| speed-up vs first, wall (CPU) |", "|---|---|---|---|---|"]  # fmt: skip
        for k, v in result["compare"].items():
            lines.append(
                f"| {k} | {v['median_step_ms']:.0f} ({v['median_step_cpu_ms']:.0f}) | {v['batches_per_epoch']} "
                f"| {v['epoch_seconds_extrapolated']:.1f} ({v['epoch_cpu_seconds_extrapolated']:.1f}) "
                f"| {v['speed-up vs first']:.2f}x ({v['cpu speed-up vs first']:.2f}x) |"
            )
        lines.append("")
    if "quality" in result:
        lines += ["| variant | epochs | validation NDCG@10 per epoch | train s |", "|---|---|---|---|"]
        for k, v in result["quality"].items():
            curve = ", ".join(f"{x:.4f}" for x in v["val_ndcg10_per_epoch"] if x is not None)
            lines.append(f"| {k} | {v['epochs']} | {curve} | {v['train_seconds']:.0f} |")
        lines.append("")
    if "evaluation" in result:
        e = result["evaluation"]
        lines.append(f"Full-catalogue evaluation of {e['users']} users: median {e['median_seconds']:.2f} s.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="ml-1m", help="preset dataset (and data file, unless --data)")
    p.add_argument("--data", default=None, help="sequence file (default: the dataset's in the data folder)")
    p.add_argument("--model", default="sasrec", help="the preset's model entry")
    p.add_argument("--set", action="append", default=[], help="KEY=VALUE on top of the preset (JSON values)")
    p.add_argument("--steps", type=int, default=20, help="profiled steps")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--no-profile", action="store_true")
    p.add_argument("--compare", nargs="*", default=[], help="variants NAME:KEY=VALUE,... (first = reference)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps-per-round", type=int, default=3)
    p.add_argument("--quality-epochs", type=int, default=0)
    p.add_argument("--eval", action="store_true", help="time the full-catalogue evaluation of every user")
    p.add_argument("--eval-model", default=None, help="with --eval and --compare: a saved model to evaluate")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--clock",
        choices=["wall", "thread"],
        default="wall",
        help="phase and step clock: wall time, or this thread's CPU time (use with --threads 1 on a busy machine)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="JSON path (a .md table is written beside it)")
    args = p.parse_args(argv)

    from chronorec.datasets.formats import dataset_path
    from chronorec.workflows.experiment import provenance

    torch.set_num_threads(args.threads)
    CLOCK[0] = time.thread_time if args.clock == "thread" else time.perf_counter
    data = args.data or str(dataset_path(args.dataset))
    split = load_split(data)
    base = dict(parse_variant("preset:" + ",".join(args.set))[1])
    result: dict[str, Any] = {
        "command": "python " + " ".join(["benchmarks/profile_epoch.py", *sys.argv[1:]]),
        "data_file": data,
        "model": args.model,
        "preset_overrides": base,
        "device": f"cpu ({args.threads} threads)",
        "clock": "calling thread's CPU time" if args.clock == "thread" else "wall",
        "protocol": "training steps of the leave-one-out training split; validation NDCG@10 over the full "
        "catalogue, history items filtered",
    }
    if not args.no_profile:
        run = Run(split, args.model, args.dataset, base, args.threads, args.seed)
        result["config"] = run.model.config.model_dump(exclude={"progress"})
        result["profile"] = profile(run, args.steps, args.warmup)
        if args.eval:
            result["evaluation"] = time_eval(run.model, split)
    variants = dict(parse_variant(v) for v in args.compare)
    variants = {k: {**base, **v} for k, v in variants.items()}
    if variants and args.rounds > 0:
        runs = {k: Run(split, args.model, args.dataset, v, args.threads, args.seed) for k, v in variants.items()}
        result["compare"] = compare(runs, args.rounds, args.steps_per_round, args.warmup)
        for k, v in variants.items():
            result["compare"][k]["overrides"] = v
        if args.eval:
            saved = None
            if args.eval_model:
                from chronorec.models.registry import load

                saved = load(args.eval_model, device="cpu")
                result["evaluation_model"] = args.eval_model
            result["evaluation_compare"] = compare_eval(runs, split, args.rounds, saved)
        del runs
    if args.quality_epochs:
        result["quality"] = quality(
            split, args.model, args.dataset, variants or {"preset": base}, args.quality_epochs, args.threads, args.seed
        )
    result["provenance"] = provenance()
    text = markdown(result)
    print(text)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, default=float))
        out.with_suffix(".md").write_text(text)
    return result


if __name__ == "__main__":
    main()
