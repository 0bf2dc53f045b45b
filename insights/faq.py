"""The FAQ: question groups over a date range, each with one stored answer.

Interface only for now (the answer is always empty); the grouping of the stored
per-day distinct questions and the choice of the best stored answer land next.
"""

from __future__ import annotations

import sqlite3
from datetime import date

import msgspec

from chat_statistics.quality_reads import KnowledgeGap, Variant


class FaqItem(msgspec.Struct):
    """One question group (CONTRACT.md "Additions" → FAQ)."""

    question: str
    count: int
    share: float
    variants: list[Variant]
    collections: dict[str, int]
    answer: str | None
    answer_log_id: str | None
    avg_best_score: float | None


class Faq(msgspec.Struct):
    """The FAQ answer."""

    items: list[FaqItem] = msgspec.field(default_factory=list)


def query_faq(
    conn: sqlite3.Connection, collection: str | None, first: date, last: date, limit: int, min_count: int
) -> Faq:
    """The ``limit`` largest question groups of at least ``min_count`` questions, largest first."""
    return Faq()


def query_knowledge_gaps(
    conn: sqlite3.Connection,
    collection: str | None,
    first: date,
    last: date,
    threshold: float,
    min_count: int,
    limit: int,
) -> list[KnowledgeGap]:
    """Question groups of at least ``min_count`` whose answers' mean best score is under
    ``threshold``, lowest first."""
    return []
