"""Improvement suggestions drawn from the statistics, each with the numbers behind it.

This reads the pre-aggregated rows a range needs (retrieval quality and feedback per
collection, answers by model and reasoning level, error types, the knowledge gaps of
``insights.faq``) and hands them to the pure rules of ``insights.suggestion_rules``.
Time grows with the days and collections of the range, never with its events.
"""

from __future__ import annotations

import sqlite3
from datetime import date

import msgspec

from chat_statistics.answer_reads import query_answer_groups, query_error_types
from chat_statistics.quality_reads import feedback_totals, query_quality
from insights import suggestion_rules as rules
from insights.faq import query_knowledge_gaps
from insights.suggestion_rules import Severity, Suggestion, Thresholds
from shared.settings import Settings

__all__ = ["Severity", "Suggestion", "Suggestions", "query_suggestions"]

# Knowledge gaps turned into suggestions at most (lowest mean best score first).
MAX_GAPS = 10


class Suggestions(msgspec.Struct):
    """The suggestions answer."""

    items: list[Suggestion] = msgspec.field(default_factory=list)


def query_suggestions(
    conn: sqlite3.Connection, collection: str | None, first: date, last: date, settings: Settings
) -> Suggestions:
    """Every suggestion the range's data supports, most severe first."""
    t = Thresholds.from_settings(settings)
    quality = query_quality(conn, collection, first, last, t.low_score_threshold)
    groups = query_answer_groups(conn, collection, first, last)
    gaps = query_knowledge_gaps(
        conn, collection, first, last, t.low_score_threshold, settings.faq_min_count, MAX_GAPS
    )
    per_collection = quality.by_collection
    found = [
        *rules.low_retrieval(per_collection, t),
        *rules.knowledge_gap(gaps, t),
        *rules.high_regeneration(per_collection, groups, collection, t),
        *rules.slow_responses(groups, collection, t),
        *rules.errors(per_collection, query_error_types(conn, collection, first, last), t),
        *rules.negative_feedback(per_collection, feedback_totals(conn, collection, first, last), t),
    ]
    return Suggestions(rules.ranked(found))
