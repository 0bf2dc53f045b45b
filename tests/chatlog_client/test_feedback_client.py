"""``feedback(log_id, score, ...)`` of both clients against a real ingestor: delivered, spooled, retried once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from chatlog_client import AsyncChatlogClient, ChatlogClient
from shared.layout import StorageLayout, Stream
from shared.reader import iter_records
from shared.settings import Settings
from shared.wire import FeedbackRecord
from tests.chatlog_client.test_with_ingestor import free_port, ingestor


def stored(config: Settings) -> list[FeedbackRecord]:
    layout = StorageLayout.from_settings(config)
    paths = [f.readable for f in layout.days(Stream.FEEDBACK).values() if f.readable]
    return list(iter_records(paths, FeedbackRecord))


async def test_sync_client_sends_feedback_and_spools_it_while_the_daemon_is_away(
    config: Settings, tmp_path: Path
) -> None:
    """Feedback given while nothing listens is spooled beside the log spool and delivered once later."""
    port = free_port()
    spool = tmp_path / "spool.ndjson"
    client = ChatlogClient(f"http://127.0.0.1:{port}", spool_path=spool, timeout=2.0)
    client.feedback("log-1", -1, collection_name="hr-docs", comment="wrong", user_id="kim.minji")
    await asyncio.to_thread(client.flush, 1.0)
    assert await asyncio.to_thread(client.close, 1.0) == 1  # in the feedback spool
    spooled = [p for p in tmp_path.iterdir() if p.name.startswith("spool.feedback.ndjson") and p.suffix != ".lock"]
    assert sum(p.stat().st_size for p in spooled) > 0, list(tmp_path.iterdir())
    async with ingestor(config, port):
        again = ChatlogClient(f"http://127.0.0.1:{port}", spool_path=spool, timeout=2.0)
        again.feedback("log-2", 1, collection_name="hr-docs")
        assert await asyncio.to_thread(again.flush, 10.0)
        assert await asyncio.to_thread(again.close, 5.0) == 0
    records = stored(config)
    assert sorted((r.log_id, r.score) for r in records) == [("log-1", -1), ("log-2", 1)]
    assert all(r.user_hash != "kim.minji" for r in records)
    with pytest.raises(ValueError, match="score"):
        again.feedback("log-3", 0, collection_name="hr-docs")


async def test_async_client_sends_feedback(config: Settings, tmp_path: Path) -> None:
    """The asyncio client's feedback reaches the feedback stream; flush covers it."""
    port = free_port()
    spool = tmp_path / "a.ndjson"
    async with ingestor(config, port), AsyncChatlogClient(f"http://127.0.0.1:{port}", spool_path=spool) as client:
        client.log({"session_id": "s", "collection_name": "hr-docs", "message_type": "user", "message_content": "질문"})
        client.feedback("log-9", 1, collection_name="hr-docs", session_id="s", feedback_id="f-9")
        client.feedback("log-9", 1, collection_name="hr-docs", session_id="s", feedback_id="f-9")
        assert await client.flush(10.0)
    assert [(r.feedback_id, r.log_id) for r in stored(config)] == [("f-9", "log-9")]
