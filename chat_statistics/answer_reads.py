"""Reading the answer rows by model and reasoning level, and the error types, for a date range.

A range reads one row per (day, collection, model, level) present: counts are summed
in SQL, latency sketches merged in Python (a few rows per day).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from chat_statistics.sketch import LatencySketch


@dataclass
class AnswerGroup:
    """The answers of one (collection, llm_model, reasoning_level) over a range ('' = not given)."""

    collection_name: str
    llm_model: str
    reasoning_level: str
    answers: int = 0
    errors: int = 0
    regenerations: int = 0
    response_time_count: int = 0
    response_time_sum_ms: int = 0
    sketch: LatencySketch = field(default_factory=LatencySketch)

    def merge(self, other: AnswerGroup) -> None:
        """Add another group's counts and sketch."""
        self.answers += other.answers
        self.errors += other.errors
        self.regenerations += other.regenerations
        self.response_time_count += other.response_time_count
        self.response_time_sum_ms += other.response_time_sum_ms
        self.sketch.merge(other.sketch)


_ANSWERS = """
SELECT collection_name, llm_model, reasoning_level, answers, errors, regenerations,
       response_time_count, response_time_sum_ms, latency_sketch
FROM answer_statistics WHERE date BETWEEN ? AND ? {where}
"""
_ERRORS = """
SELECT collection_name, error_type, sum(count) FROM error_statistics
WHERE date BETWEEN ? AND ? {where} GROUP BY collection_name, error_type
"""


def _where(collection: str | None) -> tuple[str, tuple[str, ...]]:
    return ("AND collection_name = ?", (collection,)) if collection is not None else ("", ())


def _rows(conn: sqlite3.Connection, sql: str, args: tuple[object, ...]) -> list[tuple[Any, ...]]:
    try:
        return conn.execute(sql, args).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):  # a database an older ingestor made: nothing counted yet
            return []
        raise


def query_answer_groups(
    conn: sqlite3.Connection, collection: str | None, first: date, last: date
) -> list[AnswerGroup]:
    """Every (collection, model, level) group of ``first..last``, sorted by its key."""
    where, args = _where(collection)
    groups: dict[tuple[str, str, str], AnswerGroup] = {}
    for name, model, level, answers, errors, regens, rcount, rsum, blob in _rows(
        conn, _ANSWERS.format(where=where), (first.isoformat(), last.isoformat(), *args)
    ):
        key = (str(name), str(model), str(level))
        group = groups.get(key)
        if group is None:
            group = groups[key] = AnswerGroup(*key)
        group.answers += answers
        group.errors += errors
        group.regenerations += regens
        group.response_time_count += rcount
        group.response_time_sum_ms += rsum
        if blob:
            group.sketch.add_encoded(blob)
    return [groups[key] for key in sorted(groups)]


def query_error_types(
    conn: sqlite3.Connection, collection: str | None, first: date, last: date
) -> dict[str, dict[str, int]]:
    """Per collection, how many events of ``first..last`` had status ``error``, by ``error.type`` ('' = none)."""
    where, args = _where(collection)
    out: dict[str, dict[str, int]] = {}
    for name, kind, n in _rows(conn, _ERRORS.format(where=where), (first.isoformat(), last.isoformat(), *args)):
        out.setdefault(str(name), {})[str(kind)] = int(n)
    return out
