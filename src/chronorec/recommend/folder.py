"""A saved model folder's lists: its model with the folder's recommendation pipeline.

The library (``chronorec.load(dir)``), the CLI, the service and the batch job rank a folder's lists
through :func:`pipeline_for` (the folder's ``recommend.json``, see
:meth:`~chronorec.recommend.options.RecommendSettings.of_folder`); :func:`load` attaches it to the
model as its list path (:class:`ModelLists`), so ``model.recommend`` ranks the same lists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from chronorec.data import columns as C
from chronorec.recommend import frames
from chronorec.recommend.items import ItemTable, PopularityIndex
from chronorec.recommend.options import RecommendOptions, RecommendSettings
from chronorec.recommend.pipeline import RecommendPipeline


def pipeline_for(
    model_dir: str | Path,
    model: Any = None,
    *,
    settings_path: str | Path | None = None,
    items: ItemTable | None = None,
    popularity: PopularityIndex | None = None,
    device: str = "auto",
) -> RecommendPipeline:
    """The pipeline of a saved model folder: its model (``model``, or loaded from the folder) with the
    folder's ``recommend.json`` (or ``settings_path``)."""
    if model is None:
        from chronorec.models.registry import load as load_model

        model = load_model(model_dir, device=device)
    settings = RecommendSettings.of_folder(model_dir, settings_path)
    return RecommendPipeline(model, items=items, settings=settings, popularity=popularity)


class ModelLists:
    """A pipeline as a model's list path (:class:`chronorec.models.protocol.ListPath`): the frames of
    ``Recommender.recommend`` and ``recommend_from_history``, ranked under the pipeline's settings."""

    def __init__(self, pipeline: RecommendPipeline):
        self.pipeline = pipeline

    def model_lists(
        self,
        users: Sequence[Any] | None,
        histories: Sequence[Sequence[Any]] | None,
        k: int,
        *,
        exclude_seen: bool | None = None,
        user_ids: Sequence[Any] | None = None,
        context: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> pd.DataFrame:
        """``user_id, item_id, score, rank`` with raw model scores for external ``users`` (their training
        histories) or ``histories`` (external item ids; ``context`` per history with one value per item
        and the request's under ``"next"``). ``exclude_seen`` None: the settings' filter, else the
        model's history protocol. The lists' warnings are in ``frame.attrs["warnings"]``."""
        pipe = self.pipeline
        filters = pipe.settings.filters
        if exclude_seen is not None:
            filters = filters.model_copy(update={"exclude_seen": exclude_seen})
        model_contexts = None
        if histories is not None and context is not None:
            model = pipe.model
            model_contexts = [
                model.encode_history_context(c, model.items.to_internal(list(h)) > 0) if c else None
                for h, c in zip(histories, context, strict=True)
            ]
        options = RecommendOptions(k=k, filters=filters)
        labels, lists = frames.recommend_lists(pipe, users, histories, options, user_ids, None, False, model_contexts)
        out = pipe.to_frame(labels, lists, with_names=False, score="raw")[[C.USER, C.ITEM, C.SCORE, C.RANK]]
        out.attrs["warnings"] = frames.summarise_warnings(lists)
        return out


def load(directory: str | Path, device: str = "auto") -> Any:
    """The model saved in ``directory`` (see :func:`chronorec.models.registry.load`), whose
    ``recommend`` and ``recommend_from_history`` rank through the folder's pipeline."""
    pipe = pipeline_for(directory, device=device)
    pipe.model.list_path = ModelLists(pipe)
    return pipe.model


__all__ = ["ModelLists", "load", "pipeline_for"]
