"""Rebuilding the FAQ's base from the day files (``rebuild-stats``).

The same fold as the live path (``chat_statistics.questions``) over the lines the
database has applied, from empty state: a day's question rows and its sessions'
pairing state, written in the day's transaction in place of the stored ones, and
``answer_feedback`` re-read from the feedback stream (one row per feedback_id).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import date
from itertools import islice
from pathlib import Path

import msgspec

from chat_statistics.questions import (
    FEEDBACK_UPSERT,
    ROW_UPSERT,
    SESSION_UPSERT,
    QuestionDays,
    event_of,
    feedback_params,
    row_params,
    session_params,
)
from shared.layout import StorageLayout, Stream
from shared.reader import iter_lines
from shared.wire import FeedbackRecord, MessageType, RetrievalInfo, Status

Row = tuple[object, ...]

class _Message(msgspec.Struct):
    """The fields of a log line that the questions need, typed as in ``LogRecord``."""

    log_id: str
    session_id: str
    conversation_id: str
    collection_name: str
    message_type: MessageType
    message_content: str
    status: Status = "ok"
    is_regeneration: bool = False
    retrieval_info: RetrievalInfo | None = None


_records = msgspec.json.Decoder(_Message)
_feedback = msgspec.json.Decoder(FeedbackRecord)


def question_rows(path: Path, applied: int, day: date) -> tuple[list[Row], list[Row]]:
    """The ``faq_questions`` and ``faq_sessions`` rows of the first ``applied`` lines of a log day file."""
    return question_rows_of(islice(iter_lines(path), applied), day)


def question_rows_of(lines: Iterable[bytes], day: date) -> tuple[list[Row], list[Row]]:
    """The ``faq_questions`` and ``faq_sessions`` rows of a day's log lines, in file order."""
    state = QuestionDays()
    for line in lines:
        if b'"user"' not in line and b'"assistant"' not in line:
            continue
        try:
            event = event_of(_records.decode(line), day)
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue  # the live path quarantines it
        if event is not None:
            state.add(event)
    return (
        [row_params(k, r) for k, r in state.rows.items()],
        [session_params(k, s) for k, s in state.sessions.items()],
    )


def replace_questions(conn: sqlite3.Connection, day: date, rows: tuple[list[Row], list[Row]]) -> None:
    """Replace a day's question rows and session state (inside the caller's transaction)."""
    iso = day.isoformat()
    conn.execute("DELETE FROM faq_questions WHERE date = ?", (iso,))
    conn.execute("DELETE FROM faq_sessions WHERE date = ?", (iso,))
    conn.executemany(ROW_UPSERT, rows[0])
    conn.executemany(SESSION_UPSERT, rows[1])


def rebuild_answer_feedback(conn: sqlite3.Connection, layout: StorageLayout, first: date, last: date) -> int:
    """Re-read ``answer_feedback`` from the feedback files of ``first..last``; return the rows written.

    Upserts by feedback_id: the live path writes the same rows, so no offset check is needed.
    """
    written = 0
    for day, files in sorted(layout.days(Stream.FEEDBACK).items()):
        if not first <= day <= last or files.readable is None:
            continue
        rows = []
        try:
            for line in iter_lines(files.readable):
                try:
                    rows.append(feedback_params(_feedback.decode(line), day))
                except (msgspec.DecodeError, msgspec.ValidationError):
                    continue
        except FileNotFoundError:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(FEEDBACK_UPSERT, rows)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        written += len(rows)
    return written
