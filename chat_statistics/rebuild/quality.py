"""Rebuilding retrieval quality and feedback rows from the day files (``rebuild-stats``).

The same folds as the live path (``chat_statistics.quality``) over the lines the
database has applied: the log lines of a day (computed beside its usage rows, in the
same worker, and written in the same transaction) and the feedback stream's lines.
Each line is decoded on its own into just the fields quality needs; a line that does
not decode is skipped, as the live path quarantines it.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import date, datetime
from pathlib import Path
from typing import cast
from zoneinfo import ZoneInfo

import msgspec

from chat_statistics.quality import (
    DAILY_TABLE,
    HOURLY_TABLE,
    FeedbackCounts,
    HourKey,
    QualityRow,
    fold_answer,
    fold_feedback,
    hour_of,
    pack,
    unpack,
)
from shared.layout import StorageLayout, Stream
from shared.reader import iter_lines
from shared.wire import FeedbackRecord, MessageType, RetrievalInfo, Status

log = logging.getLogger("chatlog.stats.rebuild")

Row = tuple[object, ...]


class _Answer(msgspec.Struct):
    """The fields of a log line that quality needs, typed as in ``LogRecord``."""

    collection_name: str
    message_type: MessageType
    created_at: datetime
    status: Status = "ok"
    is_regeneration: bool = False
    retrieval_info: RetrievalInfo | None = None


_answers = msgspec.json.Decoder(_Answer)
_feedback = msgspec.json.Decoder(FeedbackRecord)


def quality_rows(path: Path, applied: int, tz: ZoneInfo, day: date) -> list[Row]:
    """The ``retrieval_statistics`` rows of the first ``applied`` lines of a log day file."""
    rows: dict[HourKey, QualityRow] = {}
    iso = day.isoformat()
    for number, line in enumerate(iter_lines(path)):
        if number >= applied:
            break
        try:
            answer = _answers.decode(line)
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
        if answer.message_type != "assistant":
            continue
        key = (answer.collection_name, iso, hour_of(answer.created_at, tz))
        row = rows.get(key)
        if row is None:
            row = rows[key] = QualityRow()
        fold_answer(row, answer)
    return [(d, c, h, *row.counts(), pack(row.histograms)) for (c, d, h), row in rows.items()]


def daily_rows(rows: list[Row]) -> list[Row]:
    """The ``retrieval_statistics_daily`` rows of a day's hourly rows (their sums per collection)."""
    days: dict[tuple[str, str], QualityRow] = {}
    for d, c, _, *counts, blob in rows:
        assert isinstance(d, str) and isinstance(c, str) and isinstance(blob, bytes)
        answers, errors, regenerations, with_retrieval, no_result, reranked = (cast(int, n) for n in counts)
        row = QualityRow(answers, errors, regenerations, with_retrieval, no_result, reranked, unpack(blob))
        total = days.get((c, d))
        if total is None:
            days[(c, d)] = row
        else:
            total.add(row)
    return [(d, c, *row.counts(), pack(row.histograms)) for (c, d), row in days.items()]


def replace_quality(conn: sqlite3.Connection, day: date, rows: list[Row]) -> None:
    """Replace a day's hourly and daily quality rows (inside the caller's transaction)."""
    for table in (HOURLY_TABLE, DAILY_TABLE):
        conn.execute(f"DELETE FROM {table} WHERE date = ?", (day.isoformat(),))
    conn.executemany(f"INSERT INTO {HOURLY_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.executemany(f"INSERT INTO {DAILY_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", daily_rows(rows))


def _applied_feedback(conn: sqlite3.Connection, day: date) -> int:
    row = conn.execute(
        "SELECT lines FROM ingest_offsets WHERE stream = ? AND day = ?", (Stream.FEEDBACK.value, day.isoformat())
    ).fetchone()
    return int(row[0]) if row else 0


def _feedback_counts(path: Path, applied: int, tz: ZoneInfo, day: date) -> FeedbackCounts:
    counts: FeedbackCounts = {}
    for number, line in enumerate(iter_lines(path)):
        if number >= applied:
            break
        try:
            fold_feedback(counts, _feedback.decode(line), day, tz)
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
    return counts


def rebuild_feedback(conn: sqlite3.Connection, layout: StorageLayout, first: date, last: date) -> int:
    """Recompute the feedback rows of every day in ``first..last`` that has a feedback file; return how many."""
    pieces = 0
    for day, files in layout.days(Stream.FEEDBACK).items():
        if not first <= day <= last or files.readable is None:
            continue
        while True:
            applied = _applied_feedback(conn, day)
            try:
                counts = _feedback_counts(files.readable, applied, layout.tz, day)
            except FileNotFoundError:
                break  # expired or compressed meanwhile: its rows are kept
            conn.execute("BEGIN IMMEDIATE")
            try:
                if _applied_feedback(conn, day) != applied:
                    conn.execute("ROLLBACK")
                    continue  # feedback arrived meanwhile: read again
                conn.execute("DELETE FROM feedback_statistics WHERE date = ?", (day.isoformat(),))
                conn.executemany(
                    "INSERT INTO feedback_statistics VALUES (?, ?, ?, ?, ?)",
                    [(d, c, h, pos, neg) for (c, d, h), (pos, neg) in counts.items()],
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            pieces += sum(pos + neg for pos, neg in counts.values())
            break
    return pieces
