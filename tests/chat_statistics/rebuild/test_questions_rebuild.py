"""``rebuild-stats`` recomputes the FAQ's question rows, pairing state and answer feedback as live made them."""

from __future__ import annotations

import contextlib
import random
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chat_statistics.rebuild.run import rebuild
from ingestor.app import create_app as create_ingestor
from shared.layout import StorageLayout
from shared.settings import Settings
from tests.conftest import AiohttpClient
from tests.support.faq import Reply, exchange, question_tables, settled
from tests.support.statistics_oracle import post_all

QUESTIONS = (
    "연차 휴가 신청 방법", "연차휴가는 어떻게 신청하나요?", "VPN 접속이 안 됩니다", "How do I reset my password?",
)


def mixed_exchanges(rng: random.Random, at: datetime, count: int) -> list[dict[str, Any]]:
    """Exchanges with every kind of answer: none, several, errors, regenerations, no retrieval."""
    events: list[dict[str, Any]] = []
    for i in range(count):
        replies = []
        for _ in range(rng.randrange(0, 4)):
            replies.append(Reply(
                f"answer {rng.randrange(100)}",
                None if rng.random() < 0.15 else round(rng.uniform(0, 1), 3),
                status="error" if rng.random() < 0.15 else "ok",
                regeneration=bool(replies) and rng.random() < 0.5,
            ))
        events += exchange(
            rng.choice(QUESTIONS), replies, collection=rng.choice(("hr-docs", "it-helpdesk")),
            session=f"s-{rng.randrange(15)}", at=at + timedelta(minutes=i),
        )
    return events


@pytest.mark.parametrize("workers", [1, 2])
async def test_rebuild_equals_live(aiohttp_client: AiohttpClient, config: Settings, workers: int) -> None:
    """Rows wiped or wrong are rebuilt to exactly the live ones; live pairing goes on after the rebuild."""
    ingest = await aiohttp_client(create_ingestor(config))
    rng = random.Random(3)
    now = datetime.now(UTC)
    events = mixed_exchanges(rng, now - timedelta(days=2, hours=1), 60)
    events += mixed_exchanges(rng, now - timedelta(hours=3), 60)
    # Posted in pieces that split exchanges, so live pairs across commits.
    for start in range(0, len(events), 37):
        await post_all(ingest, events[start : start + 37])
        await settled(config, min(start + 37, len(events)))
    answers = [e for e in events if e["message_type"] == "assistant"]
    feedback = [{"log_id": e["log_id"], "collection_name": e["collection_name"], "score": rng.choice((1, -1)),
                 "comment": "좋아요"} for e in answers[::3]]
    assert (await ingest.post("/v1/feedback", json=feedback)).status == 202
    await settled(config, len(events), len(feedback))
    live = question_tables(config)
    assert len({row[0] for row in live[0]}) >= 2 and live[1]
    with contextlib.closing(sqlite3.connect(config.db_path)) as conn:
        live_feedback = conn.execute("SELECT * FROM answer_feedback ORDER BY 1").fetchall()
        with conn:
            conn.execute("DELETE FROM faq_questions WHERE count % 2 = 0")
            conn.execute("UPDATE faq_questions SET count = count + 5, candidates = '[]'")
            conn.execute("DELETE FROM faq_sessions")
            conn.execute("DELETE FROM answer_feedback")
    today = datetime.now(config.timezone).date()
    rebuild(config.db_path, StorageLayout.from_settings(config), today - timedelta(days=10), today, workers=workers)
    assert question_tables(config) == live
    with contextlib.closing(sqlite3.connect(config.db_path)) as conn:
        assert conn.execute("SELECT * FROM answer_feedback ORDER BY 1").fetchall() == live_feedback
    # The last question of a session, asked before the rebuild, takes the answer posted after it.
    last_question = next(e for e in reversed(events) if e["message_type"] == "user")
    late = {**answers[-1], "log_id": "late-answer", "session_id": last_question["session_id"],
            "collection_name": last_question["collection_name"], "is_regeneration": False, "status": "ok",
            "created_at": (datetime.fromisoformat(events[-1]["created_at"]) + timedelta(seconds=5)).isoformat(),
            "retrieval_info": {"query": "q", "retrieved_count": 1, "top_scores": [1.0]}}
    asked = datetime.fromisoformat(last_question["created_at"]).astimezone(config.timezone).date()
    await post_all(ingest, [late])
    await settled(config, len(events) + 1, len(feedback))
    with contextlib.closing(sqlite3.connect(config.db_path)) as conn:
        (candidates,) = conn.execute(
            "SELECT candidates FROM faq_questions WHERE question_key = lower(?) AND collection_name = ? AND date = ?",
            (last_question["message_content"], last_question["collection_name"], asked.isoformat()),
        ).fetchone()
    assert '"late-answer"' in candidates
