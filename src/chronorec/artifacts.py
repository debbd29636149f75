"""Model artifacts: safetensors for arrays, JSON for configuration, Parquet for id maps.

Nothing is ever pickled. ``manifest.json`` records the model kind, the package version and
the SHA-256 of every file, and ``load`` refuses a directory whose files do not match it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from chronorec.errors import ConfigError, ModelLoadError

MANIFEST = "manifest.json"
ALLOWED_SUFFIXES = {".json", ".safetensors", ".parquet"}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_tensors(path: Path, tensors: dict[str, Any]) -> None:
    """Save numpy arrays or torch tensors with safetensors (numpy backend, contiguous copies)."""
    from safetensors.numpy import save_file

    arrays = {}
    for k, v in tensors.items():
        if hasattr(v, "detach"):
            v = v.detach().cpu().contiguous().numpy()
        arrays[k] = np.ascontiguousarray(v)
    save_file(arrays, str(path))


def load_tensors(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(path))


def write_manifest(directory: Path, kind: str, extra: dict[str, Any] | None = None) -> None:
    from chronorec import __version__

    files = {p.name: _sha256(p) for p in sorted(directory.iterdir()) if p.is_file() and p.name != MANIFEST}
    bad = [n for n in files if Path(n).suffix not in ALLOWED_SUFFIXES]
    if bad:
        raise ValueError(f"refusing to write a manifest over non-artifact files: {bad}")
    manifest = {
        "format": "chronorec-model",
        "format_version": 1,
        "kind": kind,
        "chronorec_version": __version__,
        "files": files,
    }
    manifest.update(extra or {})
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2))


def read_manifest(directory: str | Path) -> dict[str, Any]:
    d = Path(directory)
    path = d / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{d}: no {MANIFEST}; not a chronorec model directory")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != "chronorec-model":
        raise ModelLoadError(f"{path}: not a chronorec model manifest")
    for name, digest in manifest["files"].items():
        if Path(name).suffix not in ALLOWED_SUFFIXES:
            raise ModelLoadError(f"{path}: refusing to load {name!r} (only JSON, safetensors and Parquet are allowed)")
        f = d / name
        if not f.exists():
            raise FileNotFoundError(f"{d}: {name} is listed in the manifest but missing")
        if _sha256(f) != digest:
            raise ModelLoadError(f"{f}: checksum does not match the manifest (file changed or corrupt)")
    return manifest


KEEP_ON_REPLACE = ("live",)
"""Sub-folders of an existing model folder carried into its replacement (a service's live events)."""


def _fsync_tree(root: Path) -> None:
    for p in sorted(root.rglob("*")):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())
    _fsync_dir(root)


def _fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_target(final: Path, marker: str) -> None:
    if final.exists() and not final.is_dir():
        raise ConfigError(f"{final} exists and is not a folder; choose another output folder")
    if final.is_dir() and any(final.iterdir()) and not (final / marker).exists():
        raise ConfigError(
            f"{final} is a non-empty folder without {marker}: refusing to replace it; choose another output folder"
        )


@contextlib.contextmanager
def atomic_dir(path: str | Path, *, marker: str = MANIFEST) -> Iterator[Path]:
    """Write a folder aside, then rename it into place.

    Yields an empty temporary folder next to ``path``; when the block ends without an error, its
    files are fsynced and it replaces ``path``. Readers see the old folder or the new one, never a
    mix; a failed or killed write leaves the old folder as it was; nothing stale of the old folder
    survives (except :data:`KEEP_ON_REPLACE`). An existing non-empty folder without ``marker`` (the
    file a complete save writes) is refused rather than replaced.
    """
    final = Path(path)
    _check_target(final, marker)
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(f".{final.name}.tmp-*"):  # left by a killed write
        shutil.rmtree(stale, ignore_errors=True)
    tmp = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    try:
        yield tmp
        _fsync_tree(tmp)
        old = None
        if final.exists():
            old = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:12]}"
            final.rename(old)
        tmp.rename(final)
        _fsync_dir(final.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        for name in KEEP_ON_REPLACE:
            if (old / name).is_dir() and not (final / name).exists():
                (old / name).rename(final / name)
        shutil.rmtree(old, ignore_errors=True)
