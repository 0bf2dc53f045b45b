"""Erasing a user takes their questions, answers and feedback out of the FAQ's base; the others' stay."""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

from chat_statistics.rebuild.run import rebuild
from ingestor.app import create_app
from ingestor.lifecycle.erasure import erase_user
from shared.db import connect_writer_sync
from shared.layout import StorageLayout
from shared.privacy import UserHasher
from shared.settings import Settings
from tests.conftest import TEST_SECRET, AiohttpClient
from tests.support.faq import Reply, exchange, question_tables, settled
from tests.support.statistics_oracle import post_all

LEAVE = "연차 휴가 신청 방법"


async def test_erasure_takes_the_user_out_of_the_faq(aiohttp_client: AiohttpClient, config: Settings) -> None:
    """Counts, scores, candidate answers, pairing state and feedback of the user go; the rows equal a rebuild."""
    client = await aiohttp_client(create_app(config))
    events: list[dict[str, Any]] = []
    for when in (datetime.now(UTC) - timedelta(days=2), datetime.now(UTC) - timedelta(hours=1)):
        for user, score in (("victim", 0.95), ("victim", 0.9), ("other", 0.4), ("other", 0.5)):
            events += exchange(LEAVE, [Reply(f"{user} answer", score, log_id=f"{user}-{when.day}-{score}")],
                               at=when, user_id=user)
        events += exchange("How do I reset my password?", [Reply("victim only", 0.7)], at=when, user_id="victim")
    await post_all(client, events)
    liked = next(e["log_id"] for e in events if e["log_id"].startswith("other-"))
    feedback = [
        {"log_id": "victim-answer-liked", "collection_name": "hr-docs", "score": 1, "user_id": "victim",
         "comment": "great"},
        {"log_id": liked, "collection_name": "hr-docs", "score": 1, "user_id": "other"},
    ]
    assert (await client.post("/v1/feedback", json=feedback)).status == 202
    await settled(config, len(events), len(feedback))
    await client.close()
    before, _ = question_tables(config)
    assert sum(row[4] for row in before) == 10
    victim = UserHasher(TEST_SECRET.encode()).hash("victim")
    layout = StorageLayout.from_settings(config)
    with contextlib.closing(connect_writer_sync(config.db_path)) as conn:
        report = erase_user(layout, conn, victim)
    assert report.faq_questions == 6
    rows, sessions = question_tables(config)
    assert [(row[2], row[4], row[5]) for row in rows] == [("연차 휴가 신청 방법", 2, 2)] * 2
    for row in rows:
        assert row[6] == 0.9 and "victim" not in row[7]  # score sum 0.4 + 0.5; only the other's answers
    assert len(sessions) == 4
    with contextlib.closing(sqlite3.connect(config.db_path)) as conn:
        assert conn.execute("SELECT log_id FROM answer_feedback").fetchall() == [(liked,)]
    today = datetime.now(config.timezone).date()
    rebuild(config.db_path, layout, today - timedelta(days=5), today, workers=1)
    assert question_tables(config) == (rows, sessions)
