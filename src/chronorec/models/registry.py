"""Model kinds by name, and :func:`load` for any saved model folder."""

from __future__ import annotations

import importlib
from pathlib import Path

from chronorec.artifacts import read_manifest
from chronorec.errors import ModelLoadError

KINDS = {
    "popular": "chronorec.models.baselines.popular:MostPopular",
    "itemknn": "chronorec.models.baselines.itemknn:ItemKNN",
    "ease": "chronorec.models.baselines.ease:EASE",
    "gru4rec": "chronorec.models.sequential.gru4rec:GRU4Rec",
    "sasrec": "chronorec.models.sequential.sasrec:SASRec",
    "bert4rec": "chronorec.models.sequential.bert4rec:BERT4Rec",
    "hstu": "chronorec.models.sequential.hstu:HSTU",
    "contentrec": "chronorec.models.sequential.content:ContentSASRec",
    "ensemble": "chronorec.models.ensemble:Ensemble",
}


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
            raise KeyError(f"unknown model kind {kind!r}; known: {', '.join(KINDS)}")
        module, name = KINDS[kind].split(":")
        return module, name


registry = _Registry()


def load(directory: str | Path, device: str = "auto"):
    """Load any saved chronorec model from its directory.

    ``device`` places a neural model's weights ("auto": a GPU when present, else the CPU),
    whatever device it was trained on.
    """
    manifest = read_manifest(directory)
    kind = manifest.get("kind")
    if kind not in KINDS:
        raise ModelLoadError(f"{directory}: unknown model kind {kind!r} in the manifest; known: {', '.join(KINDS)}")
    cls = registry.get(kind)
    return cls._load_dir(Path(directory), device=device)
