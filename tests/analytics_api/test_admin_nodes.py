"""PostgreSQL: admin lookups from an analytics API without a data directory, over every node's conversations."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from analytics_api.app import create_app as create_analytics
from ingestor.app import create_app as create_ingestor
from shared.privacy import UserHasher
from shared.settings import Settings
from tests.conftest import TEST_SECRET, AiohttpClient
from tests.support.events import make_event
from tests.support.faq import Reply, exchange, settled
from tests.support.statistics_oracle import post_all
from tests.support.stores import node_config, on_postgres

TOKEN = "admin-token-7f3a"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
KIM = UserHasher(TEST_SECRET.encode()).hash("kim")


async def api_without_data_dir(
    aiohttp_client: AiohttpClient, tmp_path: Path, url: str
) -> tuple[TestClient[Any, Any], Path]:
    """An analytics API of the store at ``url`` whose data directory does not exist."""
    nowhere = tmp_path / "no-such-dir"
    settings = on_postgres(Settings.for_data_dir(nowhere, admin_token=TOKEN, api_port=0), url, "api")
    return await aiohttp_client(create_analytics(settings)), nowhere


def posted(cid: str, user: str, when: datetime) -> dict[str, Any]:
    """A two-message conversation posted whole."""
    return {
        "conversation_id": cid, "collection_name": "hr-docs", "user_id": user,
        "messages": [
            {"role": "user", "content": f"질문 {cid}", "timestamp": when.isoformat()},
            {"role": "assistant", "content": f"답변 {cid}", "timestamp": (when + timedelta(seconds=2)).isoformat()},
        ],
    }


async def test_api_without_data_directory_shows_a_conversation_and_its_feedback(
    aiohttp_client: AiohttpClient, tmp_path: Path, postgres_url: str
) -> None:
    """The record and the feedback beside its answer come from PostgreSQL; no data directory is made."""
    node = node_config(tmp_path, postgres_url, "node-a")
    ingest = await aiohttp_client(create_ingestor(node))
    events = exchange("연차 휴가 신청 방법", [Reply("first", log_id="a-1")], session="conv-t")
    for event in events:
        event["conversation_id"] = "conv-t"
    await post_all(ingest, events)
    feedback = [{"feedback_id": "f-1", "log_id": "a-1", "collection_name": "hr-docs", "score": -1,
                 "comment": "틀렸어요"}]
    assert (await ingest.post("/v1/feedback", json=feedback)).status == 202
    await settled(node, len(events), len(feedback))
    await ingest.close()  # the stop closes the conversation

    api, nowhere = await api_without_data_dir(aiohttp_client, tmp_path, postgres_url)
    listed = await (await api.get("/api/admin/conversations", headers=AUTH)).json()
    assert [item["conversation_id"] for item in listed["items"]] == ["conv-t"]
    resp = await api.get("/api/admin/conversations/conv-t", headers=AUTH)
    assert resp.status == 200, await resp.text()
    messages = (await resp.json())["messages"]
    assert messages[0]["content"] == "연차 휴가 신청 방법"
    answers = {m["log_id"]: m["feedback"] for m in messages if m["role"] == "assistant"}
    assert [(f["score"], f["comment"]) for f in answers["a-1"]] == [(-1, "틀렸어요")]
    assert (await api.get("/api/admin/conversations/nope", headers=AUTH)).status == 404
    assert not nowhere.exists()


async def test_admin_lookups_find_the_conversations_of_every_node(
    aiohttp_client: AiohttpClient, tmp_path: Path, postgres_url: str
) -> None:
    """Two nodes with their own data directories: lookups by user and collection list both nodes' conversations,
    a conversation continued on the second node after the first closed it holds every message, and feedback
    posted to the second node on an answer the first stored is beside that answer (found by its log_id)."""
    rng = random.Random(3)
    start = datetime.now(UTC) - timedelta(hours=3)
    answered = ""
    for name, offset in (("node-a", 0), ("node-b", 1)):
        node = node_config(tmp_path, postgres_url, name)
        ingest = await aiohttp_client(create_ingestor(node))
        when = start + timedelta(hours=offset)
        resp = await ingest.post("/v1/conversations", json=posted(f"conv-{name}", "kim", when))
        assert resp.status == 202 and (await resp.json())["saved"] is True
        turn = [make_event(rng, session_id="shared", user_id="kim", collection_name="hr-docs", created_at=when,
                           message_type=kind) for kind in ("user", "assistant")]
        await post_all(ingest, turn)
        if name == "node-a":
            answered = turn[1]["log_id"]
        else:  # feedback on node-a's answer, posted to node-b
            feedback = {"feedback_id": "f-b", "log_id": answered, "collection_name": "hr-docs", "score": 1}
            assert (await ingest.post("/v1/feedback", json=[feedback])).status == 202
        await ingest.close()  # closes "shared": node-b's record continues node-a's

    api, _ = await api_without_data_dir(aiohttp_client, tmp_path, postgres_url)

    async def ids(**query: str) -> set[str]:
        resp = await api.get("/api/admin/conversations", params=query, headers=AUTH)
        assert resp.status == 200, await resp.text()
        return {item["conversation_id"] for item in (await resp.json())["items"]}

    everything = {"conv-node-a", "conv-node-b", "shared"}
    assert await ids(user_hash=KIM) == everything
    assert await ids(collection_name="hr-docs") == everything
    for cid in ("conv-node-a", "conv-node-b"):
        resp = await api.get(f"/api/admin/conversations/{cid}", headers=AUTH)
        assert resp.status == 200 and (await resp.json())["messages"][0]["content"] == f"질문 {cid}"
    shared = await (await api.get("/api/admin/conversations/shared", headers=AUTH)).json()
    assert [m["role"] for m in shared["messages"]] == ["user", "assistant"] * 2
    assert shared["metadata"]["total_turns"] == 2
    feedback_ids = [[f["feedback_id"] for f in m["feedback"]] for m in shared["messages"]]
    assert feedback_ids == [[], ["f-b"], [], []]
