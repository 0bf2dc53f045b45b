"""``GET /api/analytics/collections``: every collection ever seen, with its all-time query count."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
from aiohttp import web

from analytics_api import keys
from chat_statistics.tables import DAILY
from shared.errors import json_response

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class CollectionOut(msgspec.Struct):
    """One collection: name, all-time user queries, first and last event (RFC 3339)."""

    name: str
    total_queries: int
    first_seen: str
    last_seen: str


class Collections(msgspec.Struct):
    """The collections answer (CONTRACT.md)."""

    collections: list[CollectionOut]


_SQL = f"""
SELECT scope, sum(total_queries), min(first_at_us), max(last_at_us) FROM {DAILY}
WHERE scope <> '' GROUP BY scope ORDER BY scope
"""


def instant(epoch_us: int, tz: ZoneInfo) -> str:
    """Microseconds since the epoch as RFC 3339 in CHATLOG_TIMEZONE (in UTC where the zone's
    offset would step past year 1 or 9999)."""
    utc = _EPOCH + timedelta(microseconds=epoch_us)
    try:
        return utc.astimezone(tz).isoformat()
    except OverflowError:
        return utc.isoformat()


def query_collections(conn: sqlite3.Connection, tz: ZoneInfo) -> Collections:
    """Every collection with statistics, by name."""
    rows = conn.execute(_SQL).fetchall()
    return Collections(
        [CollectionOut(name, int(n), instant(first, tz), instant(last, tz)) for name, n, first, last in rows]
    )


async def collections(request: web.Request) -> web.Response:
    """The collections seen so far (empty before the first event)."""
    tz = request.app[keys.layout_key].tz
    answer = await request.app[keys.database_key].read(lambda conn: query_collections(conn, tz), Collections([]))
    return json_response(answer)
