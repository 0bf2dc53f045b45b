"""The ingest daemon's application factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import aiosqlite
from aiohttp import web

from ingestor import keys
from ingestor.conversations.redaction import PiiRedactor
from ingestor.conversations.sampling import ConversationSampler
from ingestor.conversations.service import ConversationService
from ingestor.conversations.store import ConversationStore
from ingestor.conversations.summary import ExtractiveSummarizer
from ingestor.dayfiles import DayFileWriter
from ingestor.idempotency import RecentIdWindow
from ingestor.index import LogIndex
from ingestor.jobs import ScheduledJob, scheduler_context
from ingestor.lifecycle.jobs import lifecycle_jobs
from ingestor.metrics import IngestMetrics
from ingestor.records import RecordBuilder
from ingestor.recovery import rebuild_window, repair_day_files
from ingestor.routes import setup_routes
from ingestor.statistics import StatisticsObserver, statistics_jobs
from ingestor.writer import GroupCommitWriter
from shared.db import open_writer
from shared.errors import error_middleware
from shared.layout import StorageLayout
from shared.locking import writer_lock
from shared.privacy import user_hasher
from shared.settings import Settings


def content_redactor(settings: Settings) -> Callable[[str], str] | None:
    """The PII redaction applied to message text before storage, unless turned off."""
    if not settings.pii_redaction:
        return None
    return PiiRedactor.default(settings.pii_extra_patterns).redact


def conversation_service(
    settings: Settings,
    layout: StorageLayout,
    files: DayFileWriter,
    conn: aiosqlite.Connection,
    db_lock: asyncio.Lock,
    metrics: IngestMetrics,
) -> ConversationService:
    """The conversation history service of this ingestor."""
    return ConversationService(
        layout,
        ConversationStore(layout, files, conn, db_lock),
        ConversationSampler(settings.conversation_sample_rate),
        ExtractiveSummarizer(),
        user_hasher(settings),
        timedelta(minutes=settings.conversation_idle_minutes),
        redact=content_redactor(settings),
        closed=metrics.conversations_closed,
    )


def create_app(settings: Settings) -> web.Application:
    """The ingestor: ``POST /v1/logs``, ``/healthz``, ``/metrics``."""
    app = web.Application(middlewares=[error_middleware], client_max_size=settings.max_body_bytes)
    app[keys.settings_key] = settings
    app[keys.layout_key] = StorageLayout.from_settings(settings)
    app[keys.metrics_key] = IngestMetrics()
    factories: list[Callable[[web.Application], list[ScheduledJob]]] = [lifecycle_jobs, statistics_jobs]
    app[keys.job_factories_key] = factories
    app.cleanup_ctx.append(_storage)
    app.cleanup_ctx.append(scheduler_context)
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
        app[keys.builder_key] = RecordBuilder(
            layout, user_hasher(settings), settings.log_retention_days, redact=content_redactor(settings)
        )
        files = DayFileWriter(layout, settings.zstd_level)
        app[keys.files_key] = files
        conn = await open_writer(settings.db_path)
        try:
            index = LogIndex(conn, layout, observers=[StatisticsObserver(settings.timezone)])
            await index.catch_up()
            index.start()
            app[keys.index_key] = index
            conversations = conversation_service(settings, layout, files, conn, index.lock, metrics)
            app[keys.conversations_key] = conversations
            await conversations.recover()
            conversations.start()
            metrics.index_lag.set_function(lambda: index.lag_events)
            metrics.open_conversations.set_function(lambda: len(conversations.assembler))
            window = RecentIdWindow(settings.idempotency_window)
            rebuild_window(layout, window, settings.idempotency_window)
            writer = GroupCommitWriter(
                layout, files, window, index, metrics,
                batch_max_events=settings.batch_max_events,
                flush_interval_ms=settings.flush_interval_ms,
                queue_max_events=settings.queue_max_events,
                after_commit=[conversations.observe],
            )
            app[keys.writer_key] = writer
            writer.start()
            try:
                yield
            finally:
                await writer.stop()
                await conversations.stop()
        finally:
            await conn.close()
            files.close()
