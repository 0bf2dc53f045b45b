"""Property-based tests of the ingest decoders, and of a real app under hostile requests."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingestor.decoding import as_utc, decode_items
from ingestor.records import RecordBuilder
from shared.errors import InvalidJson, ValidationFailed
from shared.layout import StorageLayout, Stream
from shared.privacy import UserHasher
from shared.settings import Settings
from shared.wire import ConversationIn, LogEventIn, LogRecord
from tests.support.events import make_event
from tests.support.strategies import (
    CONTENT_TYPES,
    EXTREME_DATES,
    INTEGER_BOUNDS,
    hostile_requests,
    nested,
    out_of_bounds,
    set_path,
    valid_events,
)

PROPERTIES = settings(max_examples=200, deadline=None, database=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl")
HASHER = UserHasher(b"property-test-key-0123456789")


def builder(retention_days: int = 30) -> RecordBuilder:
    """A record builder over a layout that is never written (building touches no file)."""
    layout = StorageLayout(root=Path("/nonexistent"), db_path=Path("/nonexistent/db"), tz=ZoneInfo("Asia/Seoul"))
    return RecordBuilder(layout, HASHER, retention_days)


def body_of(items: list[str], content_type: str) -> bytes:
    """Items as one body: NDJSON lines for the NDJSON types, a JSON array (or the one object) otherwise."""
    if content_type in NDJSON_TYPES:
        return "\n".join(items).encode()
    return (items[0] if len(items) == 1 else f"[{', '.join(items)}]").encode()


def decode_and_build(body: bytes, content_type: str) -> list[Any]:
    """What POST /v1/logs does with a body before storing it."""
    records = builder()
    return records.build(decode_items(body, content_type, LogEventIn, records.check_created_at))


bodies = (
    st.binary(max_size=400)
    | st.text(max_size=200).map(str.encode)
    | st.builds(nested, st.integers(1, 5_000), st.sampled_from(["array", "object"])).map(str.encode)
    | st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=10),
                   lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                   max_leaves=20).map(lambda value: json.dumps(value).encode())
)


@PROPERTIES
@given(body=bodies, content_type=st.sampled_from(CONTENT_TYPES) | st.text(max_size=20),
       type_=st.sampled_from([LogEventIn, ConversationIn]))
def test_decode_items_raises_only_its_two_errors(body: bytes, content_type: str, type_: type[Any]) -> None:
    """Whatever the bytes and content type, decoding gives items or InvalidJson / ValidationFailed."""
    try:
        items = decode_items(body, content_type, type_)
    except (InvalidJson, ValidationFailed):
        return
    assert all(isinstance(item, type_) for item in items)


@PROPERTIES
@given(events=st.lists(valid_events(), min_size=1, max_size=4), content_type=st.sampled_from(CONTENT_TYPES))
def test_valid_events_round_trip_through_the_day_file_format(
    events: list[dict[str, Any]], content_type: str
) -> None:
    """Every valid event decodes, builds into a record, and reads back from its line as the same record."""
    encoded = decode_and_build(body_of([json.dumps(e) for e in events], content_type), content_type)
    assert len(encoded) == len(events)
    for event, item in zip(events, encoded, strict=True):
        line = item.line
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        read = msgspec.json.decode(line, type=LogRecord)
        assert read == item.record
        assert read.session_id == event["session_id"]
        assert read.message_content == event["message_content"]
        assert read.metadata == event.get("metadata")
        assert read.user_hash == (HASHER.hash(event["user_id"]) if "user_id" in event else None)
        assert read.created_at.utcoffset() == timedelta(0)
        if "created_at" in event:
            assert read.created_at == as_utc(datetime.fromisoformat(event["created_at"]))
        assert item.day == read.created_at.astimezone(ZoneInfo("Asia/Seoul")).date()


@PROPERTIES
@given(events=st.lists(valid_events(), min_size=1, max_size=3), data=st.data(),
       content_type=st.sampled_from(CONTENT_TYPES))
def test_integers_out_of_bounds_are_rejected_with_their_path(
    events: list[dict[str, Any]], data: st.DataObject, content_type: str
) -> None:
    """An integer past its bound (or negative), in any event of a batch, is a 422 naming index and path."""
    index = data.draw(st.integers(0, len(events) - 1))
    path = data.draw(st.sampled_from(sorted(INTEGER_BOUNDS)))
    set_path(events[index], path, data.draw(out_of_bounds(INTEGER_BOUNDS[path])))
    with pytest.raises(ValidationFailed) as failed:
        decode_and_build(body_of([json.dumps(e) for e in events], content_type), content_type)
    assert [(e["index"], e["path"]) for e in failed.value.extra["errors"]] == [(index, path)]


@PROPERTIES
@given(events=st.lists(valid_events(), min_size=1, max_size=3), data=st.data(),
       content_type=st.sampled_from(CONTENT_TYPES))
def test_dates_out_of_range_are_rejected_with_their_path(
    events: list[dict[str, Any]], data: st.DataObject, content_type: str
) -> None:
    """created_at beyond UTC, over a day ahead or older than the retention is a 422 at $.created_at."""
    index = data.draw(st.integers(0, len(events) - 1))
    events[index]["created_at"] = data.draw(st.sampled_from(EXTREME_DATES) | st.datetimes(
        max_value=datetime(2000, 1, 1), timezones=st.none() | st.just(UTC)).map(datetime.isoformat))
    with pytest.raises(ValidationFailed) as failed:
        decode_and_build(body_of([json.dumps(e) for e in events], content_type), content_type)
    assert [(e["index"], e["path"]) for e in failed.value.extra["errors"]] == [(index, "$.created_at")]


def stored_state(config: Settings) -> tuple[dict[str, bytes], list[tuple[Any, ...]]]:
    """Every day file's bytes and every indexed conversation row."""
    layout = StorageLayout.from_settings(config)
    files = {str(f.readable): f.readable.read_bytes() for stream in Stream
             for f in layout.days(stream).values() if f.readable is not None}
    with sqlite3.connect(config.db_path) as conn:
        rows = conn.execute("SELECT * FROM conversations ORDER BY conversation_id").fetchall()
    return files, rows


async def test_hostile_requests_get_a_4xx_and_change_nothing_stored(
    client: TestClient[Any, Any], config: Settings
) -> None:
    """On a real app, no hostile body gets a 5xx, and what was stored before stays byte for byte."""
    assert (await client.post("/v1/logs", json=[make_event() for _ in range(5)])).status == 202
    posted = {"conversation_id": "kept", "collection_name": "hr-docs", "messages": [
        {"role": "user", "content": "연차는?", "timestamp": datetime.now(UTC).isoformat(), "error": True}]}
    assert (await client.post("/v1/conversations", json=posted)).status == 202
    before = stored_state(config)
    loop = asyncio.get_running_loop()

    async def send(endpoint: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        resp = await client.post(endpoint, data=body, headers=headers)
        return resp.status, await resp.json()

    @settings(max_examples=200, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(request=hostile_requests())
    def refused(request: tuple[str, bytes, dict[str, str]]) -> None:
        status, answer = asyncio.run_coroutine_threadsafe(send(*request), loop).result(timeout=120)
        assert 400 <= status < 500, (status, answer)
        assert set(answer) >= {"error", "message"}

    await asyncio.to_thread(refused)
    assert stored_state(config) == before
