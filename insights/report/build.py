"""Reading one period's report from the database (read only, from the aggregated rows and indexes).

Every part comes from what the analytics API already serves: the summary and daily
rows (usage), the quality rows, ``insights.faq`` (FAQ and knowledge gaps),
``insights.suggestions``, the ``alerts`` table and the conversation index, so a
month's report costs what those answers cost, never a scan of the day files.

Conversations to review are those the sampling rules kept with ``high`` priority
(an error, a regeneration or a retrieval score under 0.5) whose record was stored in
the period: errors first, then the longest. Feedback is counted but not linked to
conversations in the index, so negative feedback does not pick conversations here.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, timedelta

from analytics_api.alerts import AlertOut, query_alerts
from chat_statistics.quality_reads import Quality, query_quality
from chat_statistics.reads import ROW_FIELDS, Summary, query_rows, query_summary
from insights.faq import query_faq, query_knowledge_gaps
from insights.report.model import DayPoint, Report, ReviewConversation
from insights.suggestions import query_suggestions
from shared.settings import Settings

TOP_QUERIES = 10
FAQ_LIMIT = 20
GAPS_LIMIT = 20
REVIEW_LIMIT = 20
# Longest period a report covers (as the analytics API's ``days``): its FAQ groups every question of it.
MAX_DAYS = 366
ALERT_DAYS = (date(1970, 1, 1), date(9999, 12, 30))


def empty_report(settings: Settings, collection: str | None, first: date, last: date) -> Report:
    """The report of a period with no data (also what is shown before the database exists)."""
    a, b = first.isoformat(), last.isoformat()
    return Report(
        collection, a, b, str(settings.timezone), _now(),
        Summary(collection, a, b), Quality(collection, a, b, settings.low_score_threshold),
        timeline=[DayPoint((first + timedelta(days=i)).isoformat()) for i in range((last - first).days + 1)],
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _timeline(conn: sqlite3.Connection, collection: str | None, first: date, last: date) -> list[DayPoint]:
    rows = query_rows(conn, collection, "daily", first.isoformat(), last.isoformat(), ROW_FIELDS)
    points = []
    for i in range((last - first).days + 1):
        day = (first + timedelta(days=i)).isoformat()
        row = rows.get((day, -1))
        if row is None:
            points.append(DayPoint(day))
            continue
        queries, sessions, tokens, avg, p95, errors, regens = row
        points.append(DayPoint(day, queries, sessions, tokens, avg, p95, errors, regens))
    return points


_REVIEW = """
SELECT conversation_id, collection_name, last_message_at, total_turns, has_error, summary
FROM conversations WHERE day BETWEEN ? AND ? AND retention_priority = 'high' {where}
ORDER BY has_error DESC, total_turns DESC, last_message_at DESC, conversation_id LIMIT ?
"""
_PRIORITIES = "SELECT retention_priority, count(*) FROM conversations WHERE day BETWEEN ? AND ? {where} GROUP BY 1"


def _conversations(
    conn: sqlite3.Connection, collection: str | None, first: date, last: date
) -> tuple[list[ReviewConversation], dict[str, int]]:
    where, args = ("AND collection_name = ?", (collection,)) if collection is not None else ("", ())
    span = (first.isoformat(), last.isoformat(), *args)
    review = [
        ReviewConversation(cid, name, at, turns, bool(error), "error" if error else "regeneration or low score",
                           summary or "")
        for cid, name, at, turns, error, summary in conn.execute(_REVIEW.format(where=where), (*span, REVIEW_LIMIT))
    ]
    priorities = {str(k): int(n) for k, n in conn.execute(_PRIORITIES.format(where=where), span)}
    return review, priorities


def _alerts(conn: sqlite3.Connection, settings: Settings, collection: str | None, first: date, last: date) -> list[
    AlertOut
]:
    """The period's alerts; only days alerts can have are asked about (near the calendar's ends the
    UTC bounds of a day overflow)."""
    low, high = max(first, ALERT_DAYS[0]), min(last, ALERT_DAYS[1])
    return query_alerts(conn, settings.timezone, low, high, collection).items if low <= high else []


def build_report(
    conn: sqlite3.Connection, settings: Settings, collection: str | None, first: date, last: date
) -> Report:
    """The report of ``first..last`` (CHATLOG_TIMEZONE days) for one collection or (None) all."""
    summary = query_summary(conn, collection, first, last, TOP_QUERIES)
    per_collection = (
        [query_summary(conn, name, first, last, 0) for name in sorted(summary.collections)]
        if collection is None else []
    )
    threshold = settings.low_score_threshold
    review, priorities = _conversations(conn, collection, first, last)
    return Report(
        collection_name=collection,
        date_from=first.isoformat(),
        date_to=last.isoformat(),
        timezone=str(settings.timezone),
        generated_at=_now(),
        summary=summary,
        quality=query_quality(conn, collection, first, last, threshold),
        collections=per_collection,
        timeline=_timeline(conn, collection, first, last),
        faq=query_faq(conn, collection, first, last, FAQ_LIMIT, settings.faq_min_count).items,
        knowledge_gaps=query_knowledge_gaps(
            conn, collection, first, last, threshold, settings.faq_min_count, GAPS_LIMIT
        ),
        suggestions=query_suggestions(conn, collection, first, last, settings).items,
        alerts=_alerts(conn, settings, collection, first, last),
        conversations_to_review=review,
        conversations_by_priority=priorities,
    )
