"""The one place that picks the analytics API's store: the SQLite file, or the shared PostgreSQL."""

from __future__ import annotations

from analytics_api.database import ReadOnlyDatabase
from analytics_api.postgres_database import PostgresReadOnlyDatabase
from analytics_api.read_pool import ReadPool
from shared.settings import Settings


def open_database(settings: Settings, workers: int) -> ReadPool:
    """PostgreSQL when ``CHATLOG_DATABASE_URL`` is set (no data directory needed), else ``CHATLOG_DB_PATH``.

    Neither connects here: each worker thread opens its connection at its first read.
    """
    if settings.database_url:
        return PostgresReadOnlyDatabase(settings.database_url, workers=workers)
    return ReadOnlyDatabase(settings.db_path, workers=workers)
