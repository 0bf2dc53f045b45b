"""The lifecycle inside a running ingestor: scheduled jobs, late events, /metrics."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from ingestor.app import JOB_FACTORIES
from ingestor.lifecycle.jobs import lifecycle_jobs
from ingestor.lifecycle.verification import verify_storage
from ingestor.scheduler import ScheduledJob, scheduled_jobs
from shared.layout import StorageLayout, Stream
from shared.settings import Settings
from tests.support.drivers.storage import read_ids
from tests.support.events import make_event


def _jobs(client: TestClient[Any, Any]) -> dict[str, ScheduledJob]:
    return {job.name: job for job in lifecycle_jobs(client.server.app)}


async def test_lifecycle_jobs_are_scheduled(client: TestClient[Any, Any]) -> None:
    """The ingestor schedules compression, retention, backup, checkpoint and verification."""
    names = {job.name for job in scheduled_jobs(client.server.app, JOB_FACTORIES)}
    assert {
        "lifecycle-compress", "lifecycle-retention", "sqlite-backup", "sqlite-checkpoint", "storage-verify",
    } <= names


async def test_late_event_for_a_compressed_day_lands_and_is_read(
    client: TestClient[Any, Any], config: Settings
) -> None:
    """After the compression job, a late event for that day is appended as a frame and read back."""
    rng = random.Random(21)
    # Noon, so that the late event an hour later is still on the same day whatever the time now.
    when = (datetime.now(UTC) - timedelta(days=10)).replace(hour=12, minute=0, second=0, microsecond=0)
    first = [make_event(rng, created_at=when + timedelta(seconds=i)) for i in range(20)]
    assert (await client.post("/v1/logs", json=first)).status == 202
    jobs = _jobs(client)
    account = await jobs["lifecycle-compress"].run()
    assert account.startswith("compressed 1 files")
    layout = StorageLayout.from_settings(config)
    day = layout.day_of(when)
    assert layout.day_files(Stream.LOGS, day).plain is None
    late = make_event(rng, created_at=when + timedelta(hours=1))
    assert (await client.post("/v1/logs", json=late)).status == 202
    files = layout.day_files(Stream.LOGS, day)
    assert files.plain is None and files.zst is not None
    assert read_ids(layout) == [e["log_id"] for e in first] + [late["log_id"]]
    (check,) = verify_storage(layout, config).files
    assert check.frames == 2 and not check.damaged
    # Today's file is never compressed.
    assert (await client.post("/v1/logs", json=make_event(rng))).status == 202
    assert (await jobs["lifecycle-compress"].run()).startswith("compressed 0 files")


async def test_jobs_report_in_metrics(client: TestClient[Any, Any], config: Settings) -> None:
    """Each job returns its account and leaves its figures in /metrics."""
    rng = random.Random(22)
    when = datetime.now(UTC) - timedelta(days=9)
    assert (await client.post("/v1/logs", json=[make_event(rng, created_at=when) for _ in range(5)])).status == 202
    jobs = _jobs(client)
    assert "compressed 1 files" in await jobs["lifecycle-compress"].run()
    assert "deleted 0 files" in await jobs["lifecycle-retention"].run()
    assert "backed up the database" in await jobs["sqlite-backup"].run()
    assert "skipped" in await jobs["sqlite-backup"].run()
    assert "checkpoint" in await jobs["sqlite-checkpoint"].run()
    assert "checked 1 day files: 5 lines, 0 torn" in await jobs["storage-verify"].run()
    text = await (await client.get("/metrics")).text()
    assert 'chatlog_lifecycle_files_total{action="compress"} 1.0' in text
    assert 'chatlog_lifecycle_files_total{action="backup"} 1.0' in text
    assert 'chatlog_storage_lines{stream="data"} 5.0' in text
    assert 'chatlog_storage_torn_lines{stream="data"} 0.0' in text
    assert "chatlog_storage_database_ok 1.0" in text
    assert "chatlog_sqlite_wal_bytes" in text
    assert "chatlog_storage_damaged_files 0.0" in text
