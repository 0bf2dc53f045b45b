"""``GET /api/analytics/summary``: one collection (or all) over an inclusive date range.

Time does not grow with the range: a range reads one daily rollup row per day of
one scope, merges their latency sketches and top lists, and sums a handful of reach
rows per day for the exact distinct sessions.
"""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta

import msgspec
from aiohttp import web

from analytics_api import keys, params
from shared.errors import json_response
from shared.stats.queries import decode_top, merge_top
from shared.stats.schema import ALL_SCOPE, DAILY, REACH
from shared.stats.sketch import LatencySketch

DEFAULT_DAYS = 7
DEFAULT_TOP = 10


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


async def summary(request: web.Request) -> web.Response:
    """Totals, rates, percentiles and top queries of a collection (or all) over a date range."""
    query = request.query
    collection = params.collection(query)
    today = request.app[keys.layout_key].today()
    last = params.day(query, "date_to")
    first = params.day(query, "date_from")
    if last is None:
        last = today
    if first is None:
        first = last - timedelta(days=DEFAULT_DAYS - 1)
    params.date_range(first, last)
    top = params.integer(query, "top", DEFAULT_TOP, 1, params.MAX_TOP)
    empty = Summary(collection, first.isoformat(), last.isoformat())
    database = request.app[keys.database_key]
    answer = await database.read(lambda conn: query_summary(conn, collection, first, last, top), empty)
    return json_response(answer)
