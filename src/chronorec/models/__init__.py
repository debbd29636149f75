"""Recommendation models. All share the API of :class:`chronorec.models.base.Recommender`.

``baselines/`` holds the non-neural models, ``sequential/`` the neural sequence models (their
batching, context encoding, blocks and losses beside one file per model), ``ensemble`` the
score-level ensemble, and ``registry`` the model kinds by name and :func:`load`.
"""

from __future__ import annotations

from chronorec.models.registry import KINDS, load, registry

__all__ = ["KINDS", "load", "registry"]
