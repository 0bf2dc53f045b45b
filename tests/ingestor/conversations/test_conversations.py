"""Conversation history: assembly from log events, sampling, posted conversations, crash safety."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ingestor.app import create_app
from shared.layout import StorageLayout, Stream
from shared.reader import iter_lines, iter_records
from shared.settings import Settings
from shared.wire import ConversationRecord
from tests.conftest import AiohttpClient
from tests.support.daemon import IngestorProcess
from tests.support.derived import derived_state
from tests.support.events import make_event
from tests.support.stores import rows


def records(config: Settings) -> list[ConversationRecord]:
    """Every conversation record in every conversation day file."""
    layout = StorageLayout.from_settings(config)
    paths = [f.readable for f in layout.days(Stream.CONVERSATIONS).values() if f.readable]
    return list(iter_records(paths, ConversationRecord))


def newest(config: Settings) -> dict[str, ConversationRecord]:
    """The newest record per conversation_id (what readers take)."""
    out: dict[str, ConversationRecord] = {}
    for record in records(config):
        out[record.conversation_id] = record
    return out


def same_in_database(config: Settings) -> bool:
    """With PostgreSQL: ``conversation_records`` holds exactly each conversation's newest file line."""
    if not config.database_url:
        return True
    layout = StorageLayout.from_settings(config)
    lines: dict[str, bytes] = {}
    for path in (f.readable for f in layout.days(Stream.CONVERSATIONS).values() if f.readable):
        for record, line in zip(iter_records([path], ConversationRecord), iter_lines(path), strict=True):
            lines[record.conversation_id] = line
    stored = rows(config, "SELECT conversation_id, record FROM conversation_records")
    return {cid: bytes(text) for cid, text in stored} == lines


def turns(cid: str, n: int, start: datetime, rng: random.Random, **extra: Any) -> list[dict[str, Any]]:
    """n user/assistant exchanges of one conversation, a minute apart."""
    events = []
    for i in range(n):
        at = start + timedelta(minutes=i)
        events.append(make_event(rng, session_id=cid, created_at=at, message_type="user"))
        events.append(make_event(rng, session_id=cid, created_at=at + timedelta(seconds=5),
                                 message_type="assistant", **extra))
    return events


async def test_idle_conversation_is_closed_and_stored(store_config: Settings) -> None:
    """A conversation idle past CHATLOG_CONVERSATION_IDLE_MINUTES is judged and written as a §3.2 record."""
    config = store_config
    rng = random.Random(1)
    start = datetime.now(UTC) - timedelta(hours=2)
    async with derived_state(config) as derived:
        await derived.post(turns("conv-1", 3, start, rng))
        service = derived.state.conversations
        assert "conv-1" in service.assembler.open
        assert await service.sweep() == 1
    (record,) = records(config)
    assert record.conversation_id == "conv-1"
    assert [m.role for m in record.messages] == ["user", "assistant"] * 3
    assert record.metadata.total_turns == 3
    assert record.metadata.retention_priority in {"low", "high"}
    assert record.metadata.summary
    assert record.user_hash is None
    assert same_in_database(config)


async def test_active_conversation_stays_open(config: Settings) -> None:
    """A conversation with a message a minute ago is not closed by the sweep."""
    rng = random.Random(2)
    start = datetime.now(UTC) - timedelta(minutes=1)
    async with derived_state(config) as derived:
        await derived.post(turns("conv-live", 1, start, rng))
        assert await derived.state.conversations.sweep() == 0
        assert records(config) == []


async def test_open_conversations_written_at_shutdown(aiohttp_client: AiohttpClient, store_config: Settings) -> None:
    """Stopping the ingestor closes and judges every open conversation."""
    config = store_config
    client = await aiohttp_client(create_app(config))
    rng = random.Random(3)
    now = datetime.now(UTC) - timedelta(seconds=30)
    await client.post("/v1/logs", json=turns("a", 1, now, rng) + turns("b", 2, now, rng))
    await client.close()
    assert set(newest(config)) == {"a", "b"}
    assert same_in_database(config)


async def test_sampling_rules_and_rate(aiohttp_client: AiohttpClient, config: Settings) -> None:
    """With sample rate 0, only rule-kept conversations (error, regeneration, 5 turns, low score) are stored."""
    client = await aiohttp_client(create_app(dataclasses.replace(config, conversation_sample_rate=0.0)))
    rng = random.Random(4)
    start = datetime.now(UTC) - timedelta(hours=3)
    low = {"retrieval_info": {"query": "q", "top_scores": [0.9, 0.3]}}
    batch = (
        turns("plain", 1, start, rng)
        + turns("error", 1, start, rng, status="error", error={"type": "Timeout", "message": "llm"})
        + turns("regen", 1, start, rng, is_regeneration=True)
        + turns("long", 5, start, rng)
        + turns("lowscore", 1, start, rng, **low)
    )
    for event in batch:
        if event["message_type"] == "assistant" and event["session_id"] in {"plain", "long", "error", "regen"}:
            event["retrieval_info"]["top_scores"] = [0.9, 0.8]
    assert (await client.post("/v1/logs", json=batch)).status == 202
    await client.close()  # the derived process closes and judges every conversation as it stops
    kept = newest(config)
    assert set(kept) == {"error", "regen", "long", "lowscore"}
    assert kept["error"].metadata.retention_priority == "high"
    assert kept["regen"].metadata.retention_priority == "high"
    assert kept["lowscore"].metadata.retention_priority == "high"
    assert kept["long"].metadata.retention_priority == "medium"
    assert not any(r.metadata.is_sampled for r in kept.values())


async def test_continuation_writes_newer_full_record(store_config: Settings) -> None:
    """A conversation that continues after being closed gets a newer record holding every message."""
    config = store_config
    rng = random.Random(5)
    start = datetime.now(UTC) - timedelta(hours=3)
    async with derived_state(config) as derived:
        service = derived.state.conversations
        await derived.post(turns("c", 1, start, rng))
        await service.sweep()
        await derived.post(turns("c", 1, start + timedelta(hours=1), rng))
        await service.sweep()
    assert len(records(config)) == 2
    latest = newest(config)["c"]
    assert len(latest.messages) == 4 and latest.metadata.total_turns == 2
    (indexed,) = rows(config, "SELECT count(*), max(total_turns) FROM conversations WHERE conversation_id = 'c'")
    assert indexed == (1, 2)
    assert same_in_database(config)


async def test_posted_conversation(aiohttp_client: AiohttpClient, store_config: Settings) -> None:
    """POST /v1/conversations applies the rules, hashes the user id and answers saved/reason."""
    config = store_config
    client = await aiohttp_client(create_app(config))
    now = datetime.now(UTC).isoformat()
    body = {
        "conversation_id": "posted-1", "collection_name": "hr-docs", "user_id": "lee.jiwoo",
        "messages": [
            {"role": "user", "content": "제 번호는 010-1234-5678 입니다", "timestamp": now},
            {"role": "assistant", "content": "확인했습니다", "timestamp": now, "error": True,
             "retrieved_docs": [{"doc_id": "d1", "score": 0.8}]},
        ],
    }
    resp = await client.post("/v1/conversations", json=body)
    assert resp.status == 202
    assert await resp.json() == {"saved": True, "reason": "error"}
    (record,) = records(config)
    assert record.user_hash and "lee.jiwoo" not in record.user_hash
    assert "010-1234-5678" not in record.messages[0].content and "[PHONE]" in record.messages[0].content
    assert same_in_database(config)
    bad = await client.post("/v1/conversations", json={**body, "messages": [{"role": "bot", "content": "x"}]})
    assert bad.status == 422
    assert (await bad.json())["errors"][0]["path"] == "$.messages[0].role"


@pytest.mark.slow
async def test_sigkill_loses_no_open_conversation(tmp_path: Path, short_dir: Path) -> None:
    """Conversations open at a SIGKILL are rebuilt from the day files and stored at the next stop."""
    proc = IngestorProcess(tmp_path / "data", short_dir / "s.sock")
    try:
        proc.start()
        rng = random.Random(6)
        start = datetime.now(UTC) - timedelta(minutes=5)
        import aiohttp

        async with aiohttp.ClientSession() as session:
            for cid in ("k1", "k2", "k3"):
                async with session.post(proc.url + "/v1/logs", json=turns(cid, 2, start, rng)) as resp:
                    assert resp.status == 202
        await asyncio.to_thread(proc.kill)
        config = Settings.for_data_dir(tmp_path / "data")
        assert records(config) == []
        proc.start()
        code, err = await asyncio.to_thread(proc.terminate)
        assert code == 0, err
        kept = newest(config)
        assert set(kept) == {"k1", "k2", "k3"}
        assert all(len(r.messages) == 4 for r in kept.values())
    finally:
        proc.stop_quietly()


def test_memory_bound_closes_least_recent_first() -> None:
    """Past the message bound the least recently active conversations are taken first."""
    from ingestor.conversations.assembly import ConversationAssembler
    from shared.wire import LogRecord

    assembler = ConversationAssembler()
    base = datetime.now(UTC)
    for i in range(10):
        for j in range(3):
            assembler.add([LogRecord(log_id=f"{i}-{j}", session_id=f"c{i}", conversation_id=f"c{i}",
                                     collection_name="x", message_type="user", message_content="hi",
                                     created_at=base + timedelta(minutes=i, seconds=j))])
    assert assembler.messages == 30
    taken = assembler.take_oldest_until(max_open=100, max_messages=20)
    assert [c.conversation_id for c in taken] == ["c0", "c1", "c2", "c3"]
    assert assembler.messages == 18 and len(assembler) == 6


@pytest.mark.parametrize("compressed", [False, True])
async def test_closed_conversation_reads_its_messages_back_from_the_day_files(
    config: Settings, compressed: bool
) -> None:
    """Open conversations hold only their lines' places; the record has every message, even after compression."""
    from ingestor.conversations.places import is_place
    from ingestor.lifecycle.compression import compress_day

    rng = random.Random(7)
    start = datetime.now(UTC) - timedelta(hours=2)
    events = turns("placed", 2, start, rng)
    events[0]["message_content"] = "제 번호는 010-1234-5678 입니다"
    async with derived_state(config) as derived:
        written = await derived.post(events + turns("other", 1, start, rng))
        conversation = derived.state.conversations.assembler.open["placed"]
        assert all(is_place(item) and len(item) < 32 for item in conversation.held)  # places, not text
        if compressed:
            layout = StorageLayout.from_settings(config)
            assert compress_day(layout, Stream.LOGS, written[0].day, level=3) is not None
        assert await derived.state.conversations.sweep() == 2
    record = newest(config)["placed"]
    expected = [r.record.message_content for r in written if r.record.conversation_id == "placed"]
    assert [m.content for m in record.messages] == expected
    assert "[PHONE]" in record.messages[0].content
    assert [m.role for m in record.messages] == ["user", "assistant"] * 2
