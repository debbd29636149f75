"""Model artifacts: safetensors for arrays, JSON for configuration, Parquet for id maps.

Nothing is ever pickled. ``manifest.json`` records the model kind, the package version and
the SHA-256 of every file, and ``load`` refuses a directory whose files do not match it.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from chronorec.errors import ConfigError, ModelFolderError, ModelLoadError

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


MODEL_FILES = ("model.safetensors", "config.json", "users.parquet", "items.parquet", "item_names.parquet")
"""The files a model's save writes: one of them in a folder but not in its manifest is stale or planted."""

FIX = "save the model again (chronorec train --out) or restore the folder from a backup"


def _fail(message: str) -> ModelFolderError:
    return ModelFolderError(f"{message}; {FIX}")


def _own_entry(d: Path, name: Any, source: Path, what: str) -> Path:
    """``d / name`` when ``name`` is a plain name of a file or folder inside ``d`` (no path, no link)."""
    plain = isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\\" not in name
    if not plain or Path(name).is_absolute() or Path(name).name != name:
        raise ModelFolderError(
            f"{source}: refusing {what} {name!r}: a model folder lists only its own files, "
            f"never a path (no '/', '..' or absolute paths); {FIX}"
        )
    p = d / name
    if p.is_symlink():
        raise ModelFolderError(
            f"{p}: refusing {what} {name!r}: it is a symbolic link (possibly out of the folder); {FIX}"
        )
    return p


def read_json_object(path: Path, what: str) -> dict[str, Any]:
    """The JSON object in ``path``, or a :class:`ModelFolderError` naming the file (empty, truncated, not an object)."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _fail(f"{path}: {what} is not valid JSON (empty, truncated or corrupt: {e})") from None
    if not isinstance(value, dict):
        raise _fail(f"{path}: {what} must be a JSON object, not {type(value).__name__}")
    return value


def _check_readable(f: Path) -> None:
    """Open ``f`` by its format, so a corrupt file whose checksum was faked is refused with its name."""
    if f.suffix == ".json":
        if f.name == "config.json":
            read_json_object(f, "the model configuration")
        else:
            try:
                json.loads(f.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise _fail(f"{f}: not valid JSON ({e})") from None
    elif f.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(f), "numpy") as handle:
                list(handle.keys())
        except Exception as e:  # SafetensorError is not importable by name in every version
            raise _fail(f"{f}: corrupt or truncated safetensors file ({e})") from None
    elif f.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            pq.read_metadata(f)
        except Exception as e:  # pyarrow's ArrowInvalid / OSError
            raise _fail(f"{f}: corrupt or truncated Parquet file ({e})") from None


def _check_files(d: Path, path: Path, files: Any) -> None:
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise _fail(f"{path}: 'files' must map file names to SHA-256 digests")
    for name, digest in files.items():
        f = _own_entry(d, name, path, "manifest entry")
        if Path(name).suffix not in ALLOWED_SUFFIXES:
            raise ModelLoadError(f"{path}: refusing to load {name!r} (only JSON, safetensors and Parquet are allowed)")
        if not f.exists():
            raise FileNotFoundError(f"{d}: {name} is listed in the manifest but missing")
        if not f.is_file():
            raise _fail(f"{f}: listed in the manifest as a file but is not one")
        if _sha256(f) != digest:
            raise _fail(f"{f}: checksum does not match the manifest (file changed or corrupt)")
        _check_readable(f)
    stale = [n for n in MODEL_FILES if n not in files and (d / n).exists()]
    if stale:
        raise _fail(f"{d}: {stale} are not in the manifest (left by another save, or planted)")


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """The folder's manifest after checking it: every listed file inside the folder (no paths, no
    links), present, matching its SHA-256 and readable in its format; ``members`` (an ensemble's
    sub-folders) inside the folder too. A problem raises :class:`ModelFolderError` (or
    ``FileNotFoundError`` for a missing folder or file) naming the folder, the file and the fix."""
    d = Path(directory)
    path = d / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{d}: no {MANIFEST}; not a chronorec model directory")
    recover_kept(d)
    if path.is_symlink() or not path.is_file():
        raise _fail(f"{path}: the manifest must be a plain file in the folder")
    manifest = read_json_object(path, "the manifest")
    if manifest.get("format") != "chronorec-model":
        raise ModelLoadError(f"{path}: not a chronorec model manifest")
    if not isinstance(manifest.get("kind"), str):
        raise _fail(f"{path}: 'kind' must be a model kind name")
    _check_files(d, path, manifest.get("files"))
    members = manifest.get("members")
    if members is not None:
        if not isinstance(members, list):
            raise _fail(f"{path}: 'members' must be a list of sub-folder names")
        for name in members:
            if not _own_entry(d, name, path, "ensemble member").is_dir():
                raise FileNotFoundError(f"{d}: ensemble member {name} is listed in the manifest but missing")
    return manifest


def open_saved(path: str | Path, kind: str, what: str, hint: str = "") -> Path:
    """A saved folder of ``kind`` after :func:`read_manifest`'s checks; anything else is a
    :class:`ModelLoadError` naming the folder (``what``: "behaviour model", "forecaster"...; ``hint``:
    how such a folder is made)."""
    d = Path(path)
    if not d.is_dir():
        raise ModelLoadError(f"{d}: no such {what} folder")
    try:
        manifest = read_manifest(d)
    except FileNotFoundError as e:
        raise ModelLoadError(str(e)) from None
    if manifest.get("kind") != kind:
        raise ModelLoadError(f"{d} holds a {manifest.get('kind')!r}, not a {what}{f' ({hint})' if hint else ''}")
    return d


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


def check_target(path: str | Path, marker: str = MANIFEST) -> None:
    """Refuse, before any work, a save target that :func:`atomic_dir` would refuse after it."""
    _check_target(Path(path), marker)


def _unwritable(final: Path, e: OSError) -> str:
    return f"cannot write {final}: {e.strerror or type(e).__name__.lower()}; choose an output folder you can write to"


def check_writable(final: Path) -> None:
    """Create and remove a probe folder where the save will go (its nearest existing folder): a target
    under ``/proc`` or a read-only mount fails now, naming the target, not after the work."""
    base = next((p for p in (final.parent, *final.parent.parents) if p.exists()), None)
    if base is None or not base.is_dir():
        return  # a path under a file: the caller's own check names it
    probe = base / f".{final.name}.probe-{uuid.uuid4().hex[:12]}"
    try:
        probe.mkdir()
        probe.rmdir()
    except OSError as e:
        raise ConfigError(_unwritable(final, e)) from e


def _check_target(final: Path, marker: str) -> None:
    check_writable(final)
    if final.exists() and not final.is_dir():
        raise ConfigError(f"{final} exists and is not a folder; choose another output folder")
    if final.is_dir() and any(final.iterdir()) and not (final / marker).exists():
        raise ConfigError(
            f"{final} is a non-empty folder without {marker}: refusing to replace it; choose another output folder"
        )


def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def _carry_over(old: Path, final: Path, *, drop: bool = True) -> None:
    """Move the :data:`KEEP_ON_REPLACE` folders of a replaced version into ``final``, then drop it."""
    for name in KEEP_ON_REPLACE:
        if (old / name).is_dir() and final.is_dir() and not (final / name).exists():
            (old / name).rename(final / name)
    if drop:
        shutil.rmtree(old, ignore_errors=True)


def recover_kept(final: Path) -> None:
    """A reader's share of :func:`_recover`: bring back the live state a write killed after its swap
    left in the replaced version (moves only; removes nothing, so a write in progress is safe)."""
    final = Path(final)
    if not final.is_dir() or all((final / name).exists() for name in KEEP_ON_REPLACE):
        return
    for left in [*final.parent.glob(f".{final.name}.old-*"), *final.parent.glob(f".{final.name}.tmp-*")]:
        _carry_over(left, final, drop=False)


def _recover(final: Path) -> None:
    """Finish what a killed write left next to ``final``: put a replaced version back where the new
    one never arrived, carry a replaced version's live state over, remove half-written folders."""
    olds = sorted(final.parent.glob(f".{final.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if olds and not final.exists():
        olds.pop().rename(final)  # killed between the two renames of the fallback path
    for left in [*olds, *final.parent.glob(f".{final.name}.tmp-*")]:
        _carry_over(left, final)  # a .tmp- folder holding live/ is a replaced version (swapped out)


@contextlib.contextmanager
def atomic_dir(path: str | Path, *, marker: str = MANIFEST) -> Iterator[Path]:
    """Write a folder aside, then swap it into place.

    Yields an empty temporary folder next to ``path``; when the block ends without an error, its
    files are fsynced and it replaces ``path`` in one step (an atomic exchange on Linux; elsewhere
    two renames, undone by the next write if a kill falls between them). Readers see the old folder
    or the new one, never a mix; a failed or killed write leaves the old folder as it was; nothing
    stale of the old folder survives (except :data:`KEEP_ON_REPLACE`). An existing non-empty folder
    without ``marker`` (the file a complete save writes) is refused rather than replaced.
    """
    final = Path(path)
    _check_target(final, marker)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        _recover(final)
        tmp = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex[:12]}"
        tmp.mkdir()
    except OSError as e:
        raise ConfigError(_unwritable(final, e)) from e
    old: Path | None = None
    try:
        yield tmp
        _fsync_tree(tmp)
        if final.exists() and _exchange(tmp, final):
            old = tmp  # the replaced version, now in the temporary folder
        else:
            if final.exists():
                old = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:12]}"
                final.rename(old)
            tmp.rename(final)
        _fsync_dir(final.parent)
    except BaseException:
        if old is not tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        _carry_over(old, final)
