"""``GET /api/analytics/quality``: retrieval quality and feedback over an inclusive date range.

Answered from the daily ``retrieval_statistics_daily`` and hourly ``feedback_statistics`` rows
(``chat_statistics.quality_reads``): time grows with the number of collections and
days in the range, never with the number of events. The knowledge gaps come from
the question groups of the FAQ (``insights.faq``), cached like it.
"""

from __future__ import annotations

import sqlite3
from datetime import date

import msgspec
from aiohttp import web

from analytics_api import keys, params
from chat_statistics.quality_reads import Quality, query_quality
from insights.faq import query_knowledge_gaps
from shared.errors import json_response

DEFAULT_DAYS = 7
KNOWLEDGE_GAPS = 20


def _quality(
    conn: sqlite3.Connection, collection: str | None, first: date, last: date, threshold: float, min_count: int
) -> Quality:
    answer = query_quality(conn, collection, first, last, threshold)
    gaps = query_knowledge_gaps(conn, collection, first, last, threshold, min_count, KNOWLEDGE_GAPS)
    return msgspec.structs.replace(answer, knowledge_gaps=gaps)


async def quality(request: web.Request) -> web.Response:
    """Best-score distribution, low-score and no-result rates, regeneration, reranking, feedback, gaps."""
    query = request.query
    collection = params.collection(query)
    first, last = params.day_range(query, request.app[keys.layout_key].today(), DEFAULT_DAYS)
    settings = request.app[keys.settings_key]
    threshold, min_count = settings.low_score_threshold, settings.faq_min_count
    empty = Quality(collection, first.isoformat(), last.isoformat(), threshold)
    database = request.app[keys.database_key]
    answer = await database.read(lambda conn: _quality(conn, collection, first, last, threshold, min_count), empty)
    return json_response(answer)
