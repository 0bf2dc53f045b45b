"""A PostgreSQL connection with the part of ``sqlite3.Connection`` the derived state uses.

The derived state is written against ``sqlite3``'s DB-API: ``execute`` and
``executemany`` with ``?`` placeholders, explicit ``BEGIN IMMEDIATE``/``COMMIT``
on an autocommit connection, cursors with ``fetchone``/``fetchall``/``fetchmany``.
``PostgresConnection`` is that interface over psycopg 3, so the same statements
run on either store (``shared.postgres.dialect`` spells the few differences), and
an ``aiosqlite.Connection`` built over it (``shared.db.open_store``) gives the
async code its usual connection with PostgreSQL behind it.

Values come back as SQLite gives them: ``SUM``/``AVG`` (PostgreSQL ``numeric``)
as ``int`` or ``float``, not ``Decimal``; booleans go in as integers (the schema's
flags are integers, as in SQLite). PostgreSQL text cannot hold NUL, so a NUL in a
derived string (a question's sample text) is stored as U+FFFD; the day files keep
the original.

A connection that broke (server restart, network) is reopened at the next
statement outside a transaction; one that breaks inside a transaction raises,
and the caller's rollback then succeeds as a no-op, as with SQLite.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any

import psycopg
from psycopg import sql
from psycopg.adapt import Buffer, Loader
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus
from psycopg.types.numeric import Int8Dumper
from psycopg.types.string import StrDumper

from shared.postgres.dialect import translate

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 5


class _NumberLoader(Loader):
    """``numeric`` as SQLite would give it: an int when integral, else a float."""

    def load(self, data: Buffer) -> int | float:
        text = bytes(data).decode()
        try:
            return int(text)
        except ValueError:
            return float(text)


class _BoolAsInteger(Int8Dumper):
    def dump(self, obj: Any) -> Buffer | None:
        return b"1" if obj else b"0"


class _TextWithoutNul(StrDumper):
    def dump(self, obj: str) -> Buffer | None:
        return super().dump(obj.replace("\x00", "\ufffd") if "\x00" in obj else obj)


def node_schema(node: str) -> str:
    """The PostgreSQL schema holding one node's own tables (its offsets and quarantine)."""
    return f"node:{node}"


class PostgresCursor:
    """A ``sqlite3.Cursor`` look-alike over a psycopg cursor."""

    arraysize = 64

    def __init__(self, cursor: psycopg.Cursor[Any] | None) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount if self._cursor is not None else -1

    @property
    def lastrowid(self) -> None:
        # Use ``INSERT ... RETURNING`` (both dialects have it).
        return None

    @property
    def description(self) -> Any:
        return self._cursor.description if self._cursor is not None else None

    def fetchone(self) -> Any:
        return self._cursor.fetchone() if self.description is not None else None  # type: ignore[union-attr]

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall() if self.description is not None else []  # type: ignore[union-attr]

    def fetchmany(self, size: int | None = None) -> list[Any]:
        if self.description is None:
            return []
        return self._cursor.fetchmany(size or self.arraysize)  # type: ignore[union-attr]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())

    def close(self) -> None:
        if self._cursor is not None:
            self._cursor.close()


class PostgresConnection:
    """One PostgreSQL session for one thread, with the ``sqlite3.Connection`` methods used here.

    ``node`` puts that node's own tables first on the search path (without one it is
    ``public`` alone); ``read_only``
    makes every transaction read-only on the server (``default_transaction_read_only``).
    """

    isolation_level = None
    row_factory = None

    def __init__(self, url: str, node: str | None = None, read_only: bool = False) -> None:
        self._url = url
        self._node = node
        self._read_only = read_only
        self._conn: psycopg.Connection[Any] | None = None
        self._in_transaction = False  # as of the last statement; kept when the connection breaks
        self._connect()

    def _connect(self) -> psycopg.Connection[Any]:
        # What the operator's URL sets (``?options=...``) stays: ours go after it.
        options = str(conninfo_to_dict(self._url).get("options") or "")
        if self._read_only:
            options += " -c default_transaction_read_only=on"
        if self._node is None:
            # No node: the shared tables and the views over every node's (what readers see),
            # on every session, reconnections included.
            options += " -c search_path=public"
        conn = psycopg.connect(
            self._url, autocommit=True, cursor_factory=psycopg.ClientCursor,
            connect_timeout=CONNECT_TIMEOUT_SECONDS, options=options.strip(),
            application_name=f"chatlog-{self._node or 'reader'}",
        )
        conn.adapters.register_loader("numeric", _NumberLoader)
        conn.adapters.register_dumper(bool, _BoolAsInteger)
        conn.adapters.register_dumper(str, _TextWithoutNul)
        if self._node is not None:
            conn.execute(sql.SQL("SET search_path = {}, public").format(sql.Identifier(node_schema(self._node))))
        self._conn = conn
        return conn

    def _live(self) -> psycopg.Connection[Any]:
        conn = self._conn
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        if self._in_transaction:
            # Reconnecting here would run the rest of the transaction outside it.
            raise psycopg.OperationalError("the connection to PostgreSQL was lost inside a transaction")
        log.info("connecting to PostgreSQL again")
        return self._connect()

    def _track(self, conn: psycopg.Connection[Any]) -> None:
        self._in_transaction = conn.info.transaction_status != TransactionStatus.IDLE

    @property
    def raw(self) -> psycopg.Connection[Any]:
        """The psycopg connection itself (for what only PostgreSQL has: COPY, advisory locks)."""
        return self._live()

    @property
    def node(self) -> str | None:
        """The node whose own tables come first on the search path (None: a reader)."""
        return self._node

    @property
    def store_name(self) -> str:
        """The server and database this connection reads, without user or password (a cache key)."""
        info = self._live().info
        return f"postgresql://{info.host}:{info.port}/{info.dbname}"

    @property
    def in_transaction(self) -> bool:
        return self._in_transaction

    def cursor(self) -> PostgresCursor:
        return PostgresCursor(self._live().cursor())

    def execute(self, statement: str, parameters: Sequence[Any] = ()) -> PostgresCursor:
        if statement.strip().rstrip(";").upper() == "ROLLBACK":
            self.rollback()
            return PostgresCursor(None)
        conn = self._live()
        cursor = conn.cursor()
        try:
            cursor.execute(translate(statement), tuple(parameters) or None)
        finally:
            if not conn.broken:
                self._track(conn)
        return PostgresCursor(cursor)

    def executemany(self, statement: str, rows: Iterable[Sequence[Any]]) -> PostgresCursor:
        conn = self._live()
        cursor = conn.cursor()
        batch = [tuple(row) for row in rows]
        if batch:
            try:
                cursor.executemany(translate(statement), batch)
            finally:
                if not conn.broken:
                    self._track(conn)
        return PostgresCursor(cursor)

    def executescript(self, script: str) -> PostgresCursor:
        conn = self._live()
        cursor = conn.cursor()
        try:
            cursor.execute(script)
        finally:
            if not conn.broken:
                self._track(conn)
        return PostgresCursor(cursor)

    def commit(self) -> None:
        if self._in_transaction:
            conn = self._live()
            try:
                conn.execute("COMMIT")
            finally:
                if not conn.broken:
                    self._track(conn)

    def rollback(self) -> None:
        self._in_transaction = False
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            return
        if conn.info.transaction_status != TransactionStatus.IDLE:
            conn.execute("ROLLBACK")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()

    def __enter__(self) -> PostgresConnection:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # sqlite3's context manager: commit on success, roll back on an exception.
        if kind is None:
            self.commit()
        else:
            self.rollback()
