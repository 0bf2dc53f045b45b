"""The chat backend's client (chatlog_client) against a real ingestor on real sockets."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import logging
import random
import socket
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from aiohttp import web

from chatlog_client import AsyncChatlogClient, ChatlogClient, new_conversation_id
from ingestor.app import create_app
from shared.layout import StorageLayout, Stream
from shared.reader import iter_records
from shared.serving import Listener, start
from shared.settings import Settings
from shared.wire import LogRecord
from tests.support.events import make_event

if TYPE_CHECKING:
    from tests.support.daemon import IngestorProcess


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def ingestor(
    config: Settings, port: int, app_hook: Callable[[web.Application], None] | None = None
) -> AsyncIterator[None]:
    """A real ingestor on 127.0.0.1:port and on the config's Unix socket."""
    app = create_app(config)
    if app_hook is not None:
        app_hook(app)
    runners = await start(
        [Listener("ingestor", app, host="127.0.0.1", port=port, unix_path=config.ingest_socket_path)]
    )
    try:
        yield
    finally:
        for runner in runners:
            await runner.cleanup()


async def eventually(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    """Wait until ``condition()`` holds; fail after ``seconds``."""
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


def stored(config: Settings) -> list[LogRecord]:
    """Every record in every log day file."""
    layout = StorageLayout.from_settings(config)
    paths = [f.readable for f in layout.days(Stream.LOGS).values() if f.readable]
    return list(iter_records(paths, LogRecord))


def events(n: int, seed: int, **overrides: Any) -> list[dict[str, Any]]:
    """``n`` realistic events, alternating user and assistant messages."""
    rng = random.Random(seed)
    kinds = ("user", "assistant")
    return [make_event(rng, message_type=kinds[i % 2], **overrides) for i in range(n)]


def spooled_ids(spool: Path) -> list[str]:
    """The log_ids waiting in a spool (the file, and its .replaying file once a replay began)."""
    ids = []
    for path in (spool, spool.with_name(spool.name + ".replaying")):
        if path.exists():
            ids += [json.loads(line)["log_id"] for line in path.read_bytes().splitlines() if line.strip()]
    return ids


async def test_sync_client_over_tcp_delivers_every_event(config: Settings, tmp_path: Path) -> None:
    """The thread client posts batches over TCP with the Bearer token; every event is stored once."""
    config = dataclasses.replace(config, ingest_token="s3cret")
    port = free_port()
    batch = events(1200, seed=1)
    async with ingestor(config, port):
        client = ChatlogClient(
            f"http://127.0.0.1:{port}", token="s3cret", spool_path=tmp_path / "spool.ndjson", flush_interval=0.05
        )
        for event in batch:
            client.log(event)
        assert await asyncio.to_thread(client.flush, 20)
        await asyncio.to_thread(client.close)
    assert client.stats.sent == 1200 and client.stats.spooled == 0 and client.stats.errors == 0
    assert sorted(r.log_id for r in stored(config)) == sorted(e["log_id"] for e in batch)


async def test_async_client_over_unix_socket(config: Settings, tmp_path: Path) -> None:
    """The asyncio client posts over the Unix socket; missing log_id/created_at are filled in."""
    batch = events(300, seed=2)
    for event in batch[:10]:
        del event["log_id"], event["created_at"]
    before = datetime.now(UTC)
    async with ingestor(config, free_port()):
        assert config.ingest_socket_path is not None
        async with AsyncChatlogClient(
            unix_socket=config.ingest_socket_path, spool_path=tmp_path / "spool.ndjson", batch_size=64
        ) as client:
            for event in batch:
                client.log(event)
            assert await client.flush(10)
    assert client.stats.sent == 300 and client.stats.spooled == 0
    records = stored(config)
    given = {e["log_id"] for e in batch[10:]}
    assert len({r.log_id for r in records}) == 300 and given <= {r.log_id for r in records}
    filled_in = [r for r in records if r.log_id not in given]
    assert len(filled_in) == 10 and all(r.created_at >= before for r in filled_in)


async def test_spools_while_daemon_down_then_replays_exactly_once(config: Settings, tmp_path: Path) -> None:
    """With nothing listening, events are spooled; once the daemon is up they are replayed, each once."""
    port = free_port()
    spool = tmp_path / "spool.ndjson"
    client = ChatlogClient(f"http://127.0.0.1:{port}", spool_path=spool, batch_size=100, flush_interval=0.05)
    for event in events(250, seed=3):
        del event["log_id"], event["created_at"]
        client.log(event)
    assert not await asyncio.to_thread(client.flush, 0.5)  # spooled, not delivered
    assert client.stats.spooled == 250 and client.stats.sent == 0
    ids = spooled_ids(spool)
    logged_before = datetime.now(UTC)
    await asyncio.sleep(0.3)  # the daemon starts later: created_at must stay the logging time
    async with ingestor(config, port):
        await eventually(lambda: client.stats.replayed == 250)
        client.log(events(1, seed=4)[0])
        await asyncio.to_thread(client.close)
    assert client.stats.replayed == 250 and client.stats.sent == 1
    records = stored(config)
    assert len(records) == 251 and len({r.log_id for r in records}) == 251
    assert set(ids) <= {r.log_id for r in records}
    assert all(r.created_at <= logged_before for r in records if r.log_id in set(ids))
    assert not spool.exists() and not spool.with_name(spool.name + ".replaying").exists()


async def test_async_client_spools_while_socket_missing_then_replays(config: Settings, tmp_path: Path) -> None:
    """The asyncio client spools while the Unix socket is missing and replays once the daemon is up."""
    spool = tmp_path / "spool.ndjson"
    batch = events(120, seed=12)
    assert config.ingest_socket_path is not None
    async with AsyncChatlogClient(unix_socket=config.ingest_socket_path, spool_path=spool, batch_size=50) as client:
        for event in batch:
            client.log(event)
        assert not await client.flush(0.5)  # spooled, not delivered
        assert client.stats.spooled == 120 and client.stats.sent == 0
        async with ingestor(config, free_port()):
            await eventually(lambda: client.stats.replayed == 120)
    assert sorted(r.log_id for r in stored(config)) == sorted(e["log_id"] for e in batch)
    assert not spool.exists() and not spool.with_name(spool.name + ".replaying").exists()


async def test_new_client_replays_spool_left_behind_and_skips_torn_line(
    config: Settings, tmp_path: Path
) -> None:
    """A client started over an old spool replays it; a torn last line (a crash mid-write) is skipped."""
    spool = tmp_path / "spool.ndjson"
    port = free_port()
    first = ChatlogClient(f"http://127.0.0.1:{port}", spool_path=spool)
    batch = events(40, seed=5)
    for event in batch:
        first.log(event)
    await asyncio.to_thread(first.close)
    with spool.open("ab") as f:
        f.write(b'{"session_id": "torn-by-a-cra')
    async with ingestor(config, port):
        second = ChatlogClient(f"http://127.0.0.1:{port}", spool_path=spool)
        replaying = spool.with_name(spool.name + ".replaying")
        await eventually(lambda: not replaying.exists() and not spool.exists())
        await asyncio.to_thread(second.close)
    assert second.stats.replayed == 40 and second.stats.errors == 1
    assert sorted(r.log_id for r in stored(config)) == sorted(e["log_id"] for e in batch)


async def test_503_retry_after_is_honoured(config: Settings, tmp_path: Path) -> None:
    """An overloaded daemon's 503 is retried no sooner than its Retry-After (1 s), not spooled."""
    # A full ingest queue for ~2 s: a 10-event request waits for a slow group commit.
    config = dataclasses.replace(config, queue_max_events=10, flush_interval_ms=2000)
    port = free_port()
    overloaded: list[float] = []

    def watch(app: web.Application) -> None:
        async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
            if response.status == 503 and request.headers.get("User-Agent", "").startswith("chatlog-client"):
                assert response.headers["Retry-After"] == "1"
                overloaded.append(time.monotonic())

        app.on_response_prepare.append(on_prepare)

    async with ingestor(config, port, watch), aiohttp.ClientSession() as session:
        blocker = asyncio.create_task(session.post(f"http://127.0.0.1:{port}/v1/logs", json=events(10, seed=6)))
        await asyncio.sleep(0.2)
        client = ChatlogClient(f"http://127.0.0.1:{port}", spool_path=tmp_path / "spool.ndjson", flush_interval=0)
        for event in events(5, seed=7):
            client.log(event)
        assert await asyncio.to_thread(client.flush, 20)
        await asyncio.to_thread(client.close)
        (await blocker).release()
    assert client.stats.sent == 5 and client.stats.spooled == 0
    assert len(overloaded) == client.stats.errors >= 1
    assert all(later - earlier >= 1.0 for earlier, later in itertools.pairwise(overloaded))
    assert len(stored(config)) == 15


async def test_422_resends_valid_events_and_keeps_invalid_ones(config: Settings, tmp_path: Path) -> None:
    """A 422 drops only the events it names: the rest are resent, the bad ones go to <spool>.rejected."""
    batch = events(10, seed=8)
    batch[3]["message_type"] = "robot"
    batch[7]["performance"] = {"response_time_ms": -5}
    spool = tmp_path / "spool.ndjson"
    port = free_port()
    async with (
        ingestor(config, port),
        AsyncChatlogClient(f"http://127.0.0.1:{port}", spool_path=spool) as client,
    ):
        for event in batch:
            client.log(event)
        assert await client.flush(10)
    assert client.stats.sent == 8 and client.stats.rejected == 2
    good = [e["log_id"] for i, e in enumerate(batch) if i not in (3, 7)]
    assert sorted(r.log_id for r in stored(config)) == sorted(good)
    rejected = [json.loads(line) for line in spool.with_name(spool.name + ".rejected").read_text().splitlines()]
    assert [r["event"]["log_id"] for r in rejected] == [batch[3]["log_id"], batch[7]["log_id"]]
    assert [r["errors"][0]["path"] for r in rejected] == ["$.message_type", "$.performance.response_time_ms"]
    assert all(r["status"] == 422 for r in rejected)


async def test_413_splits_the_batch(config: Settings, tmp_path: Path) -> None:
    """A 413 halves the batch until it fits; a single event over the limit is rejected."""
    config = dataclasses.replace(config, max_body_bytes=4096)
    batch = events(20, seed=9)
    huge = events(1, seed=10, message_content="x" * 5000)[0]
    port = free_port()
    async with ingestor(config, port):
        client = ChatlogClient(f"http://127.0.0.1:{port}", spool_path=tmp_path / "spool.ndjson")
        for event in [*batch, huge]:
            client.log(event)
        assert await asyncio.to_thread(client.flush, 10)
        await asyncio.to_thread(client.close)
    assert client.stats.sent == 20 and client.stats.rejected == 1 and client.stats.spooled == 0
    assert sorted(r.log_id for r in stored(config)) == sorted(e["log_id"] for e in batch)


def test_log_never_raises_on_garbage(tmp_path: Path) -> None:
    """log() swallows what it cannot encode (counted, kept in .rejected) and coerces what it can."""
    spool = tmp_path / "spool.ndjson"
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    garbage: list[Any] = [None, "text", 42, [1, 2], {"x": float("nan")}, cyclic, {(1, 2): "tuple key"}]
    with ChatlogClient(f"http://127.0.0.1:{free_port()}", spool_path=spool) as client:
        for item in garbage:
            client.log(item)
        client.log({"metadata": {"when": datetime(2026, 1, 2, tzinfo=UTC), "id": uuid.UUID(int=7),
                                 "price": Decimal("1.5"), "thing": object(), "tags": {"a"}}})
    assert client.stats.rejected == len(garbage) and client.stats.spooled == 1
    rejected = spool.with_name(spool.name + ".rejected").read_text().splitlines()
    assert len(rejected) == len(garbage)
    (line,) = spool.read_text().splitlines()
    metadata = json.loads(line)["metadata"]
    assert metadata["when"] == "2026-01-02T00:00:00+00:00" and metadata["price"] == 1.5
    assert metadata["tags"] == ["a"] and metadata["thing"].startswith("<object object")


def test_log_never_blocks_when_the_queue_is_full(tmp_path: Path) -> None:
    """With the daemon down and a full queue, 10,000 log() calls take < 1 s and none is lost."""
    spool = tmp_path / "spool.ndjson"
    client = ChatlogClient(f"http://127.0.0.1:{free_port()}", spool_path=spool, max_queue=100)
    batch = events(10_000, seed=11)
    started = time.perf_counter()
    for event in batch:
        client.log(event)
    elapsed = time.perf_counter() - started
    client.close()
    assert elapsed < 1.0
    assert client.stats.spooled == 10_000 and client.stats.dropped == 0
    assert sorted(spooled_ids(spool)) == sorted(e["log_id"] for e in batch)


def test_clients_never_share_a_spool_file(tmp_path: Path) -> None:
    """A second live client on the same spool_path (another worker) takes the next free slot."""
    spool = tmp_path / "spool.ndjson"
    url = f"http://127.0.0.1:{free_port()}"
    with ChatlogClient(url, spool_path=spool) as first, ChatlogClient(url, spool_path=spool) as second:
        assert first.spool_path == spool and second.spool_path == tmp_path / "spool-1.ndjson"
    with ChatlogClient(url, spool_path=spool) as third:
        assert third.spool_path == spool


def test_new_conversation_id() -> None:
    """A usable given conversation id is kept; a missing, blank or over-long one gets a new UUID."""
    assert new_conversation_id("conv-42") == "conv-42"
    for given in (None, "", "   ", "x" * 129):
        generated = new_conversation_id(given)
        assert str(uuid.UUID(generated)) == generated
    assert new_conversation_id(None) != new_conversation_id(None)


def log_paced(client: ChatlogClient, batch: list[dict[str, Any]]) -> None:
    """Log ``batch`` at about 10,000 events/s, as a busy chat backend would."""
    for i, event in enumerate(batch):
        client.log(event)
        if i % 50 == 49:
            time.sleep(0.005)


def wait_until(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    """Block until ``condition()`` holds; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def stored_once(config: Settings, batch: list[dict[str, Any]]) -> None:
    """Every event of ``batch`` is in the day files exactly once, and nothing else is."""
    counts = Counter(r.log_id for r in stored(config))
    missing = {e["log_id"] for e in batch} - set(counts)
    duplicated = [log_id for log_id, n in counts.items() if n > 1]
    assert not missing and not duplicated, f"{len(missing)} missing, {len(duplicated)} stored twice"
    assert len(counts) == len(batch)


def test_sync_client_drains_the_spool_after_daemon_restarts(
    config: Settings, daemon: IngestorProcess, tmp_path: Path
) -> None:
    """Daemon down, up, SIGKILLed, up: flush() is True only once the spool is empty; each event is stored once."""
    spool = tmp_path / "spool.ndjson"
    batch = events(8000, seed=20)
    client = ChatlogClient(daemon.url, spool_path=spool, batch_size=200, flush_interval=0.05)
    log_paced(client, batch[:3000])  # nothing listens: spooled
    daemon.start()
    log_paced(client, batch[3000:6000])  # live batches and the replay of the spool
    wait_until(lambda: client.stats.sent + client.stats.replayed >= 1000)
    daemon.kill()  # most likely in the middle of the replay
    log_paced(client, batch[6000:])
    daemon.start()  # the client is backing off by now: flush() must not wait that out
    assert client.flush(60)
    assert spooled_ids(spool) == [] and client.stats.queued == 0
    assert client.close(30) == 0
    daemon.terminate()
    stored_once(config, batch)
    assert not spool.exists() and not spool.with_name(spool.name + ".replaying").exists()


async def test_async_client_drains_the_spool_after_daemon_restarts(
    config: Settings, daemon: IngestorProcess, tmp_path: Path
) -> None:
    """The asyncio client across the same restarts: flush() waits for the spool; close() leaves nothing."""
    spool = tmp_path / "spool.ndjson"
    batch = events(6000, seed=21)
    client = AsyncChatlogClient(daemon.url, spool_path=spool, batch_size=200, flush_interval=0.05)
    client.start()

    async def log_for_a_while(part: list[dict[str, Any]]) -> None:
        for i in range(0, len(part), 50):
            for event in part[i : i + 50]:
                client.log(event)
            await asyncio.sleep(0.005)

    await log_for_a_while(batch[:2000])
    await asyncio.to_thread(daemon.start)
    await log_for_a_while(batch[2000:4000])
    await eventually(lambda: client.stats.sent + client.stats.replayed >= 1000)
    await asyncio.to_thread(daemon.kill)
    await log_for_a_while(batch[4000:])
    await asyncio.to_thread(daemon.start)
    assert await client.flush(60)
    assert spooled_ids(spool) == [] and client.stats.queued == 0
    assert await client.close(30) == 0
    await asyncio.to_thread(daemon.terminate)
    stored_once(config, batch)


def test_sync_close_against_a_daemon_that_stays_down(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """flush() says False while events sit in the spool; close() returns in its timeout and says what it left."""
    spool = tmp_path / "spool.ndjson"
    batch = events(500, seed=22)
    client = ChatlogClient(f"http://127.0.0.1:{free_port()}", spool_path=spool, flush_interval=0.05)
    for event in batch:
        client.log(event)
    assert not client.flush(0.5)
    caplog.set_level(logging.WARNING, "chatlog_client")
    started = time.monotonic()
    left = client.close(2.0)
    assert time.monotonic() - started < 2.5
    assert left == 500
    assert sorted(spooled_ids(spool)) == sorted(e["log_id"] for e in batch)
    assert any("500" in r.getMessage() and str(spool) in r.getMessage() for r in caplog.records)


async def test_async_close_against_a_daemon_that_stays_down(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The asyncio client's close() returns in its timeout with the count it left in the spool."""
    spool = tmp_path / "spool.ndjson"
    batch = events(300, seed=23)
    async with AsyncChatlogClient(f"http://127.0.0.1:{free_port()}", spool_path=spool) as client:
        for event in batch:
            client.log(event)
        assert not await client.flush(0.5)
        caplog.set_level(logging.WARNING, "chatlog_client")
        started = time.monotonic()
        left = await client.close(2.0)
        assert time.monotonic() - started < 2.5
    assert left == 300
    assert sorted(spooled_ids(spool)) == sorted(e["log_id"] for e in batch)
    assert any("300" in r.getMessage() and str(spool) in r.getMessage() for r in caplog.records)
