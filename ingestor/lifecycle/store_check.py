"""The database side of ``chatlog verify``, per store: SQLite's file or this node's rows in PostgreSQL.

``store_check`` is the one place that picks. SQLite: the file's ``ingest_offsets``
and ``PRAGMA integrity_check``. PostgreSQL: this node's own ``ingest_offsets`` (its
schema ``"node:<id>"``), read in a read-only transaction; the server keeps its own
pages consistent, so there is no integrity check to run from here.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Protocol

from shared.db import reader_uri
from shared.layout import StorageLayout
from shared.settings import Settings

Offsets = dict[tuple[str, str], int]


class StoreCheck(Protocol):
    """Reads what the database says about the day files."""

    def exists(self) -> bool:
        """Whether there is a database (for this node) yet."""

    def offsets(self) -> tuple[Offsets, list[str]]:
        """Lines applied per (stream, day), and any problem reading them."""

    def integrity(self) -> list[str]:
        """Problems of the database's own storage."""

    def name(self) -> str:
        """What was checked, for the report's notes."""


class SqliteCheck:
    """The SQLite file at ``path``, opened read-only."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def exists(self) -> bool:
        return self._path.exists()

    def name(self) -> str:
        return str(self._path)

    def offsets(self) -> tuple[Offsets, list[str]]:
        try:
            with contextlib.closing(sqlite3.connect(reader_uri(self._path), uri=True)) as conn:
                rows = conn.execute("SELECT stream, day, lines FROM ingest_offsets").fetchall()
        except sqlite3.Error as exc:
            return {}, [f"cannot read ingest_offsets: {exc}"]
        return {(stream, day): lines for stream, day, lines in rows}, []

    def integrity(self) -> list[str]:
        try:
            with contextlib.closing(sqlite3.connect(reader_uri(self._path), uri=True)) as conn:
                rows = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        except sqlite3.Error as exc:
            return [f"integrity_check failed: {exc}"]
        return [] if rows == ["ok"] else [f"integrity_check: {row}" for row in rows[:20]]


class PostgresCheck:
    """This node's offsets in the PostgreSQL database at ``url``."""

    def __init__(self, url: str, node: str) -> None:
        self._url = url
        self._node = node
        self._problem: str | None = None
        self._found: bool | None = None

    def name(self) -> str:
        from shared.postgres.reachability import safe_url

        return f"{safe_url(self._url)} (node {self._node})"

    def _query(self) -> tuple[bool, Offsets]:
        import psycopg

        from shared.postgres.connection import PostgresConnection, node_schema

        try:
            with contextlib.closing(PostgresConnection(self._url, node=self._node, read_only=True)) as conn:
                # Without its schema, ``ingest_offsets`` would be every node's (the public view).
                if conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = ?", (node_schema(self._node),)).fetchone() \
                        is None:
                    return False, {}
                rows = conn.execute("SELECT stream, day, lines FROM ingest_offsets").fetchall()
        except psycopg.Error as exc:
            from shared.postgres.reachability import connection_problem

            self._problem = connection_problem(self._url, exc)
            return True, {}
        return True, {(str(stream), str(day)): int(lines) for stream, day, lines in rows}

    def exists(self) -> bool:
        if self._found is None:
            self._found, self._offsets = self._query()
        return self._found

    def offsets(self) -> tuple[Offsets, list[str]]:
        self.exists()
        return self._offsets, [self._problem] if self._problem else []

    def integrity(self) -> list[str]:
        return []


def store_check(layout: StorageLayout, settings: Settings) -> StoreCheck:
    """The check of the store ``settings`` name."""
    if settings.database_url:
        return PostgresCheck(settings.database_url, settings.node)
    return SqliteCheck(layout.db_path)
