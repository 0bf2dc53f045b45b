"""Live statistics: the line observer that keeps the statistics tables current.

The observer runs inside ``LineApplier``'s transaction, so a batch's statistics commit
together with the line offsets that say it was applied: every stored event is
counted once, including events replayed after a crash. Retried events never reach
it (the writer drops known log_ids before writing). The daily finalise is in
``ingestor.statistics_jobs``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from chat_statistics.live import LiveBatch, apply_batch
from chat_statistics.sessions import PlaceCache
from ingestor.records import EncodedRecord


class StatisticsObserver:
    """The ``LineObserver`` that keeps the statistics tables current."""

    def __init__(self, tz: ZoneInfo) -> None:
        self._tz = tz
        self._places = PlaceCache()
        self._batch = LiveBatch(tz)

    def fold(self, records: Sequence[EncodedRecord]) -> None:
        """Aggregate a written batch into the pending per-hour deltas (no records are kept)."""
        self._batch.add((item.record, item.day) for item in records)

    def take(self) -> LiveBatch:
        """The pending deltas, replaced by empty ones."""
        batch, self._batch = self._batch, LiveBatch(self._tz)
        return batch

    def apply(self, conn: sqlite3.Connection, pending: object) -> None:
        """Write taken deltas into the statistics rows inside the caller's transaction."""
        assert isinstance(pending, LiveBatch)
        apply_batch(conn, pending, self._places)
