"""Question-and-answer exchanges for the FAQ tests and benchmark: sessions with known answers."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.settings import Settings
from tests.support.stores import rows


@dataclass(frozen=True)
class Reply:
    """One assistant answer to the exchange's question."""

    text: str
    score: float | None = 0.8
    status: str = "ok"
    regeneration: bool = False
    log_id: str = ""


def exchange(
    question: str,
    replies: list[Reply],
    *,
    collection: str = "hr-docs",
    session: str | None = None,
    at: datetime | None = None,
    user_id: str | None = None,
) -> list[dict[str, Any]]:
    """A user question and its answers in one session, a second apart, in order."""
    session = session or f"s-{uuid.uuid4().hex[:12]}"
    start = at or datetime.now(UTC) - timedelta(minutes=5)
    common: dict[str, Any] = {"session_id": session, "collection_name": collection}
    if user_id is not None:
        common["user_id"] = user_id
    events = [{
        **common, "log_id": str(uuid.uuid4()), "message_type": "user", "message_content": question,
        "created_at": start.isoformat(),
    }]
    for i, reply in enumerate(replies, 1):
        event: dict[str, Any] = {
            **common, "log_id": reply.log_id or str(uuid.uuid4()), "message_type": "assistant",
            "message_content": reply.text, "created_at": (start + timedelta(seconds=i)).isoformat(),
            "is_regeneration": reply.regeneration, "status": reply.status,
        }
        if reply.score is not None:
            event["retrieval_info"] = {"query": question, "retrieved_count": 3, "top_scores": [reply.score, 0.1]}
        if reply.status == "error":
            event["error"] = {"type": "Timeout", "message": "upstream"}
        events.append(event)
    return events


def question_tables(config: Settings) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Every faq_questions and faq_sessions row, in key order."""
    questions = rows(config, "SELECT * FROM faq_questions ORDER BY 1, 2, 3")
    return questions, rows(config, "SELECT * FROM faq_sessions ORDER BY 1, 2")


async def settled(config: Settings, events: int, feedback: int = 0, within: float = 15.0) -> None:
    """Wait until the derived state applied ``events`` log lines and ``feedback`` feedback lines."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        found = dict(rows(config, "SELECT stream, sum(lines) FROM ingest_offsets GROUP BY stream"))
        got = (found.get("data", 0), found.get("feedback", 0))
        if got == (events, feedback):
            return
        assert asyncio.get_running_loop().time() < deadline, f"applied {got}, want {(events, feedback)}"
        await asyncio.sleep(0.05)


async def grouped_quality(api: Any, within: float = 15.0, **params: str) -> Any:
    """The quality answer once its knowledge gaps are in (a range the analytics process has
    not grouped yet answers ``knowledge_gaps_pending`` while it groups in the background)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        resp = await api.get("/api/analytics/quality", params=params)
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        if not body["knowledge_gaps_pending"]:
            return body
        assert asyncio.get_running_loop().time() < deadline, "the knowledge gaps stayed pending"
        await asyncio.sleep(0.05)
