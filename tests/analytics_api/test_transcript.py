"""The admin transcript shows each answer's feedback (score, comment), from events and feedback posted later."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from analytics_api.app import create_app as create_analytics
from ingestor.app import create_app as create_ingestor
from shared.settings import Settings
from tests.conftest import AiohttpClient
from tests.support.faq import Reply, exchange, settled
from tests.support.statistics_oracle import post_all

TOKEN = "admin-token-7f3a"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_each_answer_carries_its_feedback(aiohttp_client: AiohttpClient, store_config: Settings) -> None:
    """Good and bad feedback with comments (PII redacted) beside the answer they name; others have none."""
    settings = dataclasses.replace(store_config, admin_token=TOKEN)
    ingest = await aiohttp_client(create_ingestor(settings))
    events = exchange("연차 휴가 신청 방법", [Reply("first", log_id="a-1"), Reply("second", regeneration=True,
                                                                               log_id="a-2")], session="conv-t")
    later = datetime.fromisoformat(events[-1]["created_at"]) + timedelta(seconds=30)
    events += exchange("VPN 접속 오류", [Reply("third", log_id="a-3")], session="conv-t", at=later)
    for event in events:
        event["conversation_id"] = "conv-t"
    await post_all(ingest, events)
    feedback = [
        {"feedback_id": "f-1", "log_id": "a-1", "collection_name": "hr-docs", "score": -1,
         "comment": "틀렸어요, 연락처 kim@example.com", "created_at": events[1]["created_at"]},
        {"feedback_id": "f-2", "log_id": "a-2", "collection_name": "hr-docs", "score": 1},
        {"feedback_id": "f-3", "log_id": "a-2", "collection_name": "hr-docs", "score": -1, "comment": "다시 보니 별로"},
    ]
    assert (await ingest.post("/v1/feedback", json=feedback)).status == 202
    await settled(settings, len(events), len(feedback))
    await ingest.close()  # the stop closes the conversation
    api = await aiohttp_client(create_analytics(settings))
    resp = await api.get("/api/admin/conversations/conv-t", headers=AUTH)
    assert resp.status == 200, await resp.text()
    messages = (await resp.json())["messages"]
    answers = {m["log_id"]: m["feedback"] for m in messages if m["role"] == "assistant"}
    assert list(answers) == ["a-1", "a-2", "a-3"]
    assert [(f["score"], f["comment"]) for f in answers["a-1"]] == [(-1, "틀렸어요, 연락처 [EMAIL]")]
    assert sorted((f["feedback_id"], f["score"], f["comment"]) for f in answers["a-2"]) == [
        ("f-2", 1, None), ("f-3", -1, "다시 보니 별로"),
    ]
    assert answers["a-3"] == []
    assert all(m["feedback"] == [] for m in messages if m["role"] == "user")
