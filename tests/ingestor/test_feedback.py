"""``POST /v1/feedback`` (CONTRACT.md "Additions"): durable, idempotent, redacted, and kept like the logs."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from ingestor.app import create_app
from ingestor.lifecycle.compression import compress_due
from ingestor.lifecycle.erasure import erase_user
from ingestor.lifecycle.retention import apply_retention
from ingestor.lifecycle.verification import verify_storage
from shared.db import connect_writer_sync
from shared.layout import StorageLayout, Stream
from shared.privacy import UserHasher
from shared.reader import iter_records
from shared.settings import Settings
from shared.wire import FeedbackRecord
from tests.conftest import TEST_SECRET, AiohttpClient
from tests.support.derived import until


def feedback(n: int = 0, **overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "feedback_id": str(uuid.UUID(int=n + 1)), "log_id": f"log-{n}", "collection_name": "hr-docs",
        "score": 1 if n % 2 else -1, "session_id": "s-1", "conversation_id": "c-1",
        "comment": "전화 010-1234-5678 로 주세요, kim@example.com", "user_id": "kim.minji",
    }
    item.update(overrides)
    return item


def stored(config: Settings) -> list[FeedbackRecord]:
    layout = StorageLayout.from_settings(config)
    paths = [f.readable for f in layout.days(Stream.FEEDBACK).values() if f.readable]
    return list(iter_records(paths, FeedbackRecord))


def counts(config: Settings) -> tuple[int, int]:
    with contextlib.closing(sqlite3.connect(config.db_path)) as conn:
        try:
            row = conn.execute(
                "SELECT coalesce(sum(positive), 0), coalesce(sum(negative), 0) FROM feedback_statistics"
            ).fetchone()
        except sqlite3.OperationalError:
            return (0, 0)
    return int(row[0]), int(row[1])


async def test_object_array_and_ndjson_are_stored_redacted_and_hashed(
    client: TestClient[Any, Any], config: Settings
) -> None:
    """Each body form answers 202 after the lines are in feedback/<day>.jsonl: no raw id, no PII."""
    resp = await client.post("/v1/feedback", json=feedback(0))
    assert resp.status == 202 and await resp.json() == {"accepted": 1}
    resp = await client.post("/v1/feedback", json=[feedback(1), feedback(2)])
    assert resp.status == 202 and await resp.json() == {"accepted": 2}
    body = "\n".join(json.dumps(feedback(i)) for i in (3, 4)) + "\n"
    resp = await client.post("/v1/feedback", data=body, headers={"Content-Type": "application/x-ndjson"})
    assert resp.status == 202 and await resp.json() == {"accepted": 2}
    records = stored(config)
    assert [r.log_id for r in records] == [f"log-{i}" for i in range(5)]
    assert records[0].user_hash == UserHasher(TEST_SECRET.encode()).hash("kim.minji")
    assert records[0].comment == "전화 [PHONE] 로 주세요, [EMAIL]"
    await until(lambda: counts(config) == (2, 3))
    for path in Path(config.data_dir).rglob("*"):
        if path.is_file() and path.suffix != ".sock":
            data = path.read_bytes()
            assert b"kim.minji" not in data and b"kim@example.com" not in data, path


async def test_retries_are_stored_and_counted_once(client: TestClient[Any, Any], config: Settings) -> None:
    """The same feedback_id twice (in one request and across requests) is one line and one count;
    a feedback_id is assigned when absent."""
    assert (await client.post("/v1/feedback", json=[feedback(1), feedback(1)])).status == 202
    assert (await client.post("/v1/feedback", json=feedback(1))).status == 202
    unnamed = feedback(2)
    del unnamed["feedback_id"], unnamed["user_id"]
    assert (await client.post("/v1/feedback", json=unnamed)).status == 202
    records = stored(config)
    assert len(records) == 2 and len(records[1].feedback_id) == 36 and records[1].user_hash is None
    await until(lambda: counts(config) == (1, 1))


async def test_bad_items_are_listed_and_nothing_is_stored(client: TestClient[Any, Any], config: Settings) -> None:
    """A 422 names every bad item; the good ones of that request are not stored either."""
    future = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    items = [feedback(0), feedback(1, score=0), {"collection_name": "x", "score": 1},
             feedback(3, surprise=True), feedback(4, created_at=future), feedback(5, collection_name="")]
    resp = await client.post("/v1/feedback", json=items)
    assert resp.status == 422
    errors = (await resp.json())["errors"]
    assert sorted({e["index"] for e in errors}) == [1, 2, 3, 4, 5]
    assert any(e["path"] == "$.score" for e in errors)
    assert stored(config) == []


async def test_restart_remembers_feedback_ids(aiohttp_client: AiohttpClient, config: Settings) -> None:
    """After a restart, a retry of feedback stored before it is still stored once."""
    first = await aiohttp_client(create_app(config))
    assert (await first.post("/v1/feedback", json=feedback(7))).status == 202
    await first.close()
    second = await aiohttp_client(create_app(config))
    assert (await second.post("/v1/feedback", json=feedback(7))).status == 202
    assert len(stored(config)) == 1
    await until(lambda: counts(config) == (1, 0))


async def test_feedback_files_follow_the_log_lifecycle(aiohttp_client: AiohttpClient, config: Settings) -> None:
    """Compression, verify, erasure and retention handle the feedback stream; counts stay once."""
    now = datetime.now(UTC)
    client = await aiohttp_client(create_app(config))
    old = (now - timedelta(days=20)).isoformat()
    items = [feedback(i, created_at=old) for i in range(4)] + [feedback(9, user_id="lee")]
    assert (await client.post("/v1/feedback", json=items)).status == 202
    await until(lambda: counts(config) == (3, 2))
    await client.close()
    layout = StorageLayout.from_settings(config)
    report = compress_due(layout, config)
    assert any(f.zst for f in layout.days(Stream.FEEDBACK).values()), report
    verified = verify_storage(layout, config)
    assert not verified.damaged and not verified.database.problems, verified.database.problems
    with contextlib.closing(connect_writer_sync(config.db_path)) as conn:
        erase_user(layout, conn, UserHasher(TEST_SECRET.encode()).hash("kim.minji"))
    assert [r.log_id for r in stored(config)] == ["log-9"]
    verified = verify_storage(layout, config)
    assert not verified.damaged and not verified.database.problems, verified.database.problems
    # A restart after all that applies nothing again.
    restarted = await aiohttp_client(create_app(config))
    await restarted.close()
    assert counts(config) == (3, 2)
    short = dataclasses.replace(config, log_retention_days=10)
    with contextlib.closing(connect_writer_sync(config.db_path)) as conn:
        apply_retention(layout, short, conn)
    assert [d for d in layout.days(Stream.FEEDBACK)] == [layout.day_of(now)]
