"""Read-only SQLite access for the analytics API: lazy, pooled, short transactions.

Each worker thread owns one connection opened with ``mode=ro`` and
``PRAGMA query_only`` (so no statement can write, and the file is never created).
A connection is opened only once the ingestor has created the database; until then
every read answers its ``default``. Each read runs in one explicit read
transaction that ends as soon as the function returns: a consistent snapshot for
the several queries of a request, and no long-lived reader to hold back the
ingestor's WAL checkpoints.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from shared.db import READER_PRAGMAS, reader_uri
from shared.errors import Unavailable

T = TypeVar("T")

# The statistics tables appear with a schema migration the ingestor runs.
_READY_TABLE = "chat_statistics_reach"


class ReadOnlyDatabase:
    """A small pool of read-only connections, one per worker thread."""

    def __init__(self, path: Path, workers: int = 2) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="analytics-db")
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    def _connection(self) -> sqlite3.Connection | None:
        try:
            identity = os.stat(self._path)
        except FileNotFoundError:
            self._forget()
            return None
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and self._local.identity == (identity.st_dev, identity.st_ino):
            return conn
        # First use, or the file was replaced (a restore): (re)open it.
        self._forget()
        conn = sqlite3.connect(
            reader_uri(self._path), uri=True, isolation_level=None, check_same_thread=False
        )
        try:
            for pragma in READER_PRAGMAS:
                conn.execute(pragma)
            ready = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (_READY_TABLE,)
            ).fetchone()
        except sqlite3.Error:
            conn.close()
            raise
        if ready is None:
            # An older schema: the ingestor has not migrated yet; look again next time.
            conn.close()
            return None
        self._local.conn = conn
        self._local.identity = (identity.st_dev, identity.st_ino)
        with self._lock:
            self._opened.append(conn)
        return conn

    def _forget(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            return
        self._local.conn = None
        with self._lock:
            self._opened.remove(conn)
        conn.close()

    def _run(self, fn: Callable[[sqlite3.Connection], T], default: T) -> T:
        try:
            conn = self._connection()
            if conn is None:
                return default
            conn.execute("BEGIN")
            try:
                return fn(conn)
            finally:
                # Nothing to keep: ending the read transaction is all that matters.
                conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            raise Unavailable(f"the statistics database cannot be read: {exc}", retry_after=5) from exc

    async def read(self, fn: Callable[[sqlite3.Connection], T], default: T) -> T:
        """Run ``fn`` in one read transaction on a worker thread; ``default`` before the DB exists.

        Any SQLite error (a damaged file, a write attempt) is raised as ``Unavailable`` (503).
        """
        if self._closed:
            raise RuntimeError("the database pool is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._run, fn, default)

    async def available(self) -> bool:
        """True once the database exists with the statistics tables."""
        return await self.read(lambda conn: True, False)

    def close(self) -> None:
        """Wait for running reads, then close every connection."""
        self._closed = True
        self._executor.shutdown(wait=True)
        with self._lock:
            for conn in self._opened:
                conn.close()
            self._opened.clear()
