"""``GET /api/analytics/suggestions``: what to fix, each suggestion with its evidence."""

from __future__ import annotations

from aiohttp import web

from analytics_api import keys, params
from insights.suggestions import Suggestions, query_suggestions
from shared.errors import json_response

DEFAULT_DAYS = 7


async def suggestions(request: web.Request) -> web.Response:
    """Suggestions over an inclusive date range (default: the last 7 days)."""
    query = request.query
    collection = params.collection(query)
    first, last = params.day_range(query, request.app[keys.layout_key].today(), DEFAULT_DAYS)
    settings = request.app[keys.settings_key]
    database = request.app[keys.database_key]
    answer = await database.read(lambda conn: query_suggestions(conn, collection, first, last, settings), Suggestions())
    return json_response(answer)
