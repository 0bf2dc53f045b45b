"""``run_sync``: plain sqlite3 code on an aiosqlite connection's thread, in its open transaction."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import aiosqlite
import pytest

from shared.sqlite_thread import run_sync


async def test_runs_on_the_connections_thread_inside_its_transaction(tmp_path: Path) -> None:
    """Statements see the transaction begun through aiosqlite; the commit is aiosqlite's."""
    async with aiosqlite.connect(tmp_path / "db", isolation_level=None) as conn:
        await conn.execute("CREATE TABLE t (x INTEGER)")
        await conn.execute("BEGIN IMMEDIATE")

        def insert(db: sqlite3.Connection) -> tuple[bool, int, int]:
            db.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(5)])
            return db.in_transaction, threading.get_ident(), db.execute("SELECT count(*) FROM t").fetchone()[0]

        in_transaction, thread, rows = await run_sync(conn, insert)
        assert (in_transaction, rows) == (True, 5)
        assert thread != threading.get_ident()  # not the event loop's thread
        await conn.rollback()
        assert list(await conn.execute_fetchall("SELECT count(*) FROM t")) == [(0,)]


async def test_an_exception_reaches_the_caller(tmp_path: Path) -> None:
    """What the function raises is raised by the await, and the connection stays usable."""
    async with aiosqlite.connect(tmp_path / "db", isolation_level=None) as conn:

        def fails(db: sqlite3.Connection) -> None:
            db.execute("SELECT * FROM missing")

        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            await run_sync(conn, fails)
        assert list(await conn.execute_fetchall("SELECT 1")) == [(1,)]
