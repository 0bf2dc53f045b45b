"""Running plain ``sqlite3`` code on an aiosqlite connection's own thread, in one round trip.

Every ``await conn.execute(...)`` of aiosqlite is a hop to the connection's thread and
back through the event loop. Code that runs many small statements in one transaction
(the derived state's commit: a few hundred selects and upserts per batch) was bound by
those hops, not by SQLite. ``run_sync`` hands a whole function to the thread instead:
it gets the underlying ``sqlite3.Connection`` and runs every statement at C speed,
inside whatever transaction the connection has open.

aiosqlite offers no public way to do this; ``_execute`` (queue a callable on the
connection's thread) and ``_conn`` (the sqlite3 connection) are its internals, used
here only, and ``tests/shared/test_sqlite_thread.py`` fails if they change.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from typing import TypeVar, cast

import aiosqlite

T = TypeVar("T")


async def run_sync(conn: aiosqlite.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """``fn(sqlite3_connection)`` on ``conn``'s thread; its result or its exception."""
    execute = cast(Callable[[Callable[[], T]], Awaitable[T]], conn._execute)

    def call() -> T:
        return fn(conn._conn)

    return await execute(call)
