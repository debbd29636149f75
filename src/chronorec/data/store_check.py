"""The event store's integrity record, written with it and verified every time it is opened.

``store.json`` lists every file of the store with its size, and the SHA-256 of each file up to
:data:`HASH_BELOW` bytes (the metadata, the offsets, the id maps and all but the largest arrays: a
checksum of gigabytes at every open would cost more than the job). :func:`verify_store` then checks
what makes the memory-mapped arrays safe to index: sizes and checksums as recorded, each array as long
as the events counted, offsets that start at 0, never decrease and end at that count, one offset per
user, and item ids inside the catalogue. A store that fails is a :class:`DataError` naming the folder,
the file and the fix, never a wrong result or a crash inside numpy.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from chronorec.errors import DataError

__all__ = ["HASH_BELOW", "file_records", "verify_store"]

HASH_BELOW = 64 * 1024**2
FIX = "rebuild it with `chronorec store build`"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_records(root: Path, skip: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """``relative path -> {bytes, sha256?}`` of every file under ``root`` but ``skip``."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if not p.is_file() or rel in skip:
            continue
        size = p.stat().st_size
        out[rel] = {"bytes": size, **({"sha256": _sha256(p)} if size < HASH_BELOW else {})}
    return out


def _fail(d: Path, what: str) -> DataError:
    return DataError(f"{d}: {what}; {FIX}")


def _check_files(d: Path, files: Any) -> None:
    if not isinstance(files, dict) or not files:
        raise _fail(d, "store.json lists no files (a store from an older version, or tampered)")
    for rel, rec in files.items():
        p = d / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            raise _fail(d, f"store.json names {rel!r}, outside the store")
        if not p.is_file():
            raise _fail(d, f"{rel} is missing")
        if not isinstance(rec, dict) or p.stat().st_size != rec.get("bytes"):
            raise _fail(d, f"{rel} has {p.stat().st_size:,} bytes, store.json records {rec.get('bytes')}")
        if "sha256" in rec and _sha256(p) != rec["sha256"]:
            raise _fail(d, f"{rel} does not match its checksum in store.json (changed or corrupt)")


def _load(d: Path, name: str, mmap: bool) -> np.ndarray:
    try:
        return np.load(d / "sequences" / f"{name}.npy", mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise _fail(d, f"sequences/{name}.npy is not a readable array ({' '.join(str(e).split())[:120]})") from e


def verify_store(d: Path, meta: dict[str, Any]) -> dict[str, np.ndarray]:
    """Check ``d`` against ``meta`` (its store.json) and return its arrays (offsets in memory, the rest
    memory-mapped), or raise :class:`DataError`."""
    _check_files(d, meta.get("files"))
    try:
        n, n_users, n_items = int(meta["n_events"]), int(meta["n_users"]), int(meta["n_items"])
    except (KeyError, TypeError, ValueError) as e:
        raise _fail(d, "store.json lacks its counts (n_events, n_users, n_items)") from e
    arrays = {"offsets": _load(d, "offsets", False)}
    arrays |= {k: _load(d, k, True) for k in ("items", "timestamps", "behaviors")}
    off = arrays["offsets"]
    if off.ndim != 1 or len(off) != n_users + 2:
        raise _fail(d, f"sequences/offsets.npy holds {len(off)} offsets for {n_users} users (expected {n_users + 2})")
    if off[0] != 0 or off[-1] != n or bool(np.any(np.diff(off) < 0)):
        raise _fail(d, f"sequences/offsets.npy is not monotone from 0 to the {n:,} events store.json counts")
    for k in ("items", "timestamps", "behaviors"):
        if arrays[k].ndim != 1 or len(arrays[k]) < n:
            raise _fail(d, f"sequences/{k}.npy holds {len(arrays[k]):,} values for {n:,} events")
    items = arrays["items"][:n]
    if n and (int(items.min()) < 1 or int(items.max()) > n_items):
        raise _fail(d, f"sequences/items.npy holds item ids outside the catalogue of {n_items:,} items")
    return arrays
