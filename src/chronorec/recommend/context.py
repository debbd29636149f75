"""A request's context (``{"device": "mobile", "time": 1718000000, "behavior": "buy"}``) for the model.

The context of a request describes the event to predict. A sequence model trained with
``use_context=True`` and ``request_context=True`` conditions its prediction on it: this module
codes it against the model's training vocabulary (:func:`request_contexts`), so the pipeline
passes it to ``model.score``. A model that cannot use it (trained without context, or with the
context of past events only) is not silently handed it: the answer carries a warning, as it does
for keys the model does not know and values it never saw in training (they count as unknown).

Keys: ``time`` (or ``timestamp``, epoch seconds: the gap since the last event, the hour and the
weekday), ``behavior`` (the behaviour type of the next event) and the log's context columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

TIME_KEYS = ("time", "timestamp")

__all__ = ["TIME_KEYS", "conditioned_features", "context_notes", "request_context", "request_contexts"]


def conditioned_features(model: Any) -> list[str]:
    """The context features of the next event that ``model`` conditions its scores on (empty: none)."""
    members = getattr(model, "models", None)
    if isinstance(members, list) and members:  # an ensemble: what any member uses
        return sorted({f for m in members for f in conditioned_features(m)})
    cfg = getattr(model, "config", None)
    if not (
        getattr(model, "uses_context", False)
        and getattr(cfg, "use_context", False)
        and getattr(cfg, "request_context", False)
    ):
        return []
    return list(getattr(model, "context_features", []))


def _ignored(model: Any, keys: list[str]) -> str:
    cfg = getattr(model, "config", None)
    kind = getattr(model, "kind", type(model).__name__)
    if getattr(cfg, "use_context", False):
        why = "uses the context of past events only (trained without request_context=true)"
    else:
        why = (
            "was trained without context (train a sequence model with -p use_context=true "
            "-p request_context=true to use it)"
        )
    return f"context {keys} ignored by the model: this {kind} model {why}"


def _code(value: Any, vocab: Sequence[Any]) -> int:
    """1-based code of ``value`` in a training vocabulary (0: never seen)."""
    text = str(value)
    for i, v in enumerate(vocab):
        if str(v) == text:
            return i + 1
    return 0


def request_context(model: Any, context: Mapping[str, Any] | None) -> tuple[dict[str, Any] | None, list[str]]:
    """``({"next": codes} or None, warnings)`` for one request's context.

    None where the context is empty or the model does not use it (then a warning says so).
    """
    ctx = {str(k): v for k, v in (context or {}).items() if v is not None}
    if not ctx:
        return None, []
    features = conditioned_features(model)
    if not features:
        return None, [_ignored(model, sorted(ctx))]
    vocab: Mapping[str, Sequence[Any]] = getattr(model, "context_vocab", {}) or {}
    time_used = any(f in ("gap", "hour", "weekday") for f in features)
    nxt: dict[str, Any] = {}
    unknown, unused, unseen, warnings = [], [], [], []
    for key, value in sorted(ctx.items()):
        if key in TIME_KEYS:
            if not time_used:
                unused.append(key)
                continue
            try:
                nxt["timestamp"] = int(float(value))
            except (TypeError, ValueError, OverflowError):
                warnings.append(f"context {key}={value!r} ignored: not epoch seconds")
        elif key in vocab:
            if key not in features:
                unused.append(key)
                continue
            nxt[key] = _code(value, vocab[key])
            if nxt[key] == 0:
                unseen.append(f"{key}={value!r}")
        else:
            unknown.append(key)
    warnings += _key_warnings(unknown, unused, unseen, sorted(set(vocab) & set(features)), time_used, features)
    return ({"next": nxt} if nxt else None), warnings


def _key_warnings(
    unknown: list[str], unused: list[str], unseen: list[str], known: list[str], time_used: bool, features: list[str]
) -> list[str]:
    out = []
    if unknown:
        out.append(
            f"context keys {unknown} unknown to the model: ignored (it uses {known + (['time'] if time_used else [])})"
        )
    if unused:
        out.append(f"context {unused} ignored: the model was trained on {features} only")
    if unseen:
        out.append(f"context values {unseen} never seen in training: treated as unknown")
    return out


def request_contexts(
    model: Any, contexts: Sequence[Mapping[str, Any] | None] | None, n_rows: int
) -> tuple[list[dict[str, Any] | None] | None, list[list[str]]]:
    """:func:`request_context` for each row: the model's contexts (None when no row has one) and warnings."""
    if contexts is None:
        return None, [[] for _ in range(n_rows)]
    coded = [request_context(model, c) for c in contexts]
    model_ctx = [c for c, _ in coded]
    return (model_ctx if any(c is not None for c in model_ctx) else None), [w for _, w in coded]


def context_notes(warnings: list[str], strategy: str, popularity_source: str) -> list[str]:
    """A row's context warnings, saying where its popularity part still used a context the model ignored."""
    if strategy != "model" and popularity_source == "context":
        note = " (the popularity part of the answer uses it)"
        return [w + note if "ignored by the model" in w else w for w in warnings]
    return list(warnings)
