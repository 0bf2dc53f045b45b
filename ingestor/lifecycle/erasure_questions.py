"""Taking an erased user out of the FAQ's base: their questions, answers and feedback.

A user's questions and answers pair only within their own sessions, but a day's rows
merge every user's, so each day file the erasure rewrites has its question rows and
pairing state recomputed from the lines it keeps (those the day's applied count
covers), as ``rebuild-stats`` would compute them from the rewritten file. The
feedback the user gave goes with its lines of the feedback files.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import date

from chat_statistics.rebuild.questions import question_rows_of, replace_questions


def take_out_questions(conn: sqlite3.Connection, days: Iterable[tuple[date, list[bytes]]], user_hash: str) -> int:
    """Recompute the given days' rows from their kept applied lines; drop the user's feedback (inside a transaction).

    Returns how many of the user's questions left the counts.
    """
    removed = 0
    for day, lines in days:
        (before,) = conn.execute(
            "SELECT coalesce(sum(count), 0) FROM faq_questions WHERE date = ?", (day.isoformat(),)
        ).fetchone()
        rows = question_rows_of(lines, day)
        replace_questions(conn, day, rows)
        removed += int(before) - sum(int(row[4]) for row in rows[0])  # type: ignore[call-overload]
    conn.execute("DELETE FROM answer_feedback WHERE user_hash = ?", (user_hash,))
    return removed
