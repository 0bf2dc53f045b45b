"""The ingest daemon's application factory."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from ingestor import keys
from ingestor.conversations.service import conversation_service
from ingestor.dayfiles import DayFileWriter
from ingestor.derived.process import DerivedStateProcess
from ingestor.feedback import FeedbackBuilder
from ingestor.idempotency import RecentIdWindow
from ingestor.lifecycle.erasure import finish_pending_erasure
from ingestor.lifecycle.jobs import lifecycle_jobs
from ingestor.metrics import IngestMetrics
from ingestor.records import RecordBuilder
from ingestor.recovery import realign_offsets, rebuild_window, repair_day_files
from ingestor.redaction import content_redactor
from ingestor.report_jobs import report_jobs
from ingestor.routes import setup_routes
from ingestor.scheduler import JobFactory, scheduler_context
from ingestor.statistics_jobs import statistics_jobs
from ingestor.writer import GroupCommitWriter
from shared.db import connect_store_sync, open_store
from shared.errors import error_middleware
from shared.layout import StorageLayout
from shared.locking import writer_lock
from shared.privacy import UserHasher, store_key_for_start
from shared.settings import Settings

# Every concern's scheduled jobs, in the order they are added to the scheduler.
JOB_FACTORIES: tuple[JobFactory, ...] = (lifecycle_jobs, statistics_jobs, report_jobs)


def create_app(settings: Settings) -> web.Application:
    """The ingestor: ``POST /v1/logs``, ``POST /v1/conversations``, ``/healthz``, ``/metrics``.

    Sessions, statistics and conversation assembly run in the derived-state process
    it starts (``ingestor.derived``), so the ingest path only validates, writes and fsyncs.
    """
    # Bodies are inflated by read_body, within the limit and with JSON errors (not aiohttp's).
    app = web.Application(
        middlewares=[error_middleware], client_max_size=settings.max_body_bytes,
        handler_args={"auto_decompress": False},
    )
    app[keys.settings_key] = settings
    app[keys.layout_key] = StorageLayout.from_settings(settings)
    app[keys.metrics_key] = IngestMetrics()
    app.cleanup_ctx.append(_storage)
    app.cleanup_ctx.append(scheduler_context(JOB_FACTORIES))
    setup_routes(app)
    return app


async def _storage(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.settings_key]
    layout = app[keys.layout_key]
    metrics = app[keys.metrics_key]
    layout.ensure_dirs()
    with writer_lock(layout):
        report = repair_day_files(layout)
        metrics.repaired_bytes.inc(report.torn_bytes)
        with contextlib.closing(connect_store_sync(settings)) as setup:
            # A changed key would silently give every returning user a new user_hash.
            key = store_key_for_start(settings, setup)
            realign_offsets(setup, layout, report.salvaged)
            await asyncio.to_thread(finish_pending_erasure, layout, setup, settings.zstd_level, settings.backup_keep)
        redact = content_redactor(settings)
        app[keys.builder_key] = RecordBuilder(layout, UserHasher(key), settings.log_retention_days, redact=redact)
        app[keys.feedback_builder_key] = FeedbackBuilder(
            layout, UserHasher(key), settings.log_retention_days, redact=redact
        )
        files = DayFileWriter(layout, settings.zstd_level)
        app[keys.files_key] = files
        derived = DerivedStateProcess(settings, metrics)
        await derived.start()
        app[keys.derived_key] = derived
        # This connection only indexes conversations posted whole; the rest is the derived process's.
        conn = await open_store(settings)
        try:
            closed = metrics.conversations_closed
            app[keys.conversations_key] = conversation_service(
                settings, layout, files, conn, asyncio.Lock(),
                on_closed=lambda saved: closed.labels(outcome="saved" if saved else "dropped").inc(),
            )
            window = RecentIdWindow(settings.idempotency_window)
            rebuild_window(layout, window, settings.idempotency_window)
            writer = GroupCommitWriter(
                layout, files, window, metrics,
                batch_max_events=settings.batch_max_events,
                flush_interval_ms=settings.flush_interval_ms,
                queue_max_events=settings.queue_max_events,
                after_commit=[derived.notify],
                after_feedback=[derived.notify_days],
                behind=derived.behind,
            )
            app[keys.writer_key] = writer
            derived.storage_error = lambda: writer.storage_error
            writer.start()
            try:
                yield
            finally:
                await writer.stop()
                await derived.stop()
        finally:
            await conn.close()
            files.close()
