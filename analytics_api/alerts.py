"""``GET /api/analytics/alerts``: the alerts that were active over an inclusive date range, newest first.

The derived-state process records them (``ingestor/alerts/``); this only reads the
``alerts`` table. An alert belongs to a range when it was firing at some moment of it.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import msgspec
from aiohttp import web

from analytics_api import keys, params
from shared.errors import json_response

DEFAULT_DAYS = 7
MAX_ITEMS = 1000


class AlertOut(msgspec.Struct):
    """One alert and its evidence (CONTRACT "Alerts"); ``collection_name`` null = all collections."""

    rule: str
    collection_name: str | None
    state: str
    started_at: str
    resolved_at: str | None
    value: float | None
    threshold: float | None
    baseline: float | None
    message: str


class Alerts(msgspec.Struct):
    """The alerts answer, newest first (at most MAX_ITEMS)."""

    items: list[AlertOut]


_SQL = """
SELECT rule, scope, state, started_at, resolved_at, value, threshold, baseline, message FROM alerts
WHERE started_at < ? AND (resolved_at IS NULL OR resolved_at >= ?) AND (? IS NULL OR scope = ?)
ORDER BY started_at DESC, id DESC LIMIT ?
"""


def _utc_start(day: date, tz: ZoneInfo) -> str:
    return datetime.combine(day, time(), tz).astimezone(UTC).isoformat(timespec="seconds")


def query_alerts(conn: sqlite3.Connection, tz: ZoneInfo, first: date, last: date, collection: str | None) -> Alerts:
    """The alerts active between the start of ``first`` and the end of ``last``."""
    end, start = _utc_start(last + timedelta(days=1), tz), _utc_start(first, tz)
    try:
        rows = conn.execute(_SQL, (end, start, collection, collection, MAX_ITEMS)).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):  # a database an older ingestor made: no alerts yet
            return Alerts([])
        raise
    return Alerts(
        [
            AlertOut(rule, scope or None, state, started, resolved, value, threshold, baseline, message)
            for rule, scope, state, started, resolved, value, threshold, baseline, message in rows
        ]
    )


async def alerts(request: web.Request) -> web.Response:
    """The alerts of a date range (default: the last 7 days), optionally of one collection."""
    query = request.query
    collection = params.collection(query)
    layout = request.app[keys.layout_key]
    first, last = params.day_range(query, layout.today(), DEFAULT_DAYS)
    answer = await request.app[keys.database_key].read(
        lambda conn: query_alerts(conn, layout.tz, first, last, collection), Alerts([])
    )
    return json_response(answer)
