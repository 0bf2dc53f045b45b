"""Rebuilding the answer and error-type rows of a day from its file (``rebuild-stats``).

The same fold as the live path (``chat_statistics.answers``) over the lines the
database has applied, computed beside the day's usage and quality rows (in the same
worker) and written in the same transaction. Each line is decoded on its own into
just the fields needed; a line that does not decode is skipped, as the live path
quarantines it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import msgspec

from chat_statistics.answers import ANSWER_INSERT, AnswerBatch
from shared.reader import iter_lines
from shared.wire import ErrorInfo, MessageType, Performance, ReasoningLevel, Status

Row = tuple[object, ...]


class _Event(msgspec.Struct):
    """The fields of a log line the answer rows need, typed as in ``LogRecord``."""

    collection_name: str
    message_type: MessageType
    status: Status = "ok"
    is_regeneration: bool = False
    llm_model: str | None = None
    reasoning_level: ReasoningLevel | None = None
    performance: Performance | None = None
    error: ErrorInfo | None = None


_events = msgspec.json.Decoder(_Event)


def _decoded(path: Path, applied: int, day: date) -> Iterator[tuple[_Event, date]]:
    for number, line in enumerate(iter_lines(path)):
        if number >= applied:
            return
        try:
            yield _events.decode(line), day
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue


def answer_rows(path: Path, applied: int, day: date) -> tuple[list[Row], list[Row]]:
    """The ``answer_statistics`` and ``error_statistics`` rows of the first ``applied`` lines of a log day file."""
    batch = AnswerBatch()
    batch.add(_decoded(path, applied, day))
    return batch.answer_rows(), batch.error_rows()


def replace_answers(conn: sqlite3.Connection, day: date, answers: list[Row], errors: list[Row]) -> None:
    """Replace a day's answer and error-type rows (inside the caller's transaction)."""
    iso = day.isoformat()
    conn.execute("DELETE FROM answer_statistics WHERE date = ?", (iso,))
    conn.execute("DELETE FROM error_statistics WHERE date = ?", (iso,))
    conn.executemany(ANSWER_INSERT, answers)
    conn.executemany("INSERT INTO error_statistics VALUES (?, ?, ?, ?)", errors)
