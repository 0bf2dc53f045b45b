"""``GET /api/analytics/quality``: retrieval quality and feedback over an inclusive date range.

Answered from the daily ``retrieval_statistics_daily`` and hourly ``feedback_statistics`` rows
(``chat_statistics.quality_reads``): time grows with the number of collections and
days in the range, never with the number of events.
"""

from __future__ import annotations

from aiohttp import web

from analytics_api import keys, params
from chat_statistics.quality_reads import Quality, query_quality
from shared.errors import json_response

DEFAULT_DAYS = 7


async def quality(request: web.Request) -> web.Response:
    """Best-score distribution, low-score and no-result rates, regeneration, reranking, feedback."""
    query = request.query
    collection = params.collection(query)
    first, last = params.day_range(query, request.app[keys.layout_key].today(), DEFAULT_DAYS)
    threshold = request.app[keys.settings_key].low_score_threshold
    empty = Quality(collection, first.isoformat(), last.isoformat(), threshold)
    database = request.app[keys.database_key]
    answer = await database.read(lambda conn: query_quality(conn, collection, first, last, threshold), empty)
    return json_response(answer)
