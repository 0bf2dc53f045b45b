"""Quarantined lines: day-file lines the derived state cannot apply, set aside so the rest flows.

A line that does not decode, holds values the derived state cannot store
(``chat_statistics.admission``), or makes applying it fail is not applied: its day's
line count advances past it, and the line is kept in ``quarantined_lines`` (day,
line number, byte offset, reason, the raw bytes) in the same transaction, so it is
recorded exactly once. It also stays in its day file: nothing is lost, and an
operator can read, fix and re-post it.

A failure of the database or the disk is not a line's fault: those commits are
retried from the files as before, and nothing is quarantined for them.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

import aiosqlite

from ingestor.derived.follower import RejectedLine
from shared.layout import Stream

_INSERT = """
INSERT INTO quarantined_lines (stream, day, line, byte_offset, reason, raw, quarantined_at)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (stream, day, line) DO NOTHING
"""

# Reasons are for people; an exception text can be as long as the line it quotes.
_MAX_REASON_CHARS = 500


def caused_by_environment(exc: BaseException) -> bool:
    """True when a failed commit is the database's or the disk's fault (retry), not its lines'.

    On PostgreSQL that is psycopg's OperationalError (a lost or refused connection, the
    server shutting down, a serialisation failure) and InterfaceError: never a line's
    fault, so never a reason to quarantine one.
    """
    if isinstance(exc, (sqlite3.OperationalError, sqlite3.InterfaceError, OSError, MemoryError,
                        asyncio.CancelledError)):
        return True
    psycopg = sys.modules.get("psycopg")  # loaded only where the store is PostgreSQL
    return psycopg is not None and isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))


def failure_reason(exc: BaseException) -> str:
    """The quarantine reason of a line whose own commit failed."""
    return f"applying failed: {type(exc).__name__}: {exc}"[:_MAX_REASON_CHARS]


def record(conn: sqlite3.Connection, lines: Sequence[RejectedLine]) -> None:
    """Insert quarantined lines inside the caller's open transaction."""
    if not lines:
        return
    now = datetime.now(UTC).isoformat(timespec="seconds")
    conn.executemany(
        _INSERT,
        [
            (Stream.LOGS.value, q.day.isoformat(), q.number, q.offset, q.reason[:_MAX_REASON_CHARS], q.raw, now)
            for q in lines
        ],
    )


async def count(conn: aiosqlite.Connection) -> int:
    """Lines held in quarantine."""
    rows = list(await conn.execute_fetchall("SELECT count(*) FROM quarantined_lines"))
    return int(rows[0][0])
