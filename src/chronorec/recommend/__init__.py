"""Recommendation lists for products: options, item tables, the pipeline and its calibration.

* :mod:`~chronorec.recommend.options` -- per-request options and a deployment's settings;
* :mod:`~chronorec.recommend.items` -- item tables, popularity by context, id helpers;
* :mod:`~chronorec.recommend.filters` -- allow / deny lists, attribute filters, seen items;
* :mod:`~chronorec.recommend.pipeline` -- :class:`RecommendPipeline` (score, blend, filter,
  re-rank, explain);
* :mod:`~chronorec.recommend.calibrate` -- temperature and blend tuning, post-processing metrics.
"""

from chronorec.recommend.calibrate import (
    calibrate_temperature,
    evaluate_postprocessing,
    list_metrics,
    next_item_cases,
    tune_blend,
)
from chronorec.recommend.filters import banned_items, seen_items
from chronorec.recommend.items import (
    DAYPARTS,
    ItemTable,
    PopularityIndex,
    context_keys,
    daypart,
    item_embeddings,
    to_internal,
)
from chronorec.recommend.options import (
    MAX_HISTORY,
    MAX_ID_LIST,
    BlendOptions,
    FilterOptions,
    ItemId,
    RecommendOptions,
    RecommendSettings,
    RerankOptions,
)
from chronorec.recommend.pipeline import HistoryEvents, RankedList, RecommendPipeline

__all__ = [
    "DAYPARTS",
    "MAX_HISTORY",
    "MAX_ID_LIST",
    "BlendOptions",
    "FilterOptions",
    "HistoryEvents",
    "ItemId",
    "ItemTable",
    "PopularityIndex",
    "RankedList",
    "RecommendOptions",
    "RecommendPipeline",
    "RecommendSettings",
    "RerankOptions",
    "banned_items",
    "calibrate_temperature",
    "context_keys",
    "daypart",
    "evaluate_postprocessing",
    "item_embeddings",
    "list_metrics",
    "next_item_cases",
    "seen_items",
    "to_internal",
    "tune_blend",
]
