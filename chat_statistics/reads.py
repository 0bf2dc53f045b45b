"""Reading the statistics tables: a range's summary, and the stored rows of each bucket.

The analytics API's handlers (summary, timeline, Grafana) and ``chatlog report`` read
through these, next to the tables they read (``tables``). Time does not grow with the
range: a summary reads one daily rollup row per day of one scope, merges their latency
sketches and top lists, and sums a handful of reach rows per day for the exact
distinct sessions; a bucket's rows are one indexed range read.
"""

from __future__ import annotations

import sqlite3
from datetime import date
from typing import Any

import msgspec

from chat_statistics.quality_reads import feedback_totals
from chat_statistics.sketch import LatencySketch
from chat_statistics.tables import ALL_SCOPE, DAILY, HOURLY, OVERALL, REACH
from chat_statistics.top_queries import decode_top, merge_top


class TopQueryOut(msgspec.Struct):
    """One entry of ``top_queries``."""

    query: str
    count: int


class Summary(msgspec.Struct):
    """The summary answer (CONTRACT.md)."""

    collection_name: str | None
    date_from: str
    date_to: str
    total_queries: int = 0
    unique_sessions: int = 0
    total_tokens: int = 0
    avg_response_time_ms: float | None = None
    p50_response_time_ms: float | None = None
    p95_response_time_ms: float | None = None
    p99_response_time_ms: float | None = None
    error_count: int = 0
    error_rate: float = 0.0
    regeneration_count: int = 0
    regeneration_rate: float = 0.0
    top_queries: list[TopQueryOut] = msgspec.field(default_factory=list)
    collections: dict[str, int] = msgspec.field(default_factory=dict)
    positive_feedback: int = 0
    negative_feedback: int = 0


_ROWS = f"""
SELECT total_queries, total_tokens, response_time_sum_ms, response_time_count, error_count,
       regeneration_count, latency_sketch, top_queries
FROM {DAILY} WHERE scope = ? AND date BETWEEN ? AND ?
"""
# A session counts once in [a, b]: on its first active date in the range, i.e. the
# date whose previous active date lies before a.
_UNIQUE = f"""
SELECT coalesce(sum(sessions), 0) FROM {REACH}
WHERE scope = ? AND date BETWEEN ? AND ? AND prev_date < ?
"""
_COLLECTIONS = f"""
SELECT scope, sum(total_queries) FROM {DAILY}
WHERE date BETWEEN ? AND ? AND scope <> '' GROUP BY scope ORDER BY scope
"""


def query_summary(
    conn: sqlite3.Connection, collection: str | None, first: date, last: date, top: int
) -> Summary:
    """The summary of ``first..last`` for one collection or (None) all of them."""
    scope = collection if collection is not None else ALL_SCOPE
    a, b = first.isoformat(), last.isoformat()
    answer = Summary(collection, a, b)
    for positive, negative in feedback_totals(conn, collection, first, last).values():
        answer.positive_feedback += positive
        answer.negative_feedback += negative
    rows = conn.execute(_ROWS, (scope, a, b)).fetchall()
    if not rows:
        return answer
    rt_sum = rt_count = 0
    for queries, tokens, rsum, rcount, errors, regens, _, _ in rows:
        answer.total_queries += queries
        answer.total_tokens += tokens
        rt_sum += rsum
        rt_count += rcount
        answer.error_count += errors
        answer.regeneration_count += regens
    answer.unique_sessions = int(conn.execute(_UNIQUE, (scope, a, b, a)).fetchone()[0])
    if rt_count:
        answer.avg_response_time_ms = round(rt_sum / rt_count, 2)
        sketch = LatencySketch.merged(row[6] for row in rows)
        p50, p95, p99 = sketch.percentiles()
        answer.p50_response_time_ms, answer.p95_response_time_ms, answer.p99_response_time_ms = p50, p95, p99
    if answer.total_queries:
        answer.error_rate = answer.error_count / answer.total_queries
        answer.regeneration_rate = answer.regeneration_count / answer.total_queries
    merged = merge_top((decode_top(row[7]) for row in rows), top)
    answer.top_queries = [TopQueryOut(e.query, e.count) for e in merged]
    if collection is None:
        answer.collections = {name: int(n) for name, n in conn.execute(_COLLECTIONS, (a, b))}
    else:
        answer.collections = {collection: answer.total_queries}
    return answer


ROW_FIELDS = (
    "total_queries, unique_sessions, total_tokens, avg_response_time_ms, p95_response_time_ms, "
    "error_count, regeneration_count"
)
Bucket = tuple[str, int]  # date (ISO), hour (-1 for a whole day)



def query_rows(
    conn: sqlite3.Connection, collection: str | None, period: str, first: str, last: str, fields: str = ROW_FIELDS
) -> dict[Bucket, tuple[Any, ...]]:
    """The stored ``fields`` of the buckets between two dates, by bucket."""
    if period == "daily":
        sql = f"SELECT date, -1, {fields} FROM {DAILY} WHERE scope = ? AND date BETWEEN ? AND ?"
        args: tuple[object, ...] = (collection if collection is not None else ALL_SCOPE, first, last)
    elif collection is not None:
        sql = f"SELECT date, hour, {fields} FROM {HOURLY} WHERE collection_name = ? AND date BETWEEN ? AND ?"
        args = (collection, first, last)
    else:
        sql = f"SELECT date, hour, {fields} FROM {OVERALL} WHERE date BETWEEN ? AND ?"
        args = (first, last)
    return {(row[0], row[1]): row[2:] for row in conn.execute(sql, args)}
