"""Read-only PostgreSQL access for the analytics API (``CHATLOG_DATABASE_URL`` set).

Each worker thread owns one ``PostgresConnection`` opened with
``default_transaction_read_only`` (the server refuses every write, whatever the
role may do) and search path ``public``: the shared tables, and the views over every
node's line offsets. The API needs no data directory: nothing here touches a file.

Each read runs in one ``REPEATABLE READ, READ ONLY`` transaction: the several
queries of a request see one snapshot, as with SQLite. Until the ingestor has
migrated the database (no statistics tables, or no node registered yet, so no
offsets view) every read answers its ``default``; once seen, the tables are taken
to stay. Any PostgreSQL error is ``Unavailable`` (503). A server that went away is
noticed by the first statement of the next read, which then connects again once
and goes on: a restarted server costs no failed request, a stopped one answers 503
until it is back.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from typing import TypeVar, cast

import psycopg

from analytics_api.read_pool import READY_TABLE, ReadPool
from shared.errors import Unavailable
from shared.postgres.connection import PostgresConnection

log = logging.getLogger(__name__)

T = TypeVar("T")

# The shared tables exist, and a node has registered (the offsets view over every node's rows).
_READY = f"SELECT to_regclass('public.{READY_TABLE}') IS NOT NULL AND to_regclass('public.ingest_offsets') IS NOT NULL"
_BEGIN = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"


class PostgresReadOnlyDatabase(ReadPool):
    """The shared PostgreSQL database, read-only: one session per worker thread."""

    store = "postgresql"

    def __init__(self, url: str, workers: int = 2) -> None:
        super().__init__(workers)
        self._url = url

    def _connection(self) -> PostgresConnection:
        conn: PostgresConnection | None = self._current()
        if conn is None:
            conn = PostgresConnection(self._url, read_only=True)
            self._keep(conn)
            self._local.ready = False
        return conn

    def _begin(self) -> PostgresConnection:
        """This thread's connection inside a new read transaction; one fresh try when the old one broke."""
        conn = self._connection()
        try:
            conn.execute(_BEGIN)
        except psycopg.OperationalError:
            # The server closed the session (a restart, an idle timeout): connect again, once.
            log.info("the PostgreSQL session was lost; connecting again")
            self._forget()
            conn = self._connection()
            conn.execute(_BEGIN)
        return conn

    def _run(self, fn: Callable[[sqlite3.Connection], T], default: T) -> T:
        try:
            conn = self._begin()
            try:
                if not self._local.ready:
                    (ready,) = conn.execute(_READY).fetchone()
                    if not ready:
                        return default
                    self._local.ready = True
                return fn(cast(sqlite3.Connection, conn))
            finally:
                # Nothing to keep: ending the read transaction is all that matters.
                conn.rollback()
        except psycopg.OperationalError as exc:
            # Unreachable, or the session died mid-read: the next read connects anew. The
            # client is told no more than that (libpq's message names the server); the log has it.
            self._local.ready = False
            self._forget()
            log.warning("PostgreSQL cannot be read: %s", exc)
            raise Unavailable("the statistics database (PostgreSQL) cannot be reached", retry_after=5) from exc
        except psycopg.Error as exc:
            # A dropped or replaced database, a role without its grants, a write attempt.
            self._local.ready = False
            raise Unavailable(f"the statistics database cannot be read: {_first_line(exc)}", retry_after=5) from exc


def _first_line(exc: BaseException) -> str:
    """psycopg's message without its DETAIL/HINT lines (which may quote values)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
