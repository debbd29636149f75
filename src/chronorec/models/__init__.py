"""Recommendation models. All share the API of ``chronorec.models.base.Recommender``."""

from __future__ import annotations

import importlib

_KINDS = {
    "popular": "chronorec.models.popular:MostPopular",
    "itemknn": "chronorec.models.itemknn:ItemKNN",
    "ease": "chronorec.models.ease:EASE",
    "gru4rec": "chronorec.models.gru4rec:GRU4Rec",
    "sasrec": "chronorec.models.sasrec:SASRec",
    "bert4rec": "chronorec.models.bert4rec:BERT4Rec",
    "hstu": "chronorec.models.hstu:HSTU",
    "contentrec": "chronorec.models.content:ContentSASRec",
    "ensemble": "chronorec.models.ensemble:Ensemble",
}


class _Registry:
    def kinds(self) -> list[str]:
        return list(_KINDS)

    def get(self, kind: str):
        if kind not in _KINDS:
            raise KeyError(f"unknown model kind {kind!r}; known: {', '.join(_KINDS)}")
        module, name = _KINDS[kind].split(":")
        return getattr(importlib.import_module(module), name)


registry = _Registry()
