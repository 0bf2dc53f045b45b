"""``GET /api/analytics/timeline``: one point per day or hour, oldest first, empty ones included.

Buckets are wall-clock days and hours in CHATLOG_TIMEZONE: ``daily`` is the ``days``
days ending with ``date_to`` (default today), ``hourly`` the ``24 * days`` hours ending
with the current one (or with 23:00 of ``date_to``). Each existing bucket is one point
stamped with its first instant (see ``analytics_api.buckets`` for zone transitions).
Every point is one stored row (precomputed p95 included), so a timeline costs one
indexed range read.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from aiohttp import web

from analytics_api import keys, params
from analytics_api.buckets import Bucket, Slot, day_slots, hour_slots, wall_hour
from chat_statistics.quality_reads import feedback_rows
from chat_statistics.reads import query_rows
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
    positive_feedback: int = 0
    negative_feedback: int = 0


class Timeline(msgspec.Struct):
    """The timeline answer (CONTRACT.md)."""

    collection_name: str | None
    period: str
    points: list[Point]


def slots(period: str, days: int, end: datetime, tz: ZoneInfo) -> list[Slot]:
    """The buckets of a timeline ending with the bucket of ``end`` (aware), oldest first.

    ``daily`` is the ``days`` local dates ending with ``end``'s; ``hourly`` the wall-clock
    hours of the ``24 * days`` hours ending with ``end``'s, each existing hour once.
    """
    if period == "daily":
        last = end.astimezone(tz).date()
        return day_slots(last - timedelta(days=days - 1), last, tz)
    last_wall = wall_hour(end, tz)
    return hour_slots(last_wall - timedelta(hours=24 * days - 1), last_wall, tz)


def points(
    wanted: list[Slot], rows: dict[Bucket, tuple[Any, ...]], feedback: dict[Bucket, tuple[int, int]] | None = None
) -> list[Point]:
    """One point per wanted bucket, zeros where no row exists."""
    out = []
    for bucket, first_instant in wanted:
        start = first_instant.isoformat()
        row = rows.get(bucket)
        positive, negative = (feedback or {}).get(bucket, (0, 0))
        if row is None:
            out.append(Point(start, positive_feedback=positive, negative_feedback=negative))
            continue
        queries, sessions, tokens, avg, p95, errors, regens = row
        out.append(
            Point(
                start,
                int(queries),
                int(sessions),
                int(tokens),
                round(avg, 2) if avg is not None else None,
                p95,
                int(errors),
                int(regens),
                positive,
                negative,
            )
        )
    return out


async def timeline(request: web.Request) -> web.Response:
    """Per-day or per-hour totals of a collection (or all), empty buckets included."""
    query = request.query
    collection = params.collection(query)
    period = params.choice(query, "period", "daily", PERIODS)
    days = params.integer(query, "days", DEFAULT_DAYS, 1, params.MAX_DAYS)
    last_day = params.day(query, "date_to")
    tz = request.app[keys.layout_key].tz
    end = datetime.now(tz)
    if last_day is not None and last_day != end.date():
        end = datetime(last_day.year, last_day.month, last_day.day, 23, tzinfo=tz)
    # A year of hours takes tens of milliseconds of zone arithmetic: not on the event loop.
    wanted = await asyncio.to_thread(slots, period, days, end, tz)
    if not wanted:
        # Only a range of skipped days (Pacific/Apia's 2011-12-30) has no bucket at all.
        return json_response(Timeline(collection, period, []))
    first, last = wanted[0][0][0], wanted[-1][0][0]

    def read(conn: sqlite3.Connection) -> tuple[dict[Bucket, tuple[Any, ...]], dict[Bucket, tuple[int, int]]]:
        return query_rows(conn, collection, period, first, last), feedback_rows(conn, collection, period, first, last)

    nothing: tuple[dict[Bucket, tuple[Any, ...]], dict[Bucket, tuple[int, int]]] = ({}, {})
    rows, feedback = await request.app[keys.database_key].read(read, nothing)
    return json_response(Timeline(collection, period, points(wanted, rows, feedback)))
