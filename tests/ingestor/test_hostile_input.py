"""Hostile requests to the ingest API: out-of-range numbers and dates, odd headers, bombs, deep JSON.

Each answers in the one JSON error shape with a 4xx, quickly, and stores nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import io
import json
import sqlite3
import time
import tracemalloc
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from ingestor.app import create_app
from shared.privacy import bearer_token
from shared.settings import Settings
from shared.wire import MAX_MEASURE, MAX_METADATA_DEPTH, MAX_SAFE_INTEGER
from tests.conftest import AiohttpClient
from tests.ingestor.conversations.test_conversations import records as conversation_records
from tests.ingestor.test_views import stored
from tests.support.derived import derived_state, until
from tests.support.events import make_event
from tests.support.strategies import EXTREME_DATES, INTEGER_BOUNDS, nested, set_path

NDJSON = {"Content-Type": "application/x-ndjson"}


def assistant(**overrides: Any) -> dict[str, Any]:
    """An assistant event with every nested object filled in."""
    return make_event(message_type="assistant", **overrides)


async def errors_of(resp: Any, status: int = 422) -> list[tuple[int, str]]:
    """The (index, path) pairs of a 422 answer."""
    assert resp.status == status, await resp.text()
    body = await resp.json()
    assert body["error"] == "validation_failed"
    return [(e["index"], e["path"]) for e in body["errors"]]


@pytest.mark.parametrize("path", sorted(INTEGER_BOUNDS))
async def test_integers_beyond_storage_are_422_naming_their_path(
    client: TestClient[Any, Any], config: Settings, path: str
) -> None:
    """2^64, 2^63 and one over the bound are refused with their path; the bound itself is stored."""
    for value in (2**64, 2**63, INTEGER_BOUNDS[path] + 1, -1):
        resp = await client.post("/v1/logs", json=[assistant(), set_path(assistant(), path, value)])
        assert await errors_of(resp) == [(1, path)]
    assert stored(config) == []
    resp = await client.post("/v1/logs", json=set_path(assistant(), path, INTEGER_BOUNDS[path]))
    assert resp.status == 202


async def test_largest_accepted_numbers_reach_sqlite(config: Settings) -> None:
    """Events at every bound are folded into sessions and statistics without an error."""
    events = [
        assistant(session_id="s-max", performance={
            "response_time_ms": MAX_MEASURE, "token_count": MAX_MEASURE, "retrieval_time_ms": MAX_MEASURE,
        }, llm_params={"max_tokens": MAX_SAFE_INTEGER, "temperature": 1e308},
            metadata={"big": MAX_SAFE_INTEGER, "small": -MAX_SAFE_INTEGER, "tiny": 5e-324})
        for _ in range(50)
    ]
    async with derived_state(config) as derived:
        await derived.post(events)
        await until(lambda: derived.state.applier.applied_lines == 50)
    with sqlite3.connect(config.db_path) as conn:
        tokens, response_sum = conn.execute(
            "SELECT sum(total_tokens), sum(response_time_sum_ms) FROM chat_statistics"
        ).fetchone()
    assert tokens == response_sum == 50 * MAX_MEASURE


async def test_floats_out_of_range_are_422(client: TestClient[Any, Any], config: Settings) -> None:
    """1e400 is no float a reader can hold: refused wherever it is, with its path."""
    cases = {
        "$.llm_params.temperature": '"llm_params": {"temperature": 1e400}',
        "$.retrieval_info.top_scores[1]": '"retrieval_info": {"top_scores": [0.5, -1e400]}',
        "$.retrieved_docs[0].score": '"retrieved_docs": [{"score": 1e400}]',
        "$.metadata[...]": '"metadata": {"x": 1e400}',
    }
    for path, fragment in cases.items():
        body = json.dumps(make_event()).rstrip("}") + ", " + fragment + "}"
        assert await errors_of(await client.post("/v1/logs", data=body)) == [(0, path)]
    assert stored(config) == []


async def test_metadata_depth_and_integers_are_bounded(client: TestClient[Any, Any], config: Settings) -> None:
    """metadata may nest MAX_METADATA_DEPTH levels; deeper, or an integer past 2^53, is a 422 naming it."""

    def metadata(levels: int) -> dict[str, Any]:
        value: Any = 1
        for level in range(levels - 1):
            value = [value] if level % 2 else {"k": value}
        return {"top": value}

    resp = await client.post("/v1/logs", json=make_event(metadata=metadata(MAX_METADATA_DEPTH)))
    assert resp.status == 202
    resp = await client.post("/v1/logs", json=make_event(metadata=metadata(MAX_METADATA_DEPTH + 1)))
    ((_, path),) = await errors_of(resp)
    assert path.startswith("$.metadata")
    assert "nests more than" in (await resp.json())["errors"][0]["message"]
    for value in (MAX_SAFE_INTEGER + 1, -MAX_SAFE_INTEGER - 1, "1" + "0" * 5000):
        body = json.dumps(make_event()).rstrip("}") + f', "metadata": {{"a": [{value}]}}}}'
        assert await errors_of(await client.post("/v1/logs", data=body)) == [(0, "$.metadata[...][0]")]
    assert len(stored(config)) == 1


async def test_extreme_created_at_is_422(client: TestClient[Any, Any], config: Settings) -> None:
    """Dates whose UTC does not exist (or is absurd) name $.created_at, in every body form."""
    for date in EXTREME_DATES:
        event = make_event(created_at=None)
        event["created_at"] = date
        assert await errors_of(await client.post("/v1/logs", json=event)) == [(0, "$.created_at")]
        resp = await client.post("/v1/logs", json=[make_event(), event])
        assert await errors_of(resp) == [(1, "$.created_at")]
        broken = make_event(message_type="bot")
        resp = await client.post("/v1/logs", data=f"{json.dumps(broken)}\n{json.dumps(event)}\n", headers=NDJSON)
        assert await errors_of(resp) == [(0, "$.message_type"), (1, "$.created_at")]
    assert stored(config) == []


def conversation(*timestamps: str | None, **overrides: Any) -> dict[str, Any]:
    """A posted conversation with one message per timestamp."""
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"message {i}"}
                | ({"timestamp": t} if t else {}) for i, t in enumerate(timestamps)]
    return {"conversation_id": "c-1", "collection_name": "hr-docs", "messages": messages} | overrides


async def test_conversation_timestamps_have_the_bounds_of_logs(
    client: TestClient[Any, Any], config: Settings
) -> None:
    """Message timestamps over a day ahead, older than the retention or beyond UTC are a 422 naming each."""
    now = datetime.now(UTC)
    ok = now.isoformat()
    ahead = (now + timedelta(days=2)).isoformat()
    old = (now - timedelta(days=config.conversation_retention_days + 2)).isoformat()
    for bad in (*EXTREME_DATES, ahead, old):
        resp = await client.post("/v1/conversations", json=conversation(ok, bad, None, bad))
        assert await errors_of(resp) == [(0, "$.messages[1].timestamp"), (0, "$.messages[3].timestamp")]
    assert conversation_records(config) == []
    resp = await client.post("/v1/conversations", json=conversation(ok, (now + timedelta(hours=23)).isoformat()))
    assert resp.status == 202
    (record,) = conversation_records(config)
    assert record.last_message_at.tzinfo is not None and record.last_message_at.utcoffset() == timedelta(0)


async def raw_post(client: TestClient[Any, Any], head: bytes, body: bytes) -> tuple[int, dict[str, Any]]:
    """POST /v1/logs over a plain socket, with header bytes no HTTP client would send."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(
        b"POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + b"Content-Length: %d\r\n" % len(body) + head + b"Connection: close\r\n\r\n" + body
    )
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2])


NON_UTF8_AUTHORIZATIONS = (
    b"Authorization: Bearer \xff\xfe\r\n",
    b"Authorization: Bearer s3cret-token\xff\r\n",
    b"Authorization: \xc3\x28 s3cret-token\r\n",
)


async def test_non_utf8_authorization_is_401(aiohttp_client: AiohttpClient, config: Settings) -> None:
    """Header bytes that are not UTF-8 are a wrong token: 401 unauthorized, not a crash."""
    body = json.dumps(make_event()).encode()
    guarded = await aiohttp_client(create_app(dataclasses.replace(config, ingest_token="s3cret-token")))
    for head in NON_UTF8_AUTHORIZATIONS:
        status, answer = await raw_post(guarded, head, body)
        assert (status, answer["error"]) == (401, "unauthorized")


def test_bearer_token_of_undecodable_bytes_is_none() -> None:
    """aiohttp hands header bytes that are not UTF-8 over as surrogates: no token can match them."""
    assert bearer_token("Bearer s3cret-token") == "s3cret-token"
    assert bearer_token("bearer  s3cret-token ") == "s3cret-token"
    assert bearer_token("Bearer \udcff\udcfe") is None
    assert bearer_token("Bearer s3cret-token\udcff") is None


async def test_non_utf8_authorization_is_ignored_without_a_token(client: TestClient[Any, Any]) -> None:
    """Without CHATLOG_INGEST_TOKEN the Authorization header is not looked at, whatever its bytes."""
    body = json.dumps(make_event()).encode()
    for head in NON_UTF8_AUTHORIZATIONS:
        status, answer = await raw_post(client, head, body)
        assert (status, answer) == (202, {"accepted": 1})


BAD_ENCODINGS = {
    "deflate": b'{"not": "deflate"}',
    "gzip": b'{"not": "gzip"}',
    "br": b'{"session_id": "x"}',
    "zstd": b'{"session_id": "x"}',
    "x-unknown": b'{"session_id": "x"}',
    "gzip, deflate": gzip.compress(zlib.compress(b"{}")),
}


@pytest.mark.parametrize("coding", sorted(BAD_ENCODINGS))
async def test_undecodable_content_encoding_is_a_fast_400(
    client: TestClient[Any, Any], config: Settings, coding: str
) -> None:
    """Corrupt or unsupported codings answer 400 invalid_body at once; the connection still serves."""
    headers = {"Content-Type": "application/json", "Content-Encoding": coding}
    started = time.monotonic()
    resp = await client.post("/v1/logs", data=BAD_ENCODINGS[coding], headers=headers)
    assert time.monotonic() - started < 1.0
    assert resp.status == 400
    assert (await resp.json())["error"] == "invalid_body"
    truncated = gzip.compress(json.dumps(make_event()).encode())[:-9]
    resp = await client.post("/v1/logs", data=truncated, headers={"Content-Encoding": "gzip"})
    assert (resp.status, (await resp.json())["error"]) == (400, "invalid_body")
    assert (await client.post("/v1/logs", json=make_event())).status == 202
    assert len(stored(config)) == 1


async def test_compressed_bodies_are_accepted(client: TestClient[Any, Any], config: Settings) -> None:
    """gzip (one or several members), zlib deflate and raw deflate bodies are stored."""

    def raw_deflate(data: bytes) -> bytes:
        packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        return packer.compress(data) + packer.flush()

    codings = {
        "gzip": gzip.compress,
        "x-gzip": lambda data: gzip.compress(data[:10]) + gzip.compress(data[10:]),
        "deflate": zlib.compress,
        "Deflate": raw_deflate,
        "identity": lambda data: data,
    }
    for coding, encode in codings.items():
        body = encode(json.dumps([make_event(), make_event()]).encode())
        resp = await client.post("/v1/logs", data=body, headers={"Content-Encoding": coding})
        assert (resp.status, await resp.json()) == (202, {"accepted": 2})
    assert len(stored(config)) == 10


async def test_decompression_bomb_is_413_within_the_limit(aiohttp_client: AiohttpClient, config: Settings) -> None:
    """A small body inflating to 64 MiB is refused 413 without holding more than about the limit."""
    limit = 1 << 20
    client = await aiohttp_client(create_app(dataclasses.replace(config, max_body_bytes=limit)))
    packer = zlib.compressobj(9)
    bomb = packer.compress(b"[") + b"".join(packer.compress(bytes(1 << 20)) for _ in range(64)) + packer.flush()
    assert len(bomb) < limit
    tracemalloc.start()
    try:
        resp = await client.post("/v1/logs", data=bomb, headers={"Content-Encoding": "deflate"})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert resp.status == 413
    assert (await resp.json())["error"] == "too_large"
    assert peak < 4 * limit
    assert stored(config) == []


@pytest.mark.parametrize("endpoint", ["/v1/logs", "/v1/conversations"])
async def test_deeply_nested_json_is_4xx(client: TestClient[Any, Any], config: Settings, endpoint: str) -> None:
    """JSON nested 1,000 to 100,000 deep (alone, in an array, in NDJSON, in metadata) is a 400 or 422."""
    event = json.dumps(make_event() if endpoint == "/v1/logs" else conversation(None))
    for levels in (1_000, 5_000, 100_000):
        for kind in ("array", "object"):
            deep = nested(kind=kind, levels=levels)
            in_metadata = event.rstrip("}") + f', "metadata": {{"x": {deep}}}}}'
            bodies = [deep, f"[{deep}]", f"[{event}, {in_metadata}]", in_metadata]
            for body in bodies:
                for headers in ({"Content-Type": "application/json"}, NDJSON):
                    resp = await client.post(endpoint, data=body, headers=headers)
                    assert resp.status in (400, 422), (levels, kind, body[:40], await resp.text())
                    assert (await resp.json())["error"] in ("invalid_json", "validation_failed", "bad_request")
            resp = await client.post(endpoint, data=f"{event}\n{in_metadata}\n", headers=NDJSON)
            assert resp.status in (400, 422)
    assert stored(config) == [] and conversation_records(config) == []


async def test_partial_json_after_a_schema_error_is_400(client: TestClient[Any, Any]) -> None:
    """A body that breaks the schema and is not JSON further on is 400 invalid_json, not a crash."""
    for body in (b'[{"session_id": 1}, {oops', b'[1] x', b'{"session_id": 1} {oops'):
        resp = await client.post("/v1/logs", data=body, headers={"Content-Type": "application/json"})
        assert (resp.status, (await resp.json())["error"]) == (400, "invalid_json")


async def test_summary_is_capped(client: TestClient[Any, Any], config: Settings) -> None:
    """A posted conversation of megabyte words has a summary of a few hundred characters."""
    giant = " ".join(f"{'가나다' * 100_000}{i}" for i in range(5))
    body = conversation(None, None, None, messages=[
        {"role": "user", "content": giant}, {"role": "assistant", "content": "ok"},
    ])
    data = io.BytesIO(json.dumps(body, ensure_ascii=False).encode())
    resp = await client.post("/v1/conversations", data=data, headers={"Content-Type": "application/json"})
    assert resp.status == 202
    (record,) = conversation_records(config)
    assert 0 < len(record.metadata.summary) <= 300
    with sqlite3.connect(config.db_path) as conn:
        (summary,) = conn.execute("SELECT summary FROM conversations").fetchone()
    assert summary == record.metadata.summary


async def test_summary_of_assembled_conversation_is_capped(config: Settings) -> None:
    """A conversation assembled from events of long unspaced words gets a short summary too."""
    start = datetime.now(UTC) - timedelta(hours=2)
    events = [
        make_event(session_id="long", created_at=start + timedelta(seconds=i),
                   message_content=" ".join(f"{'word' * 20_000}{i}{j}" for j in range(6)))
        for i in range(3)
    ]
    async with derived_state(config) as derived:
        await derived.post(events)
        assert await derived.state.conversations.sweep() == 1
    (record,) = conversation_records(config)
    assert 0 < len(record.metadata.summary) <= 300
