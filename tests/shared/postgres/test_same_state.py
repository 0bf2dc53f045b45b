"""The same events give the same derived state in SQLite and in PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from ingestor.app import create_app as create_ingestor
from shared.settings import Settings
from tests.conftest import AiohttpClient
from tests.support.statistics_oracle import applied, generate, post_all
from tests.support.stores import on_postgres, rows

# Every shared table, in a stable order (alerts depend on the clock, and are left out).
TABLES = {
    "chat_sessions": "session_id",
    "chat_statistics": "collection_name, date, hour",
    "chat_statistics_overall": "date, hour",
    "chat_statistics_daily": "scope, date",
    "chat_statistics_queries": "collection_name, date, hour, query_key",
    "chat_statistics_sessions": "session_id, collection_name, date, hour",
    "chat_statistics_reach": "scope, date, prev_date",
    "retrieval_statistics": "date, collection_name, hour",
    "retrieval_statistics_daily": "date, collection_name",
    "faq_questions": "date, collection_name, question_key",
    "faq_sessions": "date, session_id",
    "answer_statistics": "date, collection_name, llm_model, reasoning_level",
    "error_statistics": "date, collection_name, error_type",
    "alert_minutes": "scope, minute",
}


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
    for table, order in TABLES.items():
        mine = [tuple(map(normal, r)) for r in rows(lite, f"SELECT * FROM {table} ORDER BY {order}")]
        theirs = [tuple(map(normal, r)) for r in rows(pg, f"SELECT * FROM {table} ORDER BY {order}")]
        assert mine, table if table not in {"error_statistics"} else None
        assert theirs == mine, table
