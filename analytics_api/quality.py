"""``GET /api/analytics/quality``: retrieval quality and feedback over an inclusive date range.

Answered from the daily ``retrieval_statistics_daily`` and hourly ``feedback_statistics`` rows
(``chat_statistics.quality_reads``): time grows with the number of collections and
days in the range, never with the number of events. The knowledge gaps come from
the question groups of the FAQ (``analytics_api.groupings``), and the answer never waits
for a grouping: a range not grouped yet in this process answers ``knowledge_gaps: []``
with ``knowledge_gaps_pending: true`` while its grouping runs in the background (a few
seconds; the dashboard asks again), and stale groups are served while they refresh.
"""

from __future__ import annotations

import msgspec
from aiohttp import web

from analytics_api import keys, params
from chat_statistics.quality_reads import Quality, query_quality
from insights.faq import gaps_from
from shared.errors import json_response

DEFAULT_DAYS = 7
KNOWLEDGE_GAPS = 20




async def quality(request: web.Request) -> web.Response:
    """Best-score distribution, low-score and no-result rates, regeneration, reranking, feedback, gaps."""
    query = request.query
    collection = params.collection(query)
    first, last = params.day_range(query, request.app[keys.layout_key].today(), DEFAULT_DAYS)
    settings = request.app[keys.settings_key]
    threshold, min_count = settings.low_score_threshold, settings.faq_min_count
    empty = Quality(collection, first.isoformat(), last.isoformat(), threshold)
    database = request.app[keys.database_key]
    answer = await database.read(lambda conn: query_quality(conn, collection, first, last, threshold), empty)
    groups = await request.app[keys.groupings_key].groups(collection, first, last, wait=False)
    if groups is not None:
        gaps = gaps_from(groups, collection, threshold, min_count, KNOWLEDGE_GAPS)
        answer = msgspec.structs.replace(answer, knowledge_gaps=gaps)
    elif answer is not empty:  # the database exists: its groups are being computed
        answer = msgspec.structs.replace(answer, knowledge_gaps_pending=True)
    return json_response(answer)
