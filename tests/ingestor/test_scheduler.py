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
