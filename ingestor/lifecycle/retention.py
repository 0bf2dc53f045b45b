"""Retention: delete day files past their retention, then the SQLite rows that point into them.

Files go first and the directory is fsynced before any row is dropped. The other order
would be unsafe: a crash after dropping a day's ``ingest_offsets`` row but before
deleting its file would make the ingestor's start-up catch-up apply that whole file a
second time. Rows left behind by a crash between the two are dropped by the next run.

Damaged originals kept in quarantine go with their day: retention promises that a
day's events are gone once it expires, quarantined copies included.

Aggregated statistics are kept: only rows that point into deleted files are dropped
(``chat_sessions`` whose last day is past the log retention, ``ingest_offsets`` of
deleted days, the ``conversations`` index entries of deleted conversation days).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import date, datetime

from ingestor.dayfiles import DayFileWriter, fsync_dir
from ingestor.lifecycle.guard import day_closed
from ingestor.lifecycle.policy import retain_from, today_of
from shared.db import is_sqlite
from shared.layout import StorageLayout, Stream
from shared.quarantine import quarantine_dir, quarantined
from shared.settings import Settings


@dataclass(frozen=True)
class DroppedRows:
    """SQLite rows dropped by retention, per table."""

    sessions: int = 0
    offsets: int = 0
    conversations: int = 0


@dataclass
class RetentionReport:
    """What one retention run deleted."""

    files: int = 0
    bytes: int = 0
    days: dict[Stream, list[date]] = field(default_factory=dict)
    rows: DroppedRows = field(default_factory=DroppedRows)
    seconds: float = 0.0

    def account(self) -> str:
        """The one-line account of the run."""
        per_stream = ", ".join(f"{s.value}: {len(d)} days" for s, d in self.days.items() if d) or "no days"
        return (
            f"deleted {self.files} files ({per_stream}), {self.bytes} bytes freed, "
            f"rows dropped: {self.rows.sessions} chat_sessions, {self.rows.offsets} ingest_offsets, "
            f"{self.rows.conversations} conversations"
        )


def expired_days(
    layout: StorageLayout, settings: Settings, now: datetime | None = None
) -> dict[Stream, list[date]]:
    """Per stream, every day with files that is past its retention."""
    today = today_of(layout, now)
    found: dict[Stream, list[date]] = {}
    for stream in Stream:
        oldest = retain_from(settings, stream, today)
        found[stream] = [day for day in layout.days(stream) if day < oldest]
    return found


def _delete_day(
    layout: StorageLayout, stream: Stream, day: date, files: DayFileWriter | None
) -> tuple[int, int]:
    count = size = 0
    with day_closed(files, (stream, day)):
        for path in layout.day_files(stream, day).all:
            with contextlib.suppress(FileNotFoundError):
                size += path.stat().st_size
                path.unlink()
                count += 1
    return count, size


def drop_expired_rows(conn: sqlite3.Connection, cutoffs: dict[Stream, date]) -> DroppedRows:
    """Drop the rows that point into days before each stream's cutoff."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        sessions = conn.execute(
            "DELETE FROM chat_sessions WHERE last_day < ?", (cutoffs[Stream.LOGS].isoformat(),)
        ).rowcount
        offsets = 0
        for stream, cutoff in cutoffs.items():
            offsets += conn.execute(
                "DELETE FROM ingest_offsets WHERE stream = ? AND day < ?", (stream.value, cutoff.isoformat())
            ).rowcount
            if _has_table(conn, "quarantined_lines"):
                # A quarantined line holds its raw bytes: it expires with its day file.
                conn.execute(
                    "DELETE FROM quarantined_lines WHERE stream = ? AND day < ?", (stream.value, cutoff.isoformat())
                )
        if _has_table(conn, "faq_sessions"):
            # A day's pairing state only serves its live answers; its questions stay counted, like top queries.
            conn.execute("DELETE FROM faq_sessions WHERE date < ?", (cutoffs[Stream.LOGS].isoformat(),))
            if Stream.FEEDBACK in cutoffs:  # feedback comments expire with their day file
                conn.execute("DELETE FROM answer_feedback WHERE date < ?", (cutoffs[Stream.FEEDBACK].isoformat(),))
        conversations = 0
        if _has_table(conn, "conversations"):
            if not is_sqlite(conn):
                # PostgreSQL keeps the records themselves too: they expire with their index rows.
                conn.execute(
                    "DELETE FROM conversation_records WHERE conversation_id IN "
                    "(SELECT conversation_id FROM conversations WHERE day < ?)",
                    (cutoffs[Stream.CONVERSATIONS].isoformat(),),
                )
            conversations = conn.execute(
                "DELETE FROM conversations WHERE day < ?", (cutoffs[Stream.CONVERSATIONS].isoformat(),)
            ).rowcount
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return DroppedRows(sessions, offsets, conversations)


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    if not is_sqlite(conn):
        return True  # PostgreSQL's schema is made whole by its first migration
    found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
    return found is not None


def apply_retention(
    layout: StorageLayout,
    settings: Settings,
    conn: sqlite3.Connection,
    *,
    now: datetime | None = None,
    files: DayFileWriter | None = None,
) -> RetentionReport:
    """Delete every day file past its retention, then the rows that point into those days."""
    started = time.perf_counter()
    today = today_of(layout, now)
    report = RetentionReport(days=expired_days(layout, settings, now))
    for stream, days in report.days.items():
        for day in days:
            count, size = _delete_day(layout, stream, day, files)
            report.files += count
            report.bytes += size
        stale = _remove_stale_temporaries(layout, stream, retain_from(settings, stream, today))
        report.files += stale
        report.files += _remove_expired_quarantine(layout, stream, retain_from(settings, stream, today))
        if days or stale:
            fsync_dir(layout.stream_dir(stream))
    cutoffs = {stream: retain_from(settings, stream, today) for stream in Stream}
    report.rows = drop_expired_rows(conn, cutoffs)
    report.seconds = time.perf_counter() - started
    return report


def _remove_stale_temporaries(layout: StorageLayout, stream: Stream, oldest: date) -> int:
    """Remove ``.tmp`` files of expired days (a compression interrupted before the day expired)."""
    directory = layout.stream_dir(stream)
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return 0
    removed = 0
    for name in names:
        if name.endswith(".tmp") and name[:10] < oldest.isoformat():
            (directory / name).unlink(missing_ok=True)
            removed += 1
    return removed


def _remove_expired_quarantine(layout: StorageLayout, stream: Stream, oldest: date) -> int:
    """Remove the quarantined originals of expired days."""
    removed = 0
    for kept in quarantined(layout, stream):
        if kept.day < oldest:
            kept.path.unlink(missing_ok=True)
            removed += 1
    if removed:
        fsync_dir(quarantine_dir(layout, stream))
    return removed
