"""Model artifacts: safetensors for arrays, JSON for configuration, Parquet for id maps.

Nothing is ever pickled. ``manifest.json`` records the model kind, the package version and
the SHA-256 of every file, and ``load`` refuses a directory whose files do not match it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from chronorec.errors import ModelLoadError

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
