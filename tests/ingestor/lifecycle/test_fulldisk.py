"""A really full filesystem (a 2 MiB tmpfs): 503 with Retry-After, no acknowledged loss, recovery."""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from ingestor.app import create_app
from ingestor.lifecycle.jobs import lifecycle_jobs
from ingestor.lifecycle.policy import LifecycleError
from ingestor.lifecycle.verification import verify_storage
from shared.layout import StorageLayout, Stream
from shared.reader import ReadCounts
from shared.settings import Settings
from tests.conftest import TEST_SECRET, AiohttpClient
from tests.support.drivers.storage import read_ids
from tests.support.events import make_event
from tests.support.full_disk import fill


async def _healthz(client: TestClient[Any, Any]) -> int:
    return (await client.get("/healthz")).status


@pytest.mark.slow
async def test_full_disk_answers_503_loses_nothing_and_recovers(
    aiohttp_client: AiohttpClient, small_fs: Path
) -> None:
    """Writes fail on ENOSPC: 503 + Retry-After, /healthz 503, no partial line; free space -> 200."""
    settings = Settings.for_data_dir(small_fs, ingest_socket="", user_hash_secret=TEST_SECRET, ingest_port=0)
    client = await aiohttp_client(create_app(settings))
    layout = StorageLayout.from_settings(settings)
    rng = random.Random(41)
    old = datetime.now(UTC) - timedelta(days=10)
    acked: list[str] = []

    async def post(when: datetime | None, n: int) -> Any:
        batch = [make_event(rng, message_type="assistant", created_at=when) for _ in range(n)]
        resp = await client.post("/v1/logs", json=batch)
        if resp.status == 202:
            acked.extend(e["log_id"] for e in batch)
        return resp

    assert (await post(old, 5)).status == 202
    # Late events for this day now go into the .zst as extra frames.
    compress = {j.name: j for j in lifecycle_jobs(client.server.app)}["lifecycle-compress"]
    assert "compressed 1 files" in await compress.run()
    assert (await post(None, 5)).status == 202
    assert (await post(old + timedelta(days=1), 5)).status == 202  # a plain day due for compression

    filler = small_fs / "filler"
    fill(filler)
    os.truncate(filler, filler.stat().st_size - 12 * 1024)  # room for a partial write or two
    refused = None
    for i in range(60):
        resp = await post(old if i % 2 else None, 10)
        if resp.status == 503:
            refused = resp
            break
        assert resp.status == 202
    assert refused is not None, "the filesystem never filled up"
    assert int(refused.headers["Retry-After"]) > 0
    assert (await refused.json())["error"] == "storage_unavailable"
    assert await _healthz(client) == 503
    assert (await post(None, 1)).status == 503
    # Compression does not take the last bytes either: it refuses to start.
    fill(small_fs / "filler2")
    with pytest.raises(LifecycleError, match="bytes free"):
        await compress.run()
    (small_fs / "filler2").unlink()

    # Nothing half-written: every acknowledged event is there once, nothing else, no torn line.
    counts = ReadCounts()
    assert sorted(read_ids(layout, counts=counts)) == sorted(acked)
    assert counts.torn == 0 and counts.corrupt == 0

    filler.unlink()
    for _ in range(50):
        if await _healthz(client) == 200:
            break
        await asyncio.sleep(0.1)
    assert await _healthz(client) == 200
    assert (await post(None, 10)).status == 202
    assert (await post(old, 10)).status == 202
    counts = ReadCounts()
    assert sorted(read_ids(layout, counts=counts)) == sorted(acked)
    assert counts.torn == 0
    assert not any(f.damaged for f in verify_storage(layout, settings, integrity=False).files)
    assert layout.day_files(Stream.LOGS, layout.day_of(old)).plain is None
    assert "compressed 1 files" in await compress.run()
    # The SQLite side (on the same full filesystem) catches up with every stored line.
    await client.close()
    report = verify_storage(layout, settings)
    assert report.database.problems == [] and report.database.notes == []
    conn = sqlite3.connect(settings.db_path)
    try:
        (indexed,) = conn.execute("SELECT sum(message_count) FROM chat_sessions").fetchone()
    finally:
        conn.close()
    assert indexed == len(acked)
