"""Model kinds by name, and :func:`load` for any saved model folder."""

from __future__ import annotations

import importlib
from pathlib import Path

from chronorec.artifacts import FIX, MANIFEST, read_manifest
from chronorec.errors import ChronorecError, ConfigError, ModelFolderError, ModelLoadError

KINDS = {
    "popular": "chronorec.models.baselines.popular:MostPopular",
    "itemknn": "chronorec.models.baselines.itemknn:ItemKNN",
    "ease": "chronorec.models.baselines.ease:EASE",
    "gru4rec": "chronorec.models.sequential.gru4rec:GRU4Rec",
    "sasrec": "chronorec.models.sequential.sasrec:SASRec",
    "joint": "chronorec.models.sequential.joint:JointSASRec",
    "bert4rec": "chronorec.models.sequential.bert4rec:BERT4Rec",
    "hstu": "chronorec.models.sequential.hstu:HSTU",
    "contentrec": "chronorec.models.sequential.content:ContentSASRec",
    "ensemble": "chronorec.models.ensemble:Ensemble",
    "buyagain": "chronorec.models.baselines.buyagain:BuyAgain",
    "repeat-blend": "chronorec.models.repeat:RepeatBlend",
    "ptopfreq": "chronorec.models.baselines.topfreq:PTopFreq",
    "gptopfreq": "chronorec.models.baselines.topfreq:GPTopFreq",
    "tifuknn": "chronorec.models.baselines.tifuknn:TIFUKNN",
    "repeatnet": "chronorec.models.sequential.repeat_aware:RepeatNet",
}


class UnknownKindError(ConfigError, KeyError):
    """A model kind that is not registered: a user error (one line on the CLI) that is still a ``KeyError``."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class _Registry:
    def kinds(self) -> list[str]:
        return list(KINDS)

    def module(self, kind: str) -> str:
        return self._entry(kind)[0]

    def get(self, kind: str):
        module, name = self._entry(kind)
        return getattr(importlib.import_module(module), name)

    @staticmethod
    def _entry(kind: str) -> tuple[str, str]:
        if kind not in KINDS:
            raise UnknownKindError(f"unknown model kind {kind!r}; known: {', '.join(KINDS)}")
        module, name = KINDS[kind].split(":")
        return module, name


registry = _Registry()


REQUIRED = ("config.json", "model.safetensors", "users.parquet", "items.parquet")
"""The files every saved model lists (an ensemble: config.json and its member folders)."""


def load(directory: str | Path, device: str = "auto"):
    """Load any saved chronorec model from its directory.

    ``device`` places a neural model's weights ("auto": a GPU when present, else the CPU),
    whatever device it was trained on. The folder is checked first (:func:`read_manifest`); files
    that pass those checks but still contradict each other (a configuration that does not fit the
    weights, a missing tensor) raise :class:`ModelFolderError` naming the folder and the fix.
    """
    d = Path(directory)
    manifest = read_manifest(d)
    kind = manifest.get("kind")
    if kind not in KINDS:
        raise ModelLoadError(f"{directory}: unknown model kind {kind!r} in the manifest; known: {', '.join(KINDS)}")
    required = ("config.json",) if kind == "ensemble" else REQUIRED
    missing = [name for name in required if name not in manifest["files"]]
    if missing:
        raise ModelFolderError(f"{d / MANIFEST}: the manifest of a {kind} model does not list {missing}; {FIX}")
    cls = registry.get(kind)
    try:
        return cls._load_dir(d, device=device)
    except ChronorecError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as e:
        raise ModelFolderError(f"{d}: {_inconsistency(e)}; {FIX}") from e


def _inconsistency(e: Exception) -> str:
    """What a load failure past the manifest's checks says about the folder, in one line."""
    text = " ".join(str(e).split())
    if isinstance(e, RuntimeError) and "size mismatch" in text:
        return f"config.json does not fit the weights in model.safetensors ({text[:300]})"
    if isinstance(e, KeyError):
        return f"an entry the model needs is missing from its files: {text[:200]}"
    return f"the files do not make a loadable model ({type(e).__name__}: {text[:300]})"
