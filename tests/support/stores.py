"""The two stores of the derived state, for tests that run on both (SQLite and PostgreSQL).

``store_config`` is parametrised: a test that takes it (or a module whose ``config``
fixture returns it) runs once on SQLite and once on a fresh PostgreSQL database of
the session's server (``tests.support.postgres``). ``rows`` reads either store;
``write`` changes it (a test planting a row the ingestor would have made).
"""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from shared.settings import Settings

STORES = ("sqlite", "postgres")
# Every table the derived state shares between nodes, and an order to compare its rows in
# (alerts get each store's own ids, and are compared apart where they matter).
SHARED_TABLES = {
    "chat_sessions": "session_id",
    "chat_statistics": "collection_name, date, hour",
    "chat_statistics_overall": "date, hour",
    "chat_statistics_daily": "scope, date",
    "chat_statistics_queries": "collection_name, date, hour, query_key",
    "chat_statistics_sessions": "session_id, collection_name, date, hour",
    "chat_statistics_reach": "scope, date, prev_date",
    "retrieval_statistics": "date, collection_name, hour",
    "retrieval_statistics_daily": "date, collection_name",
    "feedback_statistics": "date, collection_name, hour",
    "faq_questions": "date, collection_name, question_key",
    "faq_sessions": "date, session_id",
    "answer_statistics": "date, collection_name, llm_model, reasoning_level",
    "error_statistics": "date, collection_name, error_type",
    "alert_minutes": "scope, minute",
}


def on_postgres(config: Settings, url: str, node: str = "node-a") -> Settings:
    """``config`` with its derived state in the PostgreSQL database at ``url``."""
    return dataclasses.replace(config, database_url=url, node_id=node)


def node_config(root: Path, url: str, node: str, **overrides: Any) -> Settings:
    """An ingestor ``node`` of the PostgreSQL store at ``url``, with a data directory of its own under ``root``.

    Every node hashes user ids with the ``config`` fixture's key, as nodes sharing a store must.
    """
    from tests.conftest import TEST_SECRET

    settings = Settings.for_data_dir(
        root / node, user_hash_secret=TEST_SECRET, ingest_socket="", ingest_port=0, api_port=0, **overrides
    )
    return on_postgres(settings, url, node)


@pytest.fixture(params=STORES)
def store_config(request: pytest.FixtureRequest, config: Settings) -> Settings:
    """``config`` on SQLite, then on PostgreSQL."""
    if request.param == "sqlite":
        return config
    return on_postgres(config, request.getfixturevalue("postgres_url"))


def rows(config: Settings, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The rows of a read-only query on the store ``config`` names ([] while it has no such table)."""
    if config.database_url:
        import psycopg

        from shared.postgres.connection import PostgresConnection

        try:
            conn = PostgresConnection(config.database_url, read_only=True)
        except psycopg.OperationalError:
            return []
        with contextlib.closing(conn):
            try:
                return [tuple(r) for r in conn.execute(sql, params).fetchall()]
            except psycopg.errors.UndefinedTable:
                return []
    if not config.db_path.exists():
        return []
    with contextlib.closing(sqlite3.connect(f"file:{config.db_path}?mode=ro", uri=True)) as lite:
        try:
            return list(lite.execute(sql, params).fetchall())
        except sqlite3.OperationalError:
            return []


def write(config: Settings, sql: str, params: tuple[Any, ...] = ()) -> None:
    """Run one writing statement (SQLite's dialect) on the store ``config`` names, committed."""
    if config.database_url:
        from shared.postgres.connection import PostgresConnection

        with contextlib.closing(PostgresConnection(config.database_url)) as conn, conn:
            conn.execute("BEGIN")
            conn.execute(sql, params)
        return
    with contextlib.closing(sqlite3.connect(config.db_path)) as lite, lite:
        lite.execute(sql, params)
