"""What a report holds: plain structs, encoded as the JSON report and rendered as Markdown or HTML."""

from __future__ import annotations

import msgspec

from analytics_api.alerts import AlertOut
from chat_statistics.quality_reads import KnowledgeGap, Quality
from chat_statistics.reads import Summary
from insights.faq import FaqItem
from insights.suggestion_rules import Suggestion


class DayPoint(msgspec.Struct):
    """One day of the period's timeline (empty days included)."""

    date: str
    total_queries: int = 0
    unique_sessions: int = 0
    total_tokens: int = 0
    avg_response_time_ms: float | None = None
    p95_response_time_ms: float | None = None
    error_count: int = 0
    regeneration_count: int = 0


class ReviewConversation(msgspec.Struct):
    """A conversation worth reading: one the sampling rules kept with high priority.

    ``reason``: ``error`` when it has one, else ``regeneration or low score`` (the
    index does not tell those two apart).
    """

    conversation_id: str
    collection_name: str
    last_message_at: str
    total_turns: int
    has_error: bool
    reason: str
    summary: str


class Report(msgspec.Struct):
    """Everything ``chatlog report`` and ``GET /api/analytics/report`` show, for one period."""

    collection_name: str | None
    date_from: str
    date_to: str
    timezone: str
    generated_at: str
    summary: Summary
    quality: Quality
    collections: list[Summary] = msgspec.field(default_factory=list)
    timeline: list[DayPoint] = msgspec.field(default_factory=list)
    faq: list[FaqItem] = msgspec.field(default_factory=list)
    knowledge_gaps: list[KnowledgeGap] = msgspec.field(default_factory=list)
    suggestions: list[Suggestion] = msgspec.field(default_factory=list)
    alerts: list[AlertOut] = msgspec.field(default_factory=list)
    conversations_to_review: list[ReviewConversation] = msgspec.field(default_factory=list)
    conversations_by_priority: dict[str, int] = msgspec.field(default_factory=dict)
