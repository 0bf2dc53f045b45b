"""The analytics API's application factory: read-only statistics over the ingestor's database."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from analytics_api import keys
from analytics_api.groupings import Groupings
from analytics_api.metrics import AnalyticsMetrics
from analytics_api.routes import setup_routes
from analytics_api.stores import open_database
from shared.errors import error_middleware
from shared.layout import StorageLayout
from shared.settings import Settings

# Reads are short; two threads keep both cores busy without queueing behind one slow read.
READ_WORKERS = 2


def create_app(settings: Settings) -> web.Application:
    """The analytics API: summary, timeline, collections, ``/healthz`` and ``/metrics``.

    It never writes: the database (the SQLite file, or PostgreSQL with
    ``CHATLOG_DATABASE_URL``, then with no data directory at all) is opened read-only,
    lazily, once the ingestor has created it.
    """
    metrics = AnalyticsMetrics()
    app = web.Application(middlewares=[metrics.middleware(), error_middleware])
    app[keys.settings_key] = settings
    app[keys.layout_key] = StorageLayout.from_settings(settings)
    app[keys.metrics_key] = metrics
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_groupings)  # after: stopped before the database closes
    setup_routes(app)
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    database = open_database(app[keys.settings_key], workers=READ_WORKERS)
    app[keys.database_key] = database
    try:
        yield
    finally:
        database.close()


async def _groupings(app: web.Application) -> AsyncIterator[None]:
    groupings = Groupings(app[keys.database_key], app[keys.settings_key].faq_min_count)
    app[keys.groupings_key] = groupings
    if app[keys.settings_key].faq_warmup:
        # In the background: startup and /healthz never wait for Kiwi.
        groupings.start_warm_up(app[keys.layout_key].today())
    try:
        yield
    finally:
        await groupings.close()
