"""The daily statistics job: recompute yesterday from its file once its stragglers are in."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from aiohttp import web
from apscheduler.triggers.cron import CronTrigger

from ingestor import keys
from ingestor.scheduler import ScheduledJob

# Shortly after midnight, when yesterday's stragglers have arrived.
FINALISE_HOUR = 0
FINALISE_MINUTE = 15


def statistics_jobs(app: web.Application) -> list[ScheduledJob]:
    """The daily job that recomputes yesterday from its file and bounds its query rows."""
    settings = app[keys.settings_key]
    layout = app[keys.layout_key]

    async def finalise() -> str:
        # Imported here: pandas is only needed once a day, not at start-up.
        from chat_statistics.rebuild.run import rebuild

        yesterday = layout.today() - timedelta(days=1)
        report = await asyncio.to_thread(rebuild, settings.db_path, layout, yesterday, yesterday)
        return report.describe(yesterday, yesterday)

    if settings.database_url:
        # PostgreSQL's rows merge every node's events: one node's file cannot recompute them
        # (see `chatlog rebuild-stats`). The live rows are exact; only the pruning of the
        # day's query rows to its top ones is left undone there.
        return []
    trigger = CronTrigger(hour=FINALISE_HOUR, minute=FINALISE_MINUTE, timezone=settings.timezone)
    return [ScheduledJob("statistics-finalise", trigger, finalise)]
