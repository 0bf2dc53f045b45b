"""``GET /api/analytics/summary``: one collection (or all) over an inclusive date range.

The figures come from ``chat_statistics.reads.query_summary``: time does not grow
with the range.
"""

from __future__ import annotations

from aiohttp import web

from analytics_api import keys, params
from chat_statistics.reads import Summary, query_summary
from shared.errors import json_response

DEFAULT_DAYS = 7
DEFAULT_TOP = 10


async def summary(request: web.Request) -> web.Response:
    """Totals, rates, percentiles and top queries of a collection (or all) over a date range."""
    query = request.query
    collection = params.collection(query)
    first, last = params.day_range(query, request.app[keys.layout_key].today(), DEFAULT_DAYS)
    top = params.integer(query, "top", DEFAULT_TOP, 1, params.MAX_TOP)
    empty = Summary(collection, first.isoformat(), last.isoformat())
    database = request.app[keys.database_key]
    answer = await database.read(lambda conn: query_summary(conn, collection, first, last, top), empty)
    return json_response(answer)
