"""What the analytics API's two read-only stores share: worker threads, each owning one connection.

A handler asks ``read(fn, default)``: ``fn(conn)`` runs in one read transaction on a
worker thread (a consistent snapshot for the several queries of a request) and
``default`` answers while the store has no statistics tables yet. How a thread opens
its connection and what counts as "not there yet" is each store's business
(``analytics_api.database`` for SQLite, ``analytics_api.postgres_database`` for
PostgreSQL); ``analytics_api.stores.open_database`` picks one.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar, TypeVar

T = TypeVar("T")

# The statistics tables appear with a schema migration the ingestor runs.
READY_TABLE = "chat_statistics_reach"


class ReadPool(ABC):
    """A small pool of read-only connections, one per worker thread."""

    # Which store it reads, as ``/healthz`` names it.
    store: ClassVar[str]

    def __init__(self, workers: int = 2) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="analytics-db")
        self._local = threading.local()
        self._opened: list[Any] = []
        self._lock = threading.Lock()
        self._closed = False

    @abstractmethod
    def _run(self, fn: Callable[[sqlite3.Connection], T], default: T) -> T:
        """On a worker thread: ``fn`` in one read transaction, or ``default`` before the tables exist.

        Raises ``shared.errors.Unavailable`` when the store cannot be read.
        """

    def _keep(self, conn: Any) -> None:
        """Make ``conn`` this thread's connection (closed by ``close`` if still open then)."""
        self._local.conn = conn
        with self._lock:
            self._opened.append(conn)

    def _current(self) -> Any:
        """This thread's connection, or None."""
        return getattr(self._local, "conn", None)

    def _forget(self) -> None:
        """Close this thread's connection; the next read opens another."""
        conn = self._current()
        if conn is None:
            return
        self._local.conn = None
        with self._lock:
            self._opened.remove(conn)
        conn.close()

    async def read(self, fn: Callable[[sqlite3.Connection], T], default: T) -> T:
        """Run ``fn`` in one read transaction on a worker thread; ``default`` before the tables exist.

        Any error of the store (a damaged file, a server that is down, a write attempt)
        is raised as ``Unavailable`` (503).
        """
        if self._closed:
            raise RuntimeError("the database pool is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._run, fn, default)

    async def available(self) -> bool:
        """True once the store has the statistics tables."""
        return await self.read(lambda conn: True, False)

    def close(self) -> None:
        """Wait for running reads, then close every connection."""
        self._closed = True
        self._executor.shutdown(wait=True)
        with self._lock:
            for conn in self._opened:
                conn.close()
            self._opened.clear()
