"""Benchmark datasets: loaders for common file formats and the shared data folder.

Names are imported lazily (nothing is read or imported at ``import chronorec.datasets``).
See :mod:`chronorec.datasets.formats` (benchmark files), :mod:`chronorec.datasets.temporal`
(event logs for the temporal commands, local time) and :mod:`chronorec.datasets.synthetic`.
"""

from __future__ import annotations

from chronorec.lazy import lazy_getattr

_EXPORTS = {
    "DATASETS": "chronorec.datasets.formats",
    "data_dir": "chronorec.datasets.formats",
    "dataset_path": "chronorec.datasets.formats",
    "load_dataset": "chronorec.datasets.formats",
    "load_movielens": "chronorec.datasets.formats",
    "load_movielens_items": "chronorec.datasets.formats",
    "load_ml1m_item_names": "chronorec.datasets.formats",
    "load_sequence_file": "chronorec.datasets.formats",
    "load_taobao": "chronorec.datasets.temporal",
    "load_temporal_dataset": "chronorec.datasets.temporal",
    "read_event_frame": "chronorec.datasets.temporal",
    "utc_offset_hours": "chronorec.datasets.temporal",
}

__all__ = list(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
