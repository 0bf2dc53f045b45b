"""The ingest API's answers (CONTRACT.md "Ingest API") on a real app, real files, real SQLite."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from ingestor.app import create_app
from shared.layout import StorageLayout, Stream
from shared.reader import iter_records
from shared.settings import Settings
from shared.wire import LogRecord
from tests.conftest import AiohttpClient
from tests.support.events import make_event


def stored(config: Settings) -> list[LogRecord]:
    """Every record in every log day file."""
    layout = StorageLayout.from_settings(config)
    paths = [f.readable for f in layout.days(Stream.LOGS).values() if f.readable]
    return list(iter_records(paths, LogRecord))


async def test_single_event_is_stored_and_acknowledged(
    client: TestClient[Any, Any], config: Settings
) -> None:
    """A single JSON object answers 202 {"accepted": 1} and is in today's day file."""
    event = make_event(random.Random(1))
    resp = await client.post("/v1/logs", json=event)
    assert resp.status == 202
    assert await resp.json() == {"accepted": 1}
    records = stored(config)
    assert [r.log_id for r in records] == [event["log_id"]]
    assert records[0].conversation_id == event["session_id"]


async def test_array_and_ndjson_bodies(client: TestClient[Any, Any], config: Settings) -> None:
    """A JSON array and an NDJSON body are both accepted whole."""
    rng = random.Random(2)
    batch = [make_event(rng) for _ in range(5)]
    resp = await client.post("/v1/logs", json=batch)
    assert resp.status == 202 and (await resp.json())["accepted"] == 5
    lines = [make_event(rng, message_type="assistant") for _ in range(3)]
    body = "\n".join(json.dumps(e, ensure_ascii=False) for e in lines) + "\n"
    resp = await client.post("/v1/logs", data=body.encode(), headers={"Content-Type": "application/x-ndjson"})
    assert resp.status == 202 and (await resp.json())["accepted"] == 3
    assert len(stored(config)) == 8


async def test_log_id_assigned_when_absent(client: TestClient[Any, Any], config: Settings) -> None:
    """An event without log_id gets a UUID and created_at is the receive time."""
    event = make_event(random.Random(3))
    del event["log_id"], event["created_at"]
    resp = await client.post("/v1/logs", json=event)
    assert resp.status == 202
    (record,) = stored(config)
    assert len(record.log_id) == 36
    assert abs((datetime.now(UTC) - record.created_at).total_seconds()) < 60


async def test_invalid_json_is_400(client: TestClient[Any, Any]) -> None:
    """A body that is not JSON answers 400 invalid_json."""
    resp = await client.post("/v1/logs", data=b"{not json", headers={"Content-Type": "application/json"})
    assert resp.status == 400
    assert (await resp.json())["error"] == "invalid_json"
    resp = await client.post(
        "/v1/logs", data=b'{"a": 1}\n{oops\n', headers={"Content-Type": "application/x-ndjson"}
    )
    assert resp.status == 400


async def test_mixed_batch_stores_nothing_and_lists_every_error(
    client: TestClient[Any, Any], config: Settings
) -> None:
    """One bad event rejects the whole request with 422, listing each bad index and path."""
    rng = random.Random(4)
    good = make_event(rng)
    bad_type = make_event(rng, message_type="assistant")
    bad_type["performance"]["response_time_ms"] = "slow"
    unknown = make_event(rng, colour="blue")
    missing = make_event(rng)
    del missing["session_id"]
    resp = await client.post("/v1/logs", json=[good, bad_type, unknown, missing])
    assert resp.status == 422
    body = await resp.json()
    assert body["error"] == "validation_failed"
    by_index = {e["index"]: e for e in body["errors"]}
    assert set(by_index) == {1, 2, 3}
    assert by_index[1]["path"] == "$.performance.response_time_ms"
    assert by_index[2]["path"] == "$.colour" and "colour" in by_index[2]["message"]
    assert by_index[3]["path"] == "$.session_id"
    assert stored(config) == []


async def test_out_of_range_dates_are_422(client: TestClient[Any, Any], config: Settings) -> None:
    """Events dated over a day ahead or older than the log retention are refused."""
    rng = random.Random(5)
    now = datetime.now(UTC)
    future = make_event(rng, created_at=now + timedelta(days=2))
    ancient = make_event(rng, created_at=now - timedelta(days=config.log_retention_days + 2))
    resp = await client.post("/v1/logs", json=[make_event(rng), future, ancient])
    assert resp.status == 422
    errors = (await resp.json())["errors"]
    assert [(e["index"], e["path"]) for e in errors] == [(1, "$.created_at"), (2, "$.created_at")]
    assert stored(config) == []
    broken = make_event(rng, message_type="bot")
    resp = await client.post("/v1/logs", json=[broken, future])
    errors = (await resp.json())["errors"]
    assert [(e["index"], e["path"]) for e in errors] == [(0, "$.message_type"), (1, "$.created_at")]


async def test_event_lands_in_its_created_at_day(client: TestClient[Any, Any], config: Settings) -> None:
    """An event of three days ago is appended to that day's file, not today's."""
    when = datetime.now(UTC) - timedelta(days=3)
    resp = await client.post("/v1/logs", json=make_event(random.Random(6), created_at=when))
    assert resp.status == 202
    layout = StorageLayout.from_settings(config)
    assert list(layout.days(Stream.LOGS)) == [layout.day_of(when)]


async def test_retried_log_ids_are_stored_once(client: TestClient[Any, Any], config: Settings) -> None:
    """A retried request (same log_ids) answers 202 again and its events are stored once."""
    rng = random.Random(7)
    batch = [make_event(rng) for _ in range(10)]
    for _ in range(3):
        resp = await client.post("/v1/logs", json=batch)
        assert resp.status == 202
        assert (await resp.json())["accepted"] == 10
    dup_in_request = [batch[0], batch[0]]
    assert (await client.post("/v1/logs", json=dup_in_request)).status == 202
    assert sorted(r.log_id for r in stored(config)) == sorted(e["log_id"] for e in batch)


async def test_body_over_limit_is_413(aiohttp_client: AiohttpClient, config: Settings) -> None:
    """A body over CHATLOG_MAX_BODY_BYTES answers 413 too_large and stores nothing."""
    import dataclasses

    small = dataclasses.replace(config, max_body_bytes=4096)
    client = await aiohttp_client(create_app(small))
    batch = [make_event(random.Random(8), message_type="assistant") for _ in range(20)]
    resp = await client.post("/v1/logs", json=batch)
    assert resp.status == 413
    assert (await resp.json())["error"] == "too_large"
    assert stored(small) == []


async def test_token_required_over_tcp(aiohttp_client: AiohttpClient, config: Settings) -> None:
    """With CHATLOG_INGEST_TOKEN set, TCP ingest needs the bearer token: 401 otherwise."""
    import dataclasses

    guarded = dataclasses.replace(config, ingest_token="s3cret-token")
    client = await aiohttp_client(create_app(guarded))
    event = make_event(random.Random(9))
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret-token"}):
        resp = await client.post("/v1/logs", json=event, headers=headers)
        assert resp.status == 401
        assert (await resp.json())["error"] == "unauthorized"
    resp = await client.post("/v1/logs", json=event, headers={"Authorization": "Bearer s3cret-token"})
    assert resp.status == 202


async def test_overload_is_503_with_retry_after(aiohttp_client: AiohttpClient, config: Settings) -> None:
    """More events than the queue bound answer 503 with Retry-After and store nothing."""
    import dataclasses

    tiny = dataclasses.replace(config, queue_max_events=5, flush_interval_ms=300)
    client = await aiohttp_client(create_app(tiny))
    rng = random.Random(10)
    first = asyncio.get_running_loop().create_task(client.post("/v1/logs", json=[make_event(rng) for _ in range(4)]))
    await asyncio.sleep(0.05)  # the first request now waits in the queue for its group commit
    resp = await client.post("/v1/logs", json=[make_event(rng) for _ in range(2)])
    assert resp.status == 503
    assert resp.headers["Retry-After"] == "1"
    assert (await resp.json())["error"] == "overloaded"
    assert (await first).status == 202
    assert len(stored(tiny)) == 4
    # An empty queue admits even a request larger than the bound: slow, never refused forever.
    resp = await client.post("/v1/logs", json=[make_event(rng) for _ in range(8)])
    assert resp.status == 202 and len(stored(tiny)) == 12


async def test_no_raw_user_id_on_disk(client: TestClient[Any, Any], config: Settings) -> None:
    """A posted user_id is replaced by its keyed hash: its bytes are in no file at all."""
    raw = "employee-8812-kim.minji@example.com"
    rng = random.Random(11)
    events = [make_event(rng, user_id=raw), make_event(rng, message_type="assistant", user_id=raw)]
    assert (await client.post("/v1/logs", json=events)).status == 202
    await client.get("/healthz")
    (record, _) = stored(config)
    assert record.user_hash and len(record.user_hash) == 64
    needle = raw.encode()
    for path in Path(config.data_dir).rglob("*"):
        if path.is_file():
            assert needle not in path.read_bytes(), path


async def test_sessions_table_kept_current(client: TestClient[Any, Any], config: Settings) -> None:
    """chat_sessions gets one row per session with message counts and first/last times."""
    rng = random.Random(12)
    events = [
        make_event(rng, session_id="sess-a"),
        make_event(rng, session_id="sess-a", message_type="assistant"),
        make_event(rng, session_id="sess-b"),
    ]
    assert (await client.post("/v1/logs", json=events)).status == 202
    rows: dict[str, int] = {}
    for _ in range(200):
        with contextlib.closing(sqlite3.connect(config.db_path)) as conn:
            rows = dict(conn.execute("SELECT session_id, message_count FROM chat_sessions").fetchall())
        if rows:
            break
        await asyncio.sleep(0.01)
    assert rows == {"sess-a": 2, "sess-b": 1}


async def test_healthz_and_metrics(client: TestClient[Any, Any]) -> None:
    """/healthz answers ok and /metrics exposes the ingest counters in Prometheus text."""
    resp = await client.get("/healthz")
    assert resp.status == 200 and (await resp.json())["status"] == "ok"
    await client.post("/v1/logs", json=make_event(random.Random(13)))
    text = await (await client.get("/metrics")).text()
    for name in ("chatlog_ingest_events_accepted_total 1.0", "chatlog_ingest_batches_total",
                 "chatlog_ingest_queue_depth", "chatlog_ingest_bytes_written_total",
                 "chatlog_ingest_flush_seconds_bucket", "chatlog_ingest_spool_bytes"):
        assert name in text
