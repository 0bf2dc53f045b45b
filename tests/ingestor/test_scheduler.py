"""The ingestor's scheduler: quiet at start, every job of every concern scheduled."""

from __future__ import annotations

import logging

import pytest

from ingestor.app import create_app
from shared.settings import Settings
from tests.conftest import AiohttpClient


async def test_start_logs_nothing_of_apscheduler_below_warning(
    aiohttp_client: AiohttpClient, config: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """apscheduler's "Adding job tentatively" lines (six per start, at INFO) are not printed."""
    caplog.set_level(logging.DEBUG)
    client = await aiohttp_client(create_app(config))
    assert (await client.get("/healthz")).status == 200
    quiet = [r for r in caplog.records if r.name.startswith("apscheduler") and r.levelno < logging.WARNING]
    assert [r.getMessage() for r in quiet] == []


async def test_with_postgresql_no_job_touches_a_sqlite_file(
    aiohttp_client: AiohttpClient, config: Settings, postgres_url: str
) -> None:
    """SQLite's backup and checkpoint, and the finalise that recomputes a day from this node's file
    into rows every node shares, are not scheduled; the ingestor never creates the SQLite file."""
    from ingestor.app import JOB_FACTORIES
    from ingestor.scheduler import scheduled_jobs
    from tests.support.stores import on_postgres

    lite = {job.name for job in scheduled_jobs(create_app(config), JOB_FACTORIES)}
    assert {"sqlite-backup", "sqlite-checkpoint", "statistics-finalise"} <= lite
    shared = on_postgres(config, postgres_url)
    app = create_app(shared)
    names = {job.name for job in scheduled_jobs(app, JOB_FACTORIES)}
    assert names == lite - {"sqlite-backup", "sqlite-checkpoint", "statistics-finalise"}
    client = await aiohttp_client(app)
    assert (await client.get("/healthz")).status == 200
    await client.close()
    assert not shared.db_path.exists()
