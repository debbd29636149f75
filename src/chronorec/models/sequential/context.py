"""Per-event context features for the sequence models.

Every event of a sequence may carry: its behaviour type, the time gap to the previous event of
the same user (log2-scale buckets), the hour of day and the weekday (UTC) of its timestamp, and
the codes of the log's categorical context columns (device, location...). Each feature is a small
integer code, 0 meaning "unknown" (padding, a plain item history, a value unseen in training), so a
model can sum one embedding per feature into the item token and fall back to plain items.

Raw context of one sequence (or of the flat store) is a dict with any of the keys ``behavior``
(internal behaviour ids), ``timestamp`` (int64 seconds) and the context column names (codes
1..V); ``event_features`` turns it into the enabled feature codes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from chronorec.data.timestamps import parse_time_values

TIME_FEATURES = ("gap", "hour", "weekday")
TIME_KEYS = ("time", "timestamp")  # a request context's time, under either key, read as ingest reads times
GAP_BUCKETS = 24  # log2 buckets of the gap in seconds: 0 s .. ~97 days, longer gaps share the last
BUILTIN_SIZES = {"gap": GAP_BUCKETS + 2, "hour": 25, "weekday": 8}  # code 0 = unknown, gap 1 = first event


def gap_bucket(gaps: np.ndarray) -> np.ndarray:
    """Codes 2.. for gaps in seconds: 2 + floor(log2(1 + gap)), capped (1 = no previous event)."""
    g = np.maximum(np.asarray(gaps, dtype=np.float64), 0.0)
    return 2 + np.minimum(np.floor(np.log2(1.0 + g)), GAP_BUCKETS - 1).astype(np.int64)


def hour_code(ts: np.ndarray) -> np.ndarray:
    return (np.asarray(ts, dtype=np.int64) // 3600) % 24 + 1


def weekday_code(ts: np.ndarray) -> np.ndarray:
    """1 = Monday .. 7 = Sunday (1970-01-01 was a Thursday)."""
    return (np.asarray(ts, dtype=np.int64) // 86_400 + 3) % 7 + 1


def available_features(vocab: Mapping[str, Sequence[Any]], has_time: bool) -> list[str]:
    """Features a log supports: behaviour (if typed), time features (if timed), context columns."""
    out = ["behavior"] if "behavior" in vocab else []
    if has_time:
        out += list(TIME_FEATURES)
    return out + [c for c in vocab if c != "behavior"]


def feature_sizes(features: Sequence[str], vocab: Mapping[str, Sequence[Any]]) -> dict[str, int]:
    """Embedding table size per feature (including the 0 = unknown code)."""
    return {f: BUILTIN_SIZES[f] if f in BUILTIN_SIZES else len(vocab[f]) + 1 for f in features}


def event_features(raw: Mapping[str, np.ndarray], first: np.ndarray, features: Sequence[str]) -> dict[str, np.ndarray]:
    """Feature codes per event. ``first`` marks the first event of each sequence (its gap is unknown)."""
    n = len(first)
    out: dict[str, np.ndarray] = {}
    ts = raw.get("timestamp")
    for f in features:
        if f in TIME_FEATURES:
            if ts is None:
                out[f] = np.zeros(n, np.int64)
            elif f == "gap":
                gaps = np.diff(np.asarray(ts, dtype=np.int64), prepend=0)
                out[f] = np.where(first, 1, gap_bucket(gaps)).astype(np.int64) if n else np.zeros(0, np.int64)
            elif f == "hour":
                out[f] = hour_code(ts)
            else:
                out[f] = weekday_code(ts)
        else:
            v = raw.get(f)
            out[f] = np.zeros(n, np.int64) if v is None else np.asarray(v, dtype=np.int64)
    return out


def next_features(nxt: Mapping[str, Any], last_ts: int | None, features: Sequence[str]) -> dict[str, int]:
    """Codes of the request's (next event's) context: its behaviour, time and context columns."""
    out: dict[str, int] = {}
    ts = nxt.get("timestamp")
    for f in features:
        if f in TIME_FEATURES:
            if ts is None:
                out[f] = 0
            elif f == "gap":
                out[f] = 1 if last_ts is None else int(gap_bucket(np.array([int(ts) - int(last_ts)]))[0])
            elif f == "hour":
                out[f] = int(hour_code(np.array([ts]))[0])
            else:
                out[f] = int(weekday_code(np.array([ts]))[0])
        else:
            out[f] = int(nxt.get(f, 0) or 0)
    return out


def vocab_codes(values: Sequence[Any], vocab: Sequence[Any]) -> np.ndarray:
    """1-based codes of ``values`` in a training vocabulary, compared as text (0: never seen).

    The one coding of external context values, for live histories and for requests alike."""
    index: dict[str, int] = {}
    for i, v in enumerate(vocab):
        index.setdefault(str(v), i + 1)
    return np.array([index.get(str(v), 0) for v in values], dtype=np.int64)


def encode_external(context: Mapping[str, Any], keep: np.ndarray, vocab: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
    """External context of one live history -> raw internal codes, aligned to the kept items.

    ``context`` maps ``behavior`` / ``timestamp`` / context-column names to one value per history
    item, and optionally ``next`` to a dict of single values for the event to predict. Values
    unseen in training get code 0.
    """
    out: dict[str, Any] = {}
    for key, values in context.items():
        if key == "next":
            continue
        arr = np.asarray(list(values), dtype=object)
        if len(arr) != len(keep):
            raise ValueError(f"context {key!r} has {len(arr)} values for a history of {len(keep)} items")
        arr = arr[keep]
        if key == "timestamp":
            out[key] = arr.astype(np.int64)
        elif key in vocab:
            out[key] = vocab_codes(arr, vocab[key])
    nxt = context.get("next")
    if nxt:
        enc: dict[str, Any] = {}
        for key, value in nxt.items():
            if key == "timestamp":
                enc[key] = int(value)
            elif key in vocab:
                enc[key] = int(vocab_codes([value], vocab[key])[0])
        out["next"] = enc
    return out


def encode_request(
    context: Mapping[str, Any], vocab: Mapping[str, Sequence[Any]], features: Sequence[str]
) -> tuple[dict[str, Any] | None, list[str]]:
    """``({"next": codes} or None, warnings)``: a request's own context (the event to predict) coded for
    a model that conditions on ``features``; keys it does not use, does not know or values it never
    saw are named in the warnings (unseen values count as unknown, code 0)."""
    time_used = any(f in TIME_FEATURES for f in features)
    nxt: dict[str, Any] = {}
    unknown, unused, unseen, warnings = [], [], [], []
    for key, value in sorted(context.items()):
        if key in TIME_KEYS:
            if not time_used:
                unused.append(key)
                continue
            seconds, reason = parse_time_values([value])[0]  # the rules of ingest and of POST /events
            if seconds is None:
                warnings.append(
                    f"context {key}={value!r} ignored ({reason}): send epoch seconds, milliseconds or "
                    "microseconds, or an ISO 8601 date-time such as 2024-06-10T09:30:00Z"
                )
            else:
                nxt["timestamp"] = seconds
        elif key in vocab:
            if key not in features:
                unused.append(key)
                continue
            nxt[key] = int(vocab_codes([value], vocab[key])[0])
            if nxt[key] == 0:
                unseen.append(f"{key}={value!r}")
        else:
            unknown.append(key)
    known = sorted(set(vocab) & set(features)) + (["time"] if time_used else [])
    if unknown:
        warnings.append(f"context keys {unknown} unknown to the model: ignored (it uses {known})")
    if unused:
        warnings.append(f"context {unused} ignored: the model was trained on {list(features)} only")
    if unseen:
        warnings.append(f"context values {unseen} never seen in training: treated as unknown")
    return ({"next": nxt} if nxt else None), warnings


# ---------------------------------------------------------------------- codes of a fitted model
def store_codes(store: Any, features: Sequence[str], needs_timestamps: bool = False) -> dict[str, np.ndarray]:
    """Feature codes of every event of a ``SequenceStore`` (flat, aligned with ``store.items``),
    plus the raw ``timestamp`` where a model reads time directly (``needs_timestamps``)."""
    codes: dict[str, np.ndarray] = {}
    if features:
        raw = {"behavior": store.behaviors, "timestamp": store.timestamps, **store.extra}
        raw = {k: v for k, v in raw.items() if v is not None}
        first = np.zeros(len(store.items), bool)
        first[store.offsets[:-1][store.lengths > 0]] = True
        codes = event_features(raw, first, features)
    if needs_timestamps and store.timestamps is not None:
        codes["timestamp"] = store.timestamps
    return codes


def _stored_row(store: Any, flat: Mapping[str, np.ndarray], features: Sequence[str], user: int, hist: np.ndarray):
    """A known user's stored context where ``hist`` starts with the user's training sequence, else None."""
    if user <= 0 or (store.timestamps is None and store.behaviors is None and not store.extra):
        return None
    n = len(hist)
    a, b = int(store.offsets[user]), int(store.offsets[user + 1])
    m = min(n, b - a)
    if not (m and np.array_equal(hist[:m], store.items[a : a + m])):
        return None
    codes = {f: np.pad(flat[f][a : a + m], (0, n - m)) for f in features}
    ts = None
    if store.timestamps is not None:
        ts = store.timestamps[a : a + m]
        ts = np.concatenate([ts, np.full(n - m, ts[-1] if m else 0, np.int64)])
    return codes, ts, None


def row_context(
    store: Any,
    flat: Mapping[str, np.ndarray],
    features: Sequence[str],
    user: int,
    hist: np.ndarray,
    ctx: Mapping[str, Any] | None,
) -> tuple[dict[str, np.ndarray], np.ndarray | None, dict[str, int] | None]:
    """(feature codes aligned to ``hist``, raw timestamps or None, next-event codes or None) of one row.

    ``ctx`` is the row's raw context (see :func:`encode_external`). Where it gives no per-event
    values (nothing, or only ``next``: a request's own context), a known user's stored context
    (``flat``: :func:`store_codes`) is used where the history starts with the user's training
    sequence (later events get code 0 = unknown), and ``next`` is coded against its last time.
    """
    n = len(hist)
    raw: Mapping[str, Any] = {}
    nxt_raw = (ctx or {}).get("next")
    per_event = ctx is not None and any(k != "next" for k in ctx)
    m = n if per_event else 0
    if per_event:
        raw = {k: v for k, v in ctx.items() if k != "next"}
    else:
        stored = _stored_row(store, flat, features, user, hist)
        if stored is not None:
            codes, ts, _ = stored
            last = int(ts[-1]) if ts is not None and len(ts) else None
            return codes, ts, _next_codes(nxt_raw, last, n, features)
    first = np.zeros(m, bool)
    first[:1] = True
    codes = event_features({k: np.asarray(v)[:m] for k, v in raw.items()}, first, features)
    codes = {f: np.pad(c, (0, n - m)) for f, c in codes.items()}
    ts = raw.get("timestamp")
    ts = None if ts is None else np.asarray(ts, dtype=np.int64)
    last = int(ts[-1]) if ts is not None and len(ts) else None
    return codes, ts, _next_codes(nxt_raw, last, n, features)


def _next_codes(nxt_raw: Mapping[str, Any] | None, last_ts: int | None, n: int, features: Sequence[str]):
    """Codes of the next event's context; its gap is unknown (0) after a history of unknown times."""
    if not nxt_raw:
        return None
    nxt = next_features(nxt_raw, last_ts, features)
    if "gap" in nxt and last_ts is None and n > 0:
        nxt["gap"] = 0
    return nxt
