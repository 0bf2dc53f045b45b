"""``GET /api/analytics/quality``: retrieval quality and feedback over an inclusive date range.

Answered from the hourly ``retrieval_statistics`` and ``feedback_statistics`` rows
(``chat_statistics.quality_reads``): time grows with the number of collections and
hours in the range, never with the number of events.
"""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from analytics_api import keys, params
from chat_statistics.quality_reads import Quality, query_quality
from shared.errors import json_response

DEFAULT_DAYS = 7


async def quality(request: web.Request) -> web.Response:
    """Best-score distribution, low-score and no-result rates, regeneration, reranking, feedback."""
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
    threshold = request.app[keys.settings_key].low_score_threshold
    empty = Quality(collection, first.isoformat(), last.isoformat(), threshold)
    database = request.app[keys.database_key]
    answer = await database.read(lambda conn: query_quality(conn, collection, first, last, threshold), empty)
    return json_response(answer)
