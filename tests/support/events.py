"""Realistic generated log events for tests and benchmarks."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

COLLECTIONS = ("hr-docs", "it-helpdesk", "legal-kb")
QUESTIONS = (
    "연차 휴가는 어떻게 신청하나요?",
    "재택근무 규정 알려주세요",
    "VPN 접속이 안 됩니다",
    "How do I reset my password?",
    "법인카드 사용 한도는 얼마인가요?",
    "What is the parental leave policy?",
)
ANSWER = (
    "사내 규정 제12조에 따르면 연차 휴가는 인사 시스템에서 신청하며, 팀장 승인 후 확정됩니다. "
    "According to the HR handbook, requests must be filed at least three days in advance."
)


def make_event(
    rng: random.Random | None = None,
    *,
    session_id: str | None = None,
    message_type: str = "user",
    created_at: datetime | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """One realistic event (~700 bytes for an assistant message with Korean text)."""
    rng = rng or random.Random()
    session = session_id or f"s-{rng.randrange(10**9)}"
    event: dict[str, Any] = {
        "log_id": str(uuid.UUID(int=rng.getrandbits(128))),
        "session_id": session,
        "collection_name": rng.choice(COLLECTIONS),
        "message_type": message_type,
        "message_content": rng.choice(QUESTIONS) if message_type == "user" else ANSWER,
        "created_at": (created_at or datetime.now(UTC) - timedelta(seconds=1)).isoformat(),
    }
    if message_type == "assistant":
        event.update(
            llm_model="gpt-4o-mini",
            reasoning_level="medium",
            llm_params={"temperature": 0.7, "max_tokens": 2000, "top_p": 0.9},
            retrieval_info={
                "query": rng.choice(QUESTIONS),
                "retrieved_count": 5,
                "reranking_used": True,
                "top_scores": [round(rng.uniform(0.4, 0.95), 3) for _ in range(3)],
            },
            performance={
                "response_time_ms": rng.randrange(200, 4000),
                "token_count": rng.randrange(50, 1500),
                "retrieval_time_ms": rng.randrange(20, 400),
            },
        )
    event.update(overrides)
    return event
