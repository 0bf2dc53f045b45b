"""``GET /api/analytics/timeline``: one point per day or hour, oldest first, empty ones included.

Buckets are wall-clock days and hours in CHATLOG_TIMEZONE: ``daily`` is the ``days``
days ending today, ``hourly`` the ``24 * days`` hours ending with the current one.
Every point is one stored row (precomputed p95 included), so a timeline costs one
indexed range read.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from aiohttp import web

from analytics_api import keys, params
from chat_statistics.reads import Bucket, query_rows
from shared.errors import json_response

PERIODS = ("daily", "hourly")
DEFAULT_DAYS = 7


class Point(msgspec.Struct):
    """One bucket of the timeline."""

    start: str
    total_queries: int = 0
    unique_sessions: int = 0
    total_tokens: int = 0
    avg_response_time_ms: float | None = None
    p95_response_time_ms: float | None = None
    error_count: int = 0
    regeneration_count: int = 0


class Timeline(msgspec.Struct):
    """The timeline answer (CONTRACT.md)."""

    collection_name: str | None
    period: str
    points: list[Point]



def buckets(period: str, days: int, now: datetime) -> list[Bucket]:
    """The wall-clock buckets of a timeline ending at ``now`` (aware, in CHATLOG_TIMEZONE)."""
    today = now.date()
    if period == "daily":
        return [((today - timedelta(days=i)).isoformat(), -1) for i in range(days - 1, -1, -1)]
    # Naive wall-clock steps: DST days still get 24 labelled hours each.
    current = datetime(now.year, now.month, now.day, now.hour)
    hours = [current - timedelta(hours=i) for i in range(24 * days - 1, -1, -1)]
    return [(h.date().isoformat(), h.hour) for h in hours]


def _start(bucket: Bucket, tz: ZoneInfo) -> str:
    day = date.fromisoformat(bucket[0])
    return datetime(day.year, day.month, day.day, max(bucket[1], 0), tzinfo=tz).isoformat()


def points(wanted: list[Bucket], rows: dict[Bucket, tuple[Any, ...]], tz: ZoneInfo) -> list[Point]:
    """One point per wanted bucket, zeros where no row exists."""
    out = []
    for bucket in wanted:
        row = rows.get(bucket)
        if row is None:
            out.append(Point(_start(bucket, tz)))
            continue
        queries, sessions, tokens, avg, p95, errors, regens = row
        out.append(
            Point(
                _start(bucket, tz),
                int(queries),
                int(sessions),
                int(tokens),
                round(avg, 2) if avg is not None else None,
                p95,
                int(errors),
                int(regens),
            )
        )
    return out


async def timeline(request: web.Request) -> web.Response:
    """Per-day or per-hour totals of a collection (or all), empty buckets included."""
    query = request.query
    collection = params.collection(query)
    period = params.choice(query, "period", "daily", PERIODS)
    days = params.integer(query, "days", DEFAULT_DAYS, 1, params.MAX_DAYS)
    tz = request.app[keys.layout_key].tz
    wanted = buckets(period, days, datetime.now(tz))
    first, last = wanted[0][0], wanted[-1][0]
    no_rows: dict[Bucket, tuple[Any, ...]] = {}
    rows = await request.app[keys.database_key].read(
        lambda conn: query_rows(conn, collection, period, first, last), no_rows
    )
    return json_response(Timeline(collection, period, points(wanted, rows, tz)))
