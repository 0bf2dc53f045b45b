"""The lifecycle's scheduled jobs inside the ingestor, each run in a worker thread.

Compression and retention run hourly: when nothing is due they only list two folders,
and an ingestor that was down at some fixed hour still catches up within the hour. The
backup job also runs hourly but only backs up when the newest backup is a day old, so a
restart never skips a day. Checkpoints run every minute; the integrity check daily at
04:30 and once ten minutes after start.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from aiohttp import web
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from ingestor import keys
from ingestor.lifecycle.backup import backup_database, newest_backup_age
from ingestor.lifecycle.checkpoint import checkpoint_wal
from ingestor.lifecycle.compression import compress_due
from ingestor.lifecycle.policy import LifecycleError
from ingestor.lifecycle.retention import apply_retention
from ingestor.lifecycle.verification import verify_storage
from ingestor.scheduler import ScheduledJob
from shared.db import connect_store_sync
from shared.layout import Stream

BACKUP_EVERY = timedelta(days=1)
# The first integrity check soon after start, so its gauges are in /metrics the same day.
FIRST_VERIFY_AFTER = timedelta(minutes=10)


def lifecycle_jobs(app: web.Application) -> list[ScheduledJob]:
    """Compression, retention, daily backup, WAL checkpoints and the daily integrity check."""
    settings = app[keys.settings_key]
    layout = app[keys.layout_key]
    metrics = app[keys.metrics_key].lifecycle
    tz = settings.timezone

    async def compress() -> str:
        report = await asyncio.to_thread(compress_due, layout, settings, files=app[keys.files_key])
        metrics.files.labels(action="compress").inc(len(report.done))
        metrics.bytes_before.labels(action="compress").inc(report.bytes_before)
        metrics.bytes_after.labels(action="compress").inc(report.bytes_after)
        if report.failed:
            raise LifecycleError(report.account())
        return report.account()

    def _retention_sync() -> str:
        conn = connect_store_sync(settings)
        try:
            report = apply_retention(layout, settings, conn, files=app[keys.files_key])
        finally:
            conn.close()
        metrics.files.labels(action="delete").inc(report.files)
        metrics.bytes_before.labels(action="delete").inc(report.bytes)
        return report.account()

    async def retention() -> str:
        return await asyncio.to_thread(_retention_sync)

    def _backup_sync() -> str:
        age = newest_backup_age(layout.backups_dir)
        if age is not None and age < BACKUP_EVERY:
            return f"skipped: the newest backup is {age.total_seconds() / 3600:.1f} h old"
        result = backup_database(settings.db_path, layout.backups_dir, settings.backup_keep)
        metrics.files.labels(action="backup").inc()
        metrics.bytes_after.labels(action="backup").inc(result.bytes)
        return result.account()

    async def backup() -> str:
        return await asyncio.to_thread(_backup_sync)

    async def checkpoint() -> str:
        result = await asyncio.to_thread(checkpoint_wal, settings.db_path)
        if result is None:
            return "no database yet"
        metrics.wal_bytes.set(result.wal_bytes_after)
        return result.account()

    async def verify() -> str:
        report = await asyncio.to_thread(verify_storage, layout, settings)
        for stream in Stream:
            counts = report.totals(stream)
            metrics.stored_lines.labels(stream=stream.value).set(counts.lines)
            metrics.torn_lines.labels(stream=stream.value).set(counts.torn)
            metrics.corrupt_lines.labels(stream=stream.value).set(counts.corrupt)
        # A damaged original in quarantine counts until the operator has dealt with it.
        metrics.damaged_files.set(sum(f.damaged for f in report.files) + len(report.quarantined))
        metrics.database_ok.set(0 if report.database.problems else 1)
        if report.damaged:
            problems = [f"{f.path.name}: {'; '.join(f.problems)}" for f in report.files if f.damaged]
            problems += [f"{q.kept.day_file.name}: {q.describe()}" for q in report.quarantined]
            problems += report.database.problems
            raise LifecycleError(report.account() + ": " + " | ".join(problems[:10]))
        return report.account()

    # With PostgreSQL the database is the server's to back up and checkpoint (pg_dump, WAL archiving).
    sqlite_jobs = [] if settings.database_url else [
        ScheduledJob("sqlite-backup", IntervalTrigger(hours=1, timezone=tz), backup),
        ScheduledJob("sqlite-checkpoint", IntervalTrigger(minutes=1, timezone=tz), checkpoint, logging.DEBUG),
    ]
    return [
        ScheduledJob("lifecycle-compress", IntervalTrigger(hours=1, timezone=tz), compress),
        ScheduledJob("lifecycle-retention", IntervalTrigger(hours=1, timezone=tz), retention),
        *sqlite_jobs,
        ScheduledJob(
            "storage-verify",
            OrTrigger([
                DateTrigger(datetime.now(tz) + FIRST_VERIFY_AFTER, timezone=tz),
                CronTrigger(hour=4, minute=30, timezone=tz),
            ]),
            verify,
        ),
    ]
