"""Read-only SQLite access for the analytics API: lazy, pooled, short transactions.

Each worker thread owns one connection opened read-only with ``PRAGMA query_only``
(so no statement can write, and the file is never created). A connection is opened
only once the ingestor has created the database; until then every read answers its
``default``. Each read runs in one explicit read transaction that ends as soon as the
function returns: a consistent snapshot for the several queries of a request, and no
long-lived reader to hold back the ingestor's WAL checkpoints.

The service creates no file, even on a writable directory, and works on a read-only
mount. How it opens the file depends on whether a writer has it open, which the
``-wal`` and ``-shm`` files tell (a writer keeps both while it runs and removes them
when it stops cleanly):

- both exist: ``mode=ro`` shares them; opening them creates nothing, and on a
  read-only mount SQLite maps the ``-shm`` read-only;
- otherwise the file is at rest: ``immutable=1``, which takes no lock and needs no
  ``-wal``/``-shm`` (``mode=ro`` alone would create both on a writable directory and
  fail with "unable to open database file" on a read-only one). Immutable is only
  right while nothing writes, so every such read checks, after it ran, that still no
  ``-wal`` exists and the file is unchanged; when a writer came back the answer is
  discarded and read again in ``mode=ro``.

A narrow race remains: a writer that stops between the check and the open of a
``mode=ro`` connection leaves SQLite to recreate the ``-shm`` and ``-wal`` it just
removed (on a writable directory only). And a ``-wal`` left without its ``-shm`` (only
by hand: a crashed writer leaves both) is read as at rest, without the WAL's last
commits, until a writer opens the database again.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from analytics_api.read_pool import READY_TABLE, ReadPool
from shared.db import READER_PRAGMAS, reader_uri
from shared.errors import Unavailable

T = TypeVar("T")


class ReadOnlyDatabase(ReadPool):
    """The SQLite file, read-only: one connection per worker thread."""

    store = "sqlite"

    def __init__(self, path: Path, workers: int = 2) -> None:
        super().__init__(workers)
        self._path = path

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    def _at_rest(self) -> bool:
        """True when no writer holds the database: not both ``-wal`` and ``-shm`` beside it."""
        wal = self._path.with_name(self._path.name + "-wal")
        shm = self._path.with_name(self._path.name + "-shm")
        return not (wal.exists() and shm.exists())

    def _state(self) -> tuple[int, ...] | None:
        """What identifies the file and its content (None: no file)."""
        try:
            st = os.stat(self._path)
        except FileNotFoundError:
            return None
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def _connection(self) -> sqlite3.Connection | None:
        state = self._state()
        if state is None:
            self._forget()
            return None
        immutable = self._at_rest()
        conn: sqlite3.Connection | None = self._current()
        if conn is not None and self._local.immutable == immutable:
            # A mode=ro connection follows the writer's changes; an immutable one is good
            # for exactly the content it opened.
            kept = self._local.state == state if immutable else self._local.state[:2] == state[:2]
            if kept:
                return conn
        # First use, a restore replaced the file, or a writer came or went: (re)open it.
        self._forget()
        conn = sqlite3.connect(
            reader_uri(self._path, immutable=immutable), uri=True, isolation_level=None, check_same_thread=False
        )
        try:
            for pragma in READER_PRAGMAS:
                conn.execute(pragma)
            ready = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (READY_TABLE,)
            ).fetchone()
        except sqlite3.Error:
            conn.close()
            raise
        if ready is None:
            # An older schema: the ingestor has not migrated yet; look again next time.
            conn.close()
            return None
        self._keep(conn)
        self._local.state = state
        self._local.immutable = immutable
        return conn

    def _still_valid(self) -> bool:
        """After a read: an immutable connection's file is still at rest and unchanged."""
        return not self._local.immutable or (self._at_rest() and self._state() == self._local.state)

    def _run(self, fn: Callable[[sqlite3.Connection], T], default: T) -> T:
        try:
            for _ in range(3):
                conn = self._connection()
                if conn is None:
                    return default
                conn.execute("BEGIN")
                try:
                    result = fn(conn)
                finally:
                    # Nothing to keep: ending the read transaction is all that matters.
                    conn.execute("ROLLBACK")
                if self._still_valid():
                    return result
                # A writer started during an immutable read: the answer may be torn.
                self._forget()
        except sqlite3.Error as exc:
            raise Unavailable(f"the statistics database cannot be read: {exc}", retry_after=5) from exc
        raise Unavailable("the statistics database kept changing under the read; retry", retry_after=1)
