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

from chat_statistics.questions import ROW_UPSERT, decode_candidates, encode_candidates
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


def subtract_questions(conn: sqlite3.Connection, days: Iterable[tuple[date, list[bytes]]], user_hash: str) -> int:
    """Subtract the user's own question rows, computed from their removed lines, from a shared store's.

    A user's questions pair with answers only within the user's sessions, so the
    rows of their lines alone are exactly what those lines added; the user's
    sessions' pairing state goes, and so do candidates that were their answers.
    Returns how many of the user's questions left the counts.
    """
    removed = 0
    for day, lines in days:
        iso = day.isoformat()
        mine, sessions = question_rows_of(lines, day)
        for _, collection, key, their_text, count, scored, score_sum, candidates in mine:
            row = conn.execute(
                "SELECT sample_text, count, scored, score_sum, candidates FROM faq_questions "
                "WHERE date = ? AND collection_name = ? AND question_key = ?", (iso, collection, key),
            ).fetchone()
            if row is None:
                continue
            removed += min(int(row[1]), int(count))  # type: ignore[call-overload]
            left = int(row[1]) - int(count)  # type: ignore[call-overload]
            if left <= 0:
                conn.execute(
                    "DELETE FROM faq_questions WHERE date = ? AND collection_name = ? AND question_key = ?",
                    (iso, collection, key),
                )
                continue
            theirs = {c.log_id for c in decode_candidates(candidates)}  # type: ignore[arg-type]
            kept = [c for c in decode_candidates(row[4]) if c.log_id not in theirs]
            # Their wording never stays as the group's sample; the normalised key stands in.
            sample = key if row[0] == their_text else row[0]
            conn.execute(ROW_UPSERT, (
                iso, collection, key, sample, left, max(0, int(row[2]) - int(scored)),  # type: ignore[call-overload]
                max(0.0, float(row[3]) - float(score_sum)), encode_candidates(kept),  # type: ignore[arg-type]
            ))
        conn.executemany(
            "DELETE FROM faq_sessions WHERE date = ? AND session_id = ?", [(s[0], s[1]) for s in sessions]
        )
    conn.execute("DELETE FROM answer_feedback WHERE user_hash = ?", (user_hash,))
    return removed
