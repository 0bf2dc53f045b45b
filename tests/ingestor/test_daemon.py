"""The daemon as a process: SIGKILL under load loses nothing acknowledged, SIGTERM flushes,
and the Unix socket serves the same API."""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import sqlite3
from pathlib import Path

import aiohttp
import pytest

from shared.layout import StorageLayout, Stream
from shared.reader import ReadCounts, iter_records
from shared.settings import Settings
from shared.wire import LogRecord
from tests.support.daemon import IngestorProcess
from tests.support.events import make_event

pytestmark = pytest.mark.slow


def read_back(data_dir: Path) -> tuple[list[LogRecord], ReadCounts]:
    """Every record of every log day file, and what the reader met on the way."""
    layout = StorageLayout.from_settings(Settings.for_data_dir(data_dir))
    counts = ReadCounts()
    paths = [f.readable for f in layout.days(Stream.LOGS).values() if f.readable]
    return list(iter_records(paths, LogRecord, counts)), counts


async def _load(url: str, acked: set[str], stop: asyncio.Event, seed: int,
                connector: aiohttp.BaseConnector | None = None) -> None:
    """Post batches of 50 until told to stop; remember every log_id that got a 202."""
    rng = random.Random(seed)
    async with aiohttp.ClientSession(connector=connector) as session:
        while not stop.is_set():
            batch = [make_event(rng, message_type=rng.choice(("user", "assistant"))) for _ in range(50)]
            try:
                async with session.post(url + "/v1/logs", json=batch) as resp:
                    if resp.status == 202:
                        acked.update(e["log_id"] for e in batch)
            except (aiohttp.ClientError, OSError):
                await asyncio.sleep(0.01)


async def test_sigkill_under_load_loses_nothing_acknowledged(daemon: IngestorProcess) -> None:
    """Every log_id that got a 202 before a SIGKILL is in the files; no reader sees a broken line."""
    daemon.start()
    acked: set[str] = set()
    stop = asyncio.Event()
    loaders = [asyncio.create_task(_load(daemon.url, acked, stop, seed)) for seed in range(8)]
    await asyncio.sleep(1.5)
    await asyncio.to_thread(daemon.kill)
    stop.set()
    await asyncio.gather(*loaders)
    assert len(acked) > 500, "the load did not get going"
    records, counts = read_back(daemon.data_dir)
    stored_ids = [r.log_id for r in records]
    assert acked <= set(stored_ids)
    assert len(stored_ids) == len(set(stored_ids)), "an event was stored twice"
    assert counts.corrupt == 0
    # Restart: the torn tail (if any) is cut, and SQLite catches up with every stored line.
    daemon.start()
    code, err = await asyncio.to_thread(daemon.terminate)
    assert code == 0, err
    records_after, counts_after = read_back(daemon.data_dir)
    assert counts_after.torn == 0 and counts_after.corrupt == 0
    assert {r.log_id for r in records_after} == set(stored_ids)
    for path in (daemon.data_dir / "data").iterdir():
        assert path.read_bytes().endswith(b"\n")
    with contextlib.closing(sqlite3.connect(daemon.data_dir / "chatlog.sqlite3")) as conn:
        (applied,) = conn.execute("SELECT coalesce(sum(lines), 0) FROM ingest_offsets").fetchone()
        (messages,) = conn.execute("SELECT coalesce(sum(message_count), 0) FROM chat_sessions").fetchone()
    assert applied == messages == len(records_after)


async def test_sigterm_flushes_and_exits_zero(daemon: IngestorProcess) -> None:
    """SIGTERM during load: exit 0, and every acknowledged event is in the files."""
    daemon.start()
    acked: set[str] = set()
    stop = asyncio.Event()
    loaders = [asyncio.create_task(_load(daemon.url, acked, stop, seed)) for seed in range(4)]
    await asyncio.sleep(1.0)
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(daemon.proc.wait, 30)
    stop.set()
    await asyncio.gather(*loaders)
    assert code == 0
    records, counts = read_back(daemon.data_dir)
    assert acked and acked <= {r.log_id for r in records}
    assert counts.torn == 0 and counts.corrupt == 0
    assert not daemon.socket_path.exists(), "the Unix socket file was left behind"


async def test_unix_socket_serves_ingest_without_token(daemon: IngestorProcess) -> None:
    """The Unix socket (mode 0660) takes events; TCP still demands the token when one is set."""
    daemon.env["CHATLOG_INGEST_TOKEN"] = "tcp-only-token"
    daemon.start()
    assert daemon.socket_path.stat().st_mode & 0o777 == 0o660
    event = make_event(random.Random(1))
    async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(daemon.socket_path))) as s:
        async with s.post("http://localhost/v1/logs", json=event) as resp:
            assert resp.status == 202
            assert await resp.json() == {"accepted": 1}
        async with s.get("http://localhost/healthz") as resp:
            assert resp.status == 200
    async with aiohttp.ClientSession() as s, s.post(daemon.url + "/v1/logs", json=event) as resp:
        assert resp.status == 401
    code, _ = await asyncio.to_thread(daemon.terminate)
    assert code == 0
    records, _ = read_back(daemon.data_dir)
    assert [r.log_id for r in records] == [event["log_id"]]


def test_invalid_setting_stops_startup_naming_the_variable(tmp_path: Path, short_dir: Path) -> None:
    """An invalid CHATLOG_* value stops start-up with a message naming the variable."""
    proc = IngestorProcess(tmp_path / "data", short_dir / "s.sock", CHATLOG_INGEST_PORT="eighty")
    with pytest.raises(RuntimeError, match="CHATLOG_INGEST_PORT"):
        proc.start(timeout=10)
    proc.stop_quietly()
