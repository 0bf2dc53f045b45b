"""Statistics in the ingestor: live updates as batches are indexed, and the daily finalise.

The observer runs inside ``LogIndex``'s transaction, so a batch's statistics commit
together with the line offsets that say it was applied: every stored event is
counted once, including events replayed after a crash. Retried events never reach
it (the writer drops known log_ids before writing).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from zoneinfo import ZoneInfo

import aiosqlite
from aiohttp import web
from apscheduler.triggers.cron import CronTrigger

from ingestor import keys
from ingestor.jobs import ScheduledJob
from ingestor.records import EncodedRecord
from shared.stats.live import LiveBatch, apply_batch
from shared.stats.sessions import PlaceCache

# Shortly after midnight, when yesterday's stragglers have arrived.
FINALISE_HOUR = 0
FINALISE_MINUTE = 15


class StatisticsObserver:
    """The ``IndexObserver`` that keeps the statistics tables current."""

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

    async def apply(self, conn: aiosqlite.Connection, pending: object) -> None:
        """Write taken deltas into the statistics rows inside the caller's transaction."""
        assert isinstance(pending, LiveBatch)
        await apply_batch(conn, pending, self._places)


def statistics_jobs(app: web.Application) -> list[ScheduledJob]:
    """The daily job that recomputes yesterday from its file and bounds its query rows."""
    settings = app[keys.settings_key]
    layout = app[keys.layout_key]

    async def finalise() -> str:
        # Imported here: pandas is only needed once a day, not at start-up.
        from shared.stats.rebuild import rebuild

        yesterday = layout.today() - timedelta(days=1)
        report = await asyncio.to_thread(rebuild, settings.db_path, layout, yesterday, yesterday)
        return report.describe(yesterday, yesterday)

    trigger = CronTrigger(hour=FINALISE_HOUR, minute=FINALISE_MINUTE, timezone=settings.timezone)
    return [ScheduledJob("statistics-finalise", trigger, finalise)]
