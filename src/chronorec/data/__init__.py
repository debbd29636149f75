"""Data: reading, validating and holding behaviour logs.

``readers`` (files and frames to raw tables) -> ``ingest`` (validation, rejects, dedupe, k-core;
``report`` accounts for every row) -> ``eventlog`` (the id-mapped, time-sorted :class:`EventLog`
and :func:`read_events`), with ``idmap``, ``sequences`` (per-user CSR arrays), ``clean``
(dedupe, k-core, sessions) and ``columns`` (canonical column names) below.
"""

from chronorec.data.eventlog import EventLog, read_events
from chronorec.data.ingest import IngestError, IngestReport

__all__ = ["EventLog", "IngestError", "IngestReport", "read_events"]
