"""The real daemon with hostile events: over HTTP, in the files, across SIGKILL and restart."""

from __future__ import annotations

import asyncio
import io
import json
import random
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from shared.layout import StorageLayout
from shared.settings import Settings
from tests.conftest import TEST_SECRET
from tests.ingestor.derived.test_hostile_lines import metric
from tests.ingestor.derived.test_process import derived_child, health
from tests.support.daemon import IngestorProcess
from tests.support.derived import until
from tests.support.events import make_event
from tests.support.hostile import append_raw, counted, every_collection, quarantined, record_line

pytestmark = pytest.mark.slow


async def _post(url: str, events: list[dict[str, Any]]) -> int:
    # A stream, not bytes: aiohttp warns about large bodies given whole.
    body = io.BytesIO(json.dumps(events).encode())
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession() as session, session.post(url + "/v1/logs", data=body, headers=headers) as resp:
        return resp.status


async def _metrics(url: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(url + "/metrics") as resp:
        return await resp.text()


def _settings(daemon: IngestorProcess) -> Settings:
    return Settings.for_data_dir(daemon.data_dir, user_hash_secret=TEST_SECRET)


async def test_hostile_events_over_http_and_in_the_files_keep_every_collection_counted(
    daemon: IngestorProcess,
) -> None:
    """A 1.5 MB event is applied, bad lines are quarantined once (also across SIGKILL), later events count."""
    daemon.start()
    config = _settings(daemon)
    db = config.db_path
    rng = random.Random(20)
    before = every_collection(rng)
    assert await _post(daemon.url, before) == 202
    long = make_event(rng, collection_name="legal-kb", message_content="법" * 500_000)
    assert await _post(daemon.url, [long]) == 202
    # Accepted while ingest has no bound on it (then quarantined by the derived state), or refused with 422.
    huge = make_event(rng, message_type="assistant", performance={"response_time_ms": 2**64})
    huge_status = await _post(daemon.url, [huge])
    assert huge_status in (202, 422)
    day = StorageLayout.from_settings(config).day_of(datetime.now(UTC))
    append_raw(config, day, b'{"log_id": "written by something else", "sess\n')
    after = every_collection(rng)
    assert await _post(daemon.url, after) == 202
    good = [*before, long, *after]
    bad = 1 + (huge_status == 202)
    await until(lambda: counted(db)["sessions"] == len(good) and len(quarantined(db)) == bad)
    assert counted(db)["statistics"] == dict(Counter(e["collection_name"] for e in good))
    body = await health(daemon.url)
    assert body["derived"]["quarantined"] == bad
    assert body["derived"]["stalled"] is False
    assert metric(await _metrics(daemon.url), "chatlog_ingest_derived_quarantined_lines_total") == bad

    child = derived_child(daemon)
    await asyncio.to_thread(daemon.kill)
    child.kill()
    daemon.start()
    last = every_collection(rng, 1)
    assert await _post(daemon.url, last) == 202
    await until(lambda: counted(db)["sessions"] == len(good) + len(last))
    assert counted(db)["lines"] == len(good) + len(last) + bad
    assert len(quarantined(db)) == bad
    assert (await health(daemon.url))["derived"]["quarantined"] == bad


async def test_a_restart_behind_a_long_line_and_a_large_backlog_is_not_refused_forever(
    daemon: IngestorProcess,
) -> None:
    """A long line ahead of more than the lag bound: after a restart ingest answers 202 again, and all counts."""
    config = _settings(daemon)
    StorageLayout.from_settings(config).ensure_dirs()
    rng = random.Random(21)
    day, long = record_line(config, rng, message_content="법" * 500_000)
    backlog = [record_line(config, rng, message_content="answer " * 15_000)[1] for _ in range(700)]
    assert sum(len(line) for line in backlog) > 64 << 20  # more than DERIVED_LAG_LIMIT_BYTES behind it
    append_raw(config, day, b"\n".join([long, *backlog]) + b"\n")
    daemon.start()
    # Until the derived process first reports, nothing holds ingest back: wait for that report.
    deadline = time.monotonic() + 120
    while not (await health(daemon.url))["derived"]["running"]:
        assert time.monotonic() < deadline, "the derived state never caught up"
        await asyncio.sleep(0.2)
    deadline = time.monotonic() + 30
    while (status := await _post(daemon.url, every_collection(rng, 1))) != 202:
        assert status == 503 and time.monotonic() < deadline, "ingest refused for good"
        await asyncio.sleep(0.5)
    total = 1 + len(backlog) + 3
    await until(lambda: counted(config.db_path)["sessions"] == total, seconds=120)
    body = await health(daemon.url)
    assert body["derived"]["lag_bytes"] == 0 and body["derived"]["stalled"] is False
