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
  ``_score_batch=N`` (rows per evaluation batch);
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
    item_loss = model._item_loss

    def timed_loss(module, hidden, targets):
        clock.mark("+", "fwd output layer + loss")
        if hidden.requires_grad:
            hidden.register_hook(lambda g: clock.mark("-", "bwd output layer + loss"))
        loss = item_loss(module, hidden, targets)
        clock.mark("-", "fwd output layer + loss")
        loss.register_hook(lambda g: clock.mark("+", "bwd output layer + loss"))
        return loss

    model._item_loss = timed_loss


def load_split(data: str):
    from chronorec.datasets.formats import load_sequence_file
    from chronorec.evaluation.split import leave_one_out

    return leave_one_out(load_sequence_file(data))


class LegacySoftmaxCE(torch.autograd.Function):
    """The fused output layer + cross-entropy as it was before the speed work (a fresh float32
    chunk of logits per chunk, ``logsumexp``), for ``_ce=legacy`` variants."""

    @staticmethod
    def forward(ctx, hidden, weight, targets, chunk: int, dtype: torch.dtype):
        with torch.autocast(hidden.device.type, enabled=False):
            h, w = hidden.to(dtype), weight.to(dtype)
            n = h.shape[0]
            lse = torch.empty(n, dtype=torch.float32, device=h.device)
            tgt = torch.empty(n, dtype=torch.float32, device=h.device)
            for s in range(0, n, chunk):
                logits = (h[s : s + chunk] @ w.t()).float()
                logits[:, 0] = -torch.inf
                lse[s : s + chunk] = torch.logsumexp(logits, dim=1)
                tgt[s : s + chunk] = logits.gather(1, targets[s : s + chunk, None]).squeeze(1)
        ctx.save_for_backward(hidden, weight, targets, lse)
        ctx.chunk, ctx.dtype = chunk, dtype
        return (lse - tgt).mean()

    @staticmethod
    def backward(ctx, grad_out):
        hidden, weight, targets, lse = ctx.saved_tensors
        chunk, dtype = ctx.chunk, ctx.dtype
        n = hidden.shape[0]
        scale = grad_out.float() / n
        with torch.autocast(hidden.device.type, enabled=False):
            h, w = hidden.to(dtype), weight.to(dtype)
            grad_h = torch.empty(hidden.shape, dtype=torch.float32, device=hidden.device)
            grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device)
            for s in range(0, n, chunk):
                hc = h[s : s + chunk]
                p = (hc @ w.t()).float().sub_(lse[s : s + chunk, None]).exp_()
                p[:, 0] = 0.0
                p[torch.arange(len(hc), device=p.device), targets[s : s + chunk]] -= 1.0
                p = p.to(dtype)
                grad_h[s : s + chunk] = (p @ w).float().mul_(scale)
                grad_w.add_((p.t() @ hc).float(), alpha=float(scale))
        return grad_h.to(hidden.dtype), grad_w.to(weight.dtype), None, None, None


_CURRENT_CE: list = []


def apply_patches(patches: dict[str, Any]) -> None:
    """Code-level levers that are not configuration (see the module docstring)."""
    from chronorec.models.sequential import blocks, losses

    if not _CURRENT_CE:
        _CURRENT_CE.append(losses._ChunkedSoftmaxCE)
    legacy = patches.get("_ce") == "legacy"
    losses._ChunkedSoftmaxCE = LegacySoftmaxCE if legacy else _CURRENT_CE[0]
    losses.CHUNK_ROWS = int(patches.get("_ce_chunk", 4096 if legacy else losses.DEFAULT_CHUNK_ROWS))
    blocks.ATTENTION = str(patches.get("_attention", blocks.DEFAULT_ATTENTION))
    blocks.SCORING_ATTENTION_FP32 = patches.get("_score_attention") == "fp32"


class Run:
    """One model of a preset ready to step: its module, batches, loss and the trainer's optimiser."""

    def __init__(self, split, model_name: str, dataset: str, overrides: dict[str, Any], threads: int, seed: int):
        from chronorec.training.settings import TrainSettings
        from chronorec.training.trainer import Trainer
        from chronorec.workflows.benchmark import model_params, preset_params

        self.patches = {k: v for k, v in overrides.items() if k.startswith("_")}
        params = {**preset_params(dataset, model_name), **{k: v for k, v in overrides.items() if k[0] != "_"}}
        self.params = params
        _, cls, kw = model_params(params, seed=seed, progress=False, threads=threads)
        self.model = cls(**kw)
        self.model.fit_info = {}
        self.model._remember(split.train)
        apply_patches(self.patches)
        if self.patches.get("_padding") == "left":  # the rows' padding before right-padded batches
            self.model.right_padding = False
        self.batcher, self.loss_fn = self.model._training_setup()
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
        """One training step as the trainer runs it (``Trainer._step``), with phase marks.

        Returns (wall seconds, phases); ``phases["cpu seconds"]`` is the process's CPU time of the step."""
        apply_patches(self.patches)
        tr, module = self.trainer, self.model.module
        module.train()
        c0 = time.process_time()
        t0 = now()
        batch = self.model._make_batch(self.next_spans(), self.rng)
        t1 = now()
        tr.opt.zero_grad(set_to_none=True)
        loss = self.loss_fn(module, batch)
        if clock is not None:
            clock.mark("+", "bwd other")  # backward time outside the instrumented phases
        tr.scaler.scale(loss).backward()
        if clock is not None:
            clock.mark("-", "bwd other")
        t2 = now()
        if tr.settings.grad_clip:
            tr.scaler.unscale_(tr.opt)
            torch.nn.utils.clip_grad_norm_(module.parameters(), tr.settings.grad_clip)
        t3 = now()
        tr.scaler.step(tr.opt)
        tr.scaler.update()
        t4 = now()
        float(loss.detach())
        t5 = now()
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
    from chronorec.workflows.benchmark import model_params, preset_params

    out = {}
    for name, overrides in variants.items():
        apply_patches({k: v for k, v in overrides.items() if k.startswith("_")})
        params = {**preset_params(dataset, model_name), **{k: v for k, v in overrides.items() if k[0] != "_"}}
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
    apply_patches({})
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
    secs: dict[str, list[float]] = {k: [] for k in runs}
    ndcg: dict[str, float] = {}
    for _ in range(max(rounds, 1)):
        for name, run in runs.items():
            apply_patches(run.patches)
            res = time_eval(model or run.model, split, repeats=1, batch_size=run.patches.get("_score_batch"))
            secs[name].append(res["seconds"][0])
            ndcg[name] = res["ndcg10"]
    apply_patches({})
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
