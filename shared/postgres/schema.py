"""The derived state's schema in PostgreSQL, and its migrations.

The shared tables are SQLite's (``shared.db.MIGRATIONS``) in PostgreSQL's types:
INTEGER is BIGINT, REAL double precision, BLOB bytea, and text compares in the "C"
collation (byte order, as in SQLite, whatever the database's locale).
``tests/shared/postgres/test_schema.py`` fails when the two schemas' columns
differ, so a new SQLite migration needs its PostgreSQL twin here.

Each node has a schema of its own, ``"node:<id>"``, first on its connections'
search path: its line offsets and its quarantined lines are about its own day
files, so they are kept apart, under the same table names the code uses.

Migrations are versioned (``schema_migrations``) and applied under a
session-level advisory lock: the first ingestor to start applies them, the
others wait for it and then find nothing to do.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from shared.postgres.connection import PostgresConnection, node_schema
from shared.postgres.dialect import MIGRATION_LOCK_KEY

# Append-only: entry i moves the shared schema from version i to i + 1.
MIGRATIONS: tuple[str, ...] = (
    # 1: the shared tables as SQLite had them at its version 10.
    """
    CREATE TABLE meta (
        key TEXT COLLATE "C" PRIMARY KEY,
        value TEXT COLLATE "C" NOT NULL
    );
    CREATE TABLE chat_sessions (
        session_id TEXT COLLATE "C" PRIMARY KEY,
        conversation_id TEXT COLLATE "C" NOT NULL,
        collection_name TEXT COLLATE "C" NOT NULL,
        user_hash TEXT COLLATE "C",
        started_at TEXT COLLATE "C" NOT NULL,
        last_seen_at TEXT COLLATE "C" NOT NULL,
        message_count BIGINT NOT NULL DEFAULT 0,
        last_day TEXT COLLATE "C" NOT NULL
    );
    CREATE INDEX chat_sessions_by_user ON chat_sessions (user_hash);
    CREATE INDEX chat_sessions_by_day ON chat_sessions (last_day);
    CREATE TABLE conversations (
        conversation_id TEXT COLLATE "C" PRIMARY KEY,
        collection_name TEXT COLLATE "C" NOT NULL,
        user_hash TEXT COLLATE "C",
        started_at TEXT COLLATE "C" NOT NULL,
        last_message_at TEXT COLLATE "C" NOT NULL,
        closed_at TEXT COLLATE "C" NOT NULL,
        total_turns BIGINT NOT NULL,
        has_error BIGINT NOT NULL,
        retention_priority TEXT COLLATE "C" NOT NULL,
        summary TEXT COLLATE "C" NOT NULL,
        day TEXT COLLATE "C" NOT NULL,
        byte_offset BIGINT NOT NULL,
        byte_length BIGINT NOT NULL
    );
    CREATE INDEX conversations_by_time ON conversations (last_message_at DESC, conversation_id DESC);
    CREATE INDEX conversations_by_collection
        ON conversations (collection_name, last_message_at DESC, conversation_id DESC);
    CREATE INDEX conversations_by_user
        ON conversations (user_hash, last_message_at DESC, conversation_id DESC);
    CREATE INDEX conversations_by_day ON conversations (day);
    CREATE TABLE chat_statistics (
        collection_name TEXT COLLATE "C" NOT NULL,
        date TEXT COLLATE "C" NOT NULL,
        hour BIGINT NOT NULL,
        total_queries BIGINT NOT NULL,
        unique_sessions BIGINT NOT NULL,
        total_tokens BIGINT NOT NULL,
        response_time_sum_ms BIGINT NOT NULL,
        response_time_count BIGINT NOT NULL,
        error_count BIGINT NOT NULL,
        regeneration_count BIGINT NOT NULL,
        message_count BIGINT NOT NULL,
        first_at_us BIGINT NOT NULL,
        last_at_us BIGINT NOT NULL,
        avg_response_time_ms DOUBLE PRECISION,
        p50_response_time_ms DOUBLE PRECISION,
        p95_response_time_ms DOUBLE PRECISION,
        p99_response_time_ms DOUBLE PRECISION,
        latency_sketch BYTEA,
        top_queries TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (collection_name, date, hour)
    );
    CREATE INDEX chat_statistics_by_time ON chat_statistics (date, hour);
    CREATE TABLE chat_statistics_overall (
        date TEXT COLLATE "C" NOT NULL,
        hour BIGINT NOT NULL,
        total_queries BIGINT NOT NULL,
        unique_sessions BIGINT NOT NULL,
        total_tokens BIGINT NOT NULL,
        response_time_sum_ms BIGINT NOT NULL,
        response_time_count BIGINT NOT NULL,
        error_count BIGINT NOT NULL,
        regeneration_count BIGINT NOT NULL,
        message_count BIGINT NOT NULL,
        first_at_us BIGINT NOT NULL,
        last_at_us BIGINT NOT NULL,
        avg_response_time_ms DOUBLE PRECISION,
        p50_response_time_ms DOUBLE PRECISION,
        p95_response_time_ms DOUBLE PRECISION,
        p99_response_time_ms DOUBLE PRECISION,
        latency_sketch BYTEA,
        top_queries TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (date, hour)
    );
    CREATE TABLE chat_statistics_daily (
        scope TEXT COLLATE "C" NOT NULL,
        date TEXT COLLATE "C" NOT NULL,
        total_queries BIGINT NOT NULL,
        unique_sessions BIGINT NOT NULL,
        total_tokens BIGINT NOT NULL,
        response_time_sum_ms BIGINT NOT NULL,
        response_time_count BIGINT NOT NULL,
        error_count BIGINT NOT NULL,
        regeneration_count BIGINT NOT NULL,
        message_count BIGINT NOT NULL,
        first_at_us BIGINT NOT NULL,
        last_at_us BIGINT NOT NULL,
        avg_response_time_ms DOUBLE PRECISION,
        p50_response_time_ms DOUBLE PRECISION,
        p95_response_time_ms DOUBLE PRECISION,
        p99_response_time_ms DOUBLE PRECISION,
        latency_sketch BYTEA,
        top_queries TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (scope, date)
    );
    CREATE INDEX chat_statistics_daily_by_date ON chat_statistics_daily (date);
    CREATE TABLE chat_statistics_queries (
        collection_name TEXT COLLATE "C" NOT NULL,
        date TEXT COLLATE "C" NOT NULL,
        hour BIGINT NOT NULL,
        query_key TEXT COLLATE "C" NOT NULL,
        sample_text TEXT COLLATE "C" NOT NULL,
        count BIGINT NOT NULL,
        PRIMARY KEY (collection_name, date, hour, query_key)
    );
    CREATE INDEX chat_statistics_queries_by_hour ON chat_statistics_queries (date, hour, query_key);
    CREATE INDEX chat_statistics_queries_by_day ON chat_statistics_queries (date, query_key);
    CREATE TABLE chat_statistics_sessions (
        session_id TEXT COLLATE "C" NOT NULL,
        collection_name TEXT COLLATE "C" NOT NULL,
        date TEXT COLLATE "C" NOT NULL,
        hour BIGINT NOT NULL,
        PRIMARY KEY (session_id, collection_name, date, hour)
    );
    CREATE INDEX chat_statistics_sessions_by_date ON chat_statistics_sessions (date);
    CREATE TABLE chat_statistics_reach (
        scope TEXT COLLATE "C" NOT NULL,
        date TEXT COLLATE "C" NOT NULL,
        prev_date TEXT COLLATE "C" NOT NULL,
        sessions BIGINT NOT NULL,
        PRIMARY KEY (scope, date, prev_date)
    );
    CREATE TABLE alert_minutes (
        scope TEXT COLLATE "C" NOT NULL,
        minute BIGINT NOT NULL,
        queries BIGINT NOT NULL,
        answers BIGINT NOT NULL,
        errors BIGINT NOT NULL,
        scored BIGINT NOT NULL,
        low_scores BIGINT NOT NULL,
        latency_sketch BYTEA,
        PRIMARY KEY (scope, minute)
    );
    CREATE INDEX alert_minutes_by_minute ON alert_minutes (minute);
    CREATE TABLE alerts (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        rule TEXT COLLATE "C" NOT NULL,
        scope TEXT COLLATE "C" NOT NULL,
        state TEXT COLLATE "C" NOT NULL,
        started_at TEXT COLLATE "C" NOT NULL,
        resolved_at TEXT COLLATE "C",
        value DOUBLE PRECISION,
        threshold DOUBLE PRECISION,
        baseline DOUBLE PRECISION,
        message TEXT COLLATE "C" NOT NULL,
        quiet BIGINT NOT NULL DEFAULT 0
    );
    CREATE UNIQUE INDEX alerts_one_firing ON alerts (rule, scope) WHERE state = 'firing';
    CREATE INDEX alerts_by_start ON alerts (started_at);
    CREATE TABLE alert_outbox (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        alert_id BIGINT NOT NULL,
        url TEXT COLLATE "C" NOT NULL,
        payload TEXT COLLATE "C" NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        next_at DOUBLE PRECISION NOT NULL,
        attempts BIGINT NOT NULL DEFAULT 0,
        last_error TEXT COLLATE "C"
    );
    CREATE TABLE retrieval_statistics (
        date TEXT COLLATE "C" NOT NULL,
        collection_name TEXT COLLATE "C" NOT NULL,
        hour BIGINT NOT NULL,
        answers BIGINT NOT NULL,
        errors BIGINT NOT NULL,
        regenerations BIGINT NOT NULL,
        with_retrieval BIGINT NOT NULL,
        no_result BIGINT NOT NULL,
        reranked BIGINT NOT NULL,
        histograms BYTEA NOT NULL,
        PRIMARY KEY (date, collection_name, hour)
    );
    CREATE TABLE feedback_statistics (
        date TEXT COLLATE "C" NOT NULL,
        collection_name TEXT COLLATE "C" NOT NULL,
        hour BIGINT NOT NULL,
        positive BIGINT NOT NULL,
        negative BIGINT NOT NULL,
        PRIMARY KEY (date, collection_name, hour)
    );
    CREATE TABLE retrieval_statistics_daily (
        date TEXT COLLATE "C" NOT NULL,
        collection_name TEXT COLLATE "C" NOT NULL,
        answers BIGINT NOT NULL,
        errors BIGINT NOT NULL,
        regenerations BIGINT NOT NULL,
        with_retrieval BIGINT NOT NULL,
        no_result BIGINT NOT NULL,
        reranked BIGINT NOT NULL,
        histograms BYTEA NOT NULL,
        PRIMARY KEY (date, collection_name)
    );
    CREATE TABLE faq_questions (
        date TEXT COLLATE "C" NOT NULL,
        collection_name TEXT COLLATE "C" NOT NULL,
        question_key TEXT COLLATE "C" NOT NULL,
        sample_text TEXT COLLATE "C" NOT NULL,
        count BIGINT NOT NULL,
        scored BIGINT NOT NULL,
        score_sum DOUBLE PRECISION NOT NULL,
        candidates TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (date, collection_name, question_key)
    );
    CREATE INDEX faq_questions_by_key ON faq_questions (question_key, date);
    CREATE TABLE faq_sessions (
        date TEXT COLLATE "C" NOT NULL,
        session_id TEXT COLLATE "C" NOT NULL,
        collection_name TEXT COLLATE "C" NOT NULL,
        question_key TEXT COLLATE "C" NOT NULL,
        last_answer TEXT COLLATE "C",
        PRIMARY KEY (date, session_id)
    );
    CREATE TABLE answer_feedback (
        feedback_id TEXT COLLATE "C" PRIMARY KEY,
        log_id TEXT COLLATE "C" NOT NULL,
        date TEXT COLLATE "C" NOT NULL,
        collection_name TEXT COLLATE "C" NOT NULL,
        score BIGINT NOT NULL,
        comment TEXT COLLATE "C",
        created_at TEXT COLLATE "C" NOT NULL,
        user_hash TEXT COLLATE "C"
    );
    CREATE INDEX answer_feedback_by_log ON answer_feedback (log_id);
    CREATE TABLE answer_statistics (
        date TEXT COLLATE "C" NOT NULL,
        collection_name TEXT COLLATE "C" NOT NULL,
        llm_model TEXT COLLATE "C" NOT NULL,
        reasoning_level TEXT COLLATE "C" NOT NULL,
        answers BIGINT NOT NULL,
        errors BIGINT NOT NULL,
        regenerations BIGINT NOT NULL,
        response_time_count BIGINT NOT NULL,
        response_time_sum_ms BIGINT NOT NULL,
        latency_sketch BYTEA,
        PRIMARY KEY (date, collection_name, llm_model, reasoning_level)
    );
    CREATE TABLE error_statistics (
        date TEXT COLLATE "C" NOT NULL,
        collection_name TEXT COLLATE "C" NOT NULL,
        error_type TEXT COLLATE "C" NOT NULL,
        count BIGINT NOT NULL,
        PRIMARY KEY (date, collection_name, error_type)
    );
    """,
    # 2: what a shared store adds: the nodes writing to it, and the conversation records
    # themselves (with SQLite they are read from the day files; analytics APIs here have none).
    """
    CREATE TABLE chatlog_nodes (
        node_id TEXT COLLATE "C" PRIMARY KEY,
        first_seen_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        last_seen_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE TABLE conversation_records (
        conversation_id TEXT COLLATE "C" PRIMARY KEY,
        node_id TEXT COLLATE "C" NOT NULL,
        record BYTEA NOT NULL
    );
    """,
    # 3: a record lives exactly as long as its index row: erasure and retention delete index
    # rows, and the records go with them (nothing else needs to know about the records).
    """
    ALTER TABLE conversation_records ADD CONSTRAINT conversation_records_indexed
        FOREIGN KEY (conversation_id) REFERENCES conversations (conversation_id) ON DELETE CASCADE;
    CREATE INDEX conversation_records_by_node ON conversation_records (node_id);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)

# A node's own tables, created when the node first connects.
NODE_TABLES = """
    CREATE TABLE IF NOT EXISTS ingest_offsets (
        stream TEXT COLLATE "C" NOT NULL,
        day TEXT COLLATE "C" NOT NULL,
        lines BIGINT NOT NULL,
        size BIGINT,
        PRIMARY KEY (stream, day)
    );
    CREATE TABLE IF NOT EXISTS quarantined_lines (
        stream TEXT COLLATE "C" NOT NULL,
        day TEXT COLLATE "C" NOT NULL,
        line BIGINT NOT NULL,
        byte_offset BIGINT,
        reason TEXT COLLATE "C" NOT NULL,
        raw BYTEA NOT NULL,
        quarantined_at TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (stream, day, line)
    );
"""


# Node tables that readers (the analytics API, search path ``public``) see as one, every node's rows.
UNION_TABLES = ("ingest_offsets", "quarantined_lines")


def _union_views(raw: psycopg.Connection[Any]) -> None:
    """``public.<table>``: every registered node's rows of its own ``<table>``, plus its ``node_id``."""
    nodes = [row[0] for row in raw.execute("SELECT node_id FROM public.chatlog_nodes ORDER BY node_id")]
    for table in UNION_TABLES:
        parts = [
            sql.SQL("SELECT *, {} AS node_id FROM {}").format(
                sql.Literal(node), sql.Identifier(node_schema(node), table)
            )
            for node in nodes
        ]
        raw.execute(sql.SQL("DROP VIEW IF EXISTS {}").format(sql.Identifier("public", table)))
        raw.execute(
            sql.SQL("CREATE VIEW {} AS {}").format(sql.Identifier("public", table), sql.SQL(" UNION ALL ").join(parts))
        )


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer chatlog than this one: refused, never migrated down."""


def schema_version(conn: PostgresConnection) -> int:
    """The shared schema's version (0 for an empty database)."""
    raw = conn.raw
    found = raw.execute("SELECT to_regclass('public.schema_migrations')").fetchone()
    if found is None or found[0] is None:
        return 0
    row = raw.execute("SELECT max(version) FROM public.schema_migrations").fetchone()
    return int(row[0] or 0) if row else 0


def migrate(conn: PostgresConnection, node: str | None = None, target: int = SCHEMA_VERSION) -> int:
    """Bring the shared schema to ``target`` (and ``node``'s tables into being); return the version before.

    Runs under a session advisory lock, each migration in its own transaction.
    """
    raw = conn.raw
    raw.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
    try:
        raw.execute(
            "CREATE TABLE IF NOT EXISTS public.schema_migrations "
            "(version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        before = schema_version(conn)
        if before > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"PostgreSQL schema version {before} is newer than this chatlog ({SCHEMA_VERSION}): "
                "upgrade this chatlog to the version the other nodes run"
            )
        for index in range(before, target):
            with raw.transaction():
                raw.execute("SET LOCAL search_path = public")
                raw.execute(MIGRATIONS[index])
                raw.execute("INSERT INTO public.schema_migrations (version) VALUES (%s)", (index + 1,))
        if node is not None and target == SCHEMA_VERSION:
            with raw.transaction():
                schema = sql.Identifier(node_schema(node))
                raw.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
                raw.execute(sql.SQL("SET LOCAL search_path = {}").format(schema))
                raw.execute(NODE_TABLES)
                row = raw.execute(
                    "INSERT INTO public.chatlog_nodes (node_id) VALUES (%s) "
                    "ON CONFLICT (node_id) DO UPDATE SET last_seen_at = now() RETURNING xmax = 0", (node,),
                ).fetchone()
                joined = bool(row and row[0])  # xmax 0: the row was inserted, not updated
                missing = raw.execute("SELECT to_regclass('public.ingest_offsets') IS NULL").fetchone()
                # Rebuilt only when the set of nodes or the schema changed: dropping a view locks
                # out every reader, and every node connects several times at each start.
                if joined or before < target or (missing and missing[0]):
                    _union_views(raw)
        return before
    finally:
        raw.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
