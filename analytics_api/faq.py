"""``GET /api/analytics/faq``: the most asked question groups over an inclusive date range."""

from __future__ import annotations

from aiohttp import web

from analytics_api import keys, params
from insights.faq import Faq, faq_from
from shared.errors import json_response

DEFAULT_DAYS = 7
DEFAULT_LIMIT = 20
MAX_LIMIT = 200


async def faq(request: web.Request) -> web.Response:
    """Question groups, paraphrases together, each with one stored answer."""
    query = request.query
    collection = params.collection(query)
    first, last = params.day_range(query, request.app[keys.layout_key].today(), DEFAULT_DAYS)
    limit = params.integer(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    min_count = request.app[keys.settings_key].faq_min_count
    # Cached groups (refreshed in the background when stale); a range never grouped is grouped now.
    result = await request.app[keys.groupings_key].groups(collection, first, last, wait=True)
    if result is None:
        return json_response(Faq())
    database = request.app[keys.database_key]
    answer = await database.read(lambda conn: faq_from(conn, result, collection, first, last, limit, min_count), Faq())
    return json_response(answer)
