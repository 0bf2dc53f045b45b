"""An analytics API over either store, for tests, until the API has its own PostgreSQL reader.

``analytics_app(settings)`` is ``analytics_api.app.create_app(settings)``; with
``CHATLOG_DATABASE_URL`` its database object is swapped for ``PostgresReads``: the
same ``read(fn, default)`` (``fn(conn)`` in one read-only transaction on a worker
thread), over read-only PostgreSQL connections with search path ``public``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, cast

import psycopg
from aiohttp import web

from analytics_api import keys
from analytics_api.app import create_app as create_analytics
from analytics_api.database import ReadOnlyDatabase
from shared.postgres.connection import PostgresConnection
from shared.settings import Settings

T = TypeVar("T")


class PostgresReads:
    """``ReadOnlyDatabase.read`` over PostgreSQL: one read-only connection per worker thread."""

    def __init__(self, url: str, workers: int = 2) -> None:
        self._url = url
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="analytics-pg")
        self._local = threading.local()
        self._opened: list[PostgresConnection] = []
        self._lock = threading.Lock()

    def _run(self, fn: Callable[[Any], T], default: T) -> T:
        conn: PostgresConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = PostgresConnection(self._url, read_only=True)
            with self._lock:
                self._opened.append(conn)
        conn.execute("BEGIN")
        try:
            return fn(conn)
        except psycopg.errors.UndefinedTable:
            return default  # no ingestor has migrated the database yet
        finally:
            conn.rollback()

    async def read(self, fn: Callable[[Any], T], default: T) -> T:
        """Run ``fn`` in one read-only transaction on a worker thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._run, fn, default)

    async def available(self) -> bool:
        """True once the schema is there."""
        return await self.read(lambda conn: conn.execute("SELECT 1 FROM chat_statistics_reach LIMIT 1") and True,
                               False)

    def close(self) -> None:
        """Wait for running reads, then close every connection."""
        self._executor.shutdown(wait=True)
        with self._lock:
            for conn in self._opened:
                conn.close()
            self._opened.clear()


def analytics_app(settings: Settings) -> web.Application:
    """The analytics API of ``settings``, reading PostgreSQL when ``settings`` names one."""
    app = create_analytics(settings)
    if settings.database_url:
        url = settings.database_url

        async def postgres(app: web.Application) -> AsyncIterator[None]:
            reads = PostgresReads(url)
            app[keys.database_key] = cast(ReadOnlyDatabase, reads)
            try:
                yield
            finally:
                reads.close()

        # Right after the SQLite pool is made, before anything (the groupings) takes it.
        app.cleanup_ctx.insert(1, postgres)
    return app
