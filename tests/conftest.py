"""Fixtures: settings under tmp_path and clients of real applications on real sockets."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from ingestor.app import create_app as create_ingestor
from shared.settings import Settings

if TYPE_CHECKING:
    from tests.support.daemon import IngestorProcess

# Fixtures shared across packages live in tests/support; pytest finds them through this list.
pytest_plugins = ["tests.support.full_disk", "tests.support.postgres", "tests.support.stores"]

TEST_SECRET = "test-user-hash-secret-0123456789"
# Daemons the tests start (they inherit this environment) leave the OTLP port alone unless a
# test gives them one: several suites run on one machine at once.
os.environ.setdefault("CHATLOG_OTLP_PORT", "0")
AiohttpClient = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short temporary folder: Unix socket paths must stay under 108 bytes."""
    path = Path(tempfile.mkdtemp(prefix="cl", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def config(tmp_path: Path, short_dir: Path) -> Settings:
    """Settings rooted in a fresh data directory, with a fixed user-hash key."""
    return Settings.for_data_dir(
        tmp_path / "data",
        ingest_socket=str(short_dir / "ingest.sock"),
        user_hash_secret=TEST_SECRET,
        ingest_port=0,
        api_port=0,
    )


@pytest.fixture
def daemon(tmp_path: Path, short_dir: Path) -> Iterator[IngestorProcess]:
    """A real ingestor process on a fresh data directory (killed at teardown, with its child)."""
    from tests.support.daemon import IngestorProcess

    proc = IngestorProcess(tmp_path / "data", short_dir / "ingest.sock")
    yield proc
    proc.stop_quietly()


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, config: Settings) -> TestClient[Any, Any]:
    """A client of a real ingestor over TCP."""
    return await aiohttp_client(create_ingestor(config))


@pytest.fixture
async def api_client(aiohttp_client: AiohttpClient, config: Settings) -> TestClient[Any, Any]:
    """A client of a real analytics API over TCP, reading the same data directory as ``client``."""
    from analytics_api.app import create_app as create_analytics

    return await aiohttp_client(create_analytics(config))
