"""The same events give the same derived state in SQLite and in PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from ingestor.app import create_app as create_ingestor
from shared.settings import Settings
from tests.conftest import AiohttpClient
from tests.support.statistics_oracle import applied, generate, post_all
from tests.support.stores import SHARED_TABLES, on_postgres, rows


def normal(value: object) -> object:
    return bytes(value) if isinstance(value, memoryview) else value


async def test_every_derived_table_is_equal(
    aiohttp_client: AiohttpClient, config: Settings, postgres_url: str
) -> None:
    events = generate(3, datetime.now(UTC), count=600)
    lite = config
    pg = on_postgres(config.__class__.for_data_dir(config.data_dir.parent / "pg-data",
                                                   user_hash_secret=config.user_hash_secret,
                                                   ingest_socket="", ingest_port=0, api_port=0), postgres_url)
    for settings in (lite, pg):
        ingest = await aiohttp_client(create_ingestor(settings))
        await post_all(ingest, events)
        await applied(settings, len(events))
    for table, order in SHARED_TABLES.items():
        mine = [tuple(map(normal, r)) for r in rows(lite, f"SELECT * FROM {table} ORDER BY {order}")]
        theirs = [tuple(map(normal, r)) for r in rows(pg, f"SELECT * FROM {table} ORDER BY {order}")]
        assert mine or table in {"error_statistics", "feedback_statistics"}, table
        assert theirs == mine, table
