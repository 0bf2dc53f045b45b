"""PostgreSQL's schema migrations: from empty, from the previous version, two nodes at once, newer refused;
and the schema is SQLite's, table for table and column for column."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import time

import pytest

from shared import db
from shared.postgres.connection import PostgresConnection, node_schema
from shared.postgres.dialect import MIGRATION_LOCK_KEY
from shared.postgres.schema import MIGRATIONS, NODE_TABLES, SCHEMA_VERSION, SchemaTooNew, migrate, schema_version
from shared.settings import Settings
from tests.support.migration import chatlog

# Tables only PostgreSQL has (shared.postgres.schema documents them): its migrations' ledger,
# the nodes, and the conversation records (SQLite readers read them from the day files).
POSTGRES_ONLY = {"schema_migrations", "chatlog_nodes", "conversation_records"}
# SQLite's tables that PostgreSQL keeps per node, in the node's schema.
PER_NODE = {"ingest_offsets", "quarantined_lines"}
SQLITE_TYPES = {"INTEGER": "bigint", "REAL": "double precision", "BLOB": "bytea", "TEXT": "text"}


def versions(conn: PostgresConnection) -> list[int]:
    return [r[0] for r in conn.raw.execute("SELECT version FROM public.schema_migrations ORDER BY version")]


def postgres_columns(conn: PostgresConnection, schema: str) -> dict[str, list[tuple[str, str, bool]]]:
    found: dict[str, list[tuple[str, str, bool]]] = {}
    for table, column, kind, nullable in conn.raw.execute(
        "SELECT c.table_name, c.column_name, c.data_type, c.is_nullable FROM information_schema.columns c "
        "JOIN information_schema.tables t USING (table_schema, table_name) "
        "WHERE c.table_schema = %s AND t.table_type = 'BASE TABLE' ORDER BY c.table_name, c.ordinal_position",
        (schema,),
    ):
        found.setdefault(table, []).append((column, kind, nullable == "NO"))
    return found


def objects(conn: PostgresConnection) -> set[str]:
    """The names of schema public's tables, views, indexes and constraints."""
    found = conn.execute(
        "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE nspname = 'public' "
        "UNION SELECT conname FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
        "WHERE nspname = 'public'"
    ).fetchall()
    return {name for (name,) in found}


def sqlite_columns() -> dict[str, list[tuple[str, str, bool]]]:
    with contextlib.closing(sqlite3.connect(":memory:", isolation_level=None)) as lite:
        db.migrate(lite)
        tables = [r[0] for r in lite.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {
            table: [(name, SQLITE_TYPES[kind], bool(notnull or pk))
                    for _, name, kind, notnull, _, pk in lite.execute(f"PRAGMA table_info({table})")]
            for table in tables
        }


def test_an_empty_database_is_migrated_to_the_current_version_once(postgres_url: str) -> None:
    with contextlib.closing(PostgresConnection(postgres_url)) as conn:
        assert schema_version(conn) == 0
        assert migrate(conn, "node-a") == 0
        assert versions(conn) == list(range(1, SCHEMA_VERSION + 1))
        assert migrate(conn, "node-a") == SCHEMA_VERSION
        assert versions(conn) == list(range(1, SCHEMA_VERSION + 1))


def test_the_previous_version_with_rows_in_it_is_migrated_keeping_them(postgres_url: str) -> None:
    previous = SCHEMA_VERSION - 1
    with contextlib.closing(PostgresConnection(postgres_url)) as conn:
        migrate(conn, None, target=previous)
        assert schema_version(conn) == previous
        conn.execute("INSERT INTO meta (key, value) VALUES ('user_hash_key_fingerprint', 'abc')")
        conn.execute(
            "INSERT INTO chat_sessions (session_id, conversation_id, collection_name, user_hash, started_at, "
            "last_seen_at, message_count, last_day) VALUES ('s-1', 'c-1', 'kb', NULL, 'a', 'b', 3, '2026-01-01')"
        )
        before = postgres_columns(conn, "public")
        shape = objects(conn)
        assert migrate(conn, "node-a") == previous
        assert schema_version(conn) == SCHEMA_VERSION
        assert conn.execute("SELECT value FROM meta").fetchall() == [("abc",)]
        assert conn.execute("SELECT session_id, message_count FROM chat_sessions").fetchall() == [("s-1", 3)]
        after = postgres_columns(conn, "public")
        assert {t: after[t] for t in before} == before
        assert objects(conn) > shape  # the last migration added what it adds (tables, keys, indexes)


def test_two_nodes_starting_at_once_apply_each_migration_once(postgres_url: str) -> None:
    start_at = time.time() + 2.0
    script = (
        "import sys, time; from shared.postgres.connection import PostgresConnection; "
        "from shared.postgres.schema import migrate; "
        f"time.sleep(max(0.0, {start_at} - time.time())); "
        "conn = PostgresConnection(sys.argv[1]); print(migrate(conn, sys.argv[2]))"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, postgres_url, node], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for node in ("node-a", "node-b")]
    outcomes = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outcomes
    # One found the empty database and migrated it, the other waited for the lock and found it done.
    assert sorted(int(out) for out, _ in outcomes) == [0, SCHEMA_VERSION]
    with contextlib.closing(PostgresConnection(postgres_url)) as conn:
        assert versions(conn) == list(range(1, SCHEMA_VERSION + 1))
        nodes = conn.execute("SELECT node_id FROM chatlog_nodes ORDER BY node_id").fetchall()
        assert nodes == [("node-a",), ("node-b",)]
        assert conn.execute("SELECT DISTINCT node_id FROM ingest_offsets").fetchall() == []


def test_postgresqls_tables_and_columns_are_sqlites(postgres_url: str) -> None:
    """A SQLite migration without its PostgreSQL twin (or the other way round) fails here."""
    with contextlib.closing(PostgresConnection(postgres_url)) as conn:
        migrate(conn, "node-a")
        shared = postgres_columns(conn, "public")
        per_node = postgres_columns(conn, node_schema("node-a"))
    lite = sqlite_columns()
    assert set(shared) - set(lite) == POSTGRES_ONLY
    assert set(per_node) == PER_NODE
    for table, columns in lite.items():
        theirs = per_node[table] if table in PER_NODE else shared[table]
        assert theirs == columns, table
    assert "CREATE TABLE IF NOT EXISTS" in NODE_TABLES and len(MIGRATIONS) == SCHEMA_VERSION


def test_a_database_newer_than_this_chatlog_is_refused(config: Settings, postgres_url: str) -> None:
    with contextlib.closing(PostgresConnection(postgres_url)) as conn:
        migrate(conn, "node-a")
        conn.execute("INSERT INTO public.schema_migrations (version) VALUES (?)", (SCHEMA_VERSION + 1,))
        with pytest.raises(SchemaTooNew, match=f"version {SCHEMA_VERSION + 1} is newer than this chatlog"):
            migrate(conn, "node-a")
    with contextlib.closing(PostgresConnection(postgres_url)) as other:
        # Refused without keeping the migration lock.
        assert other.raw.execute("SELECT pg_try_advisory_lock(%s)", (MIGRATION_LOCK_KEY,)).fetchone() == (True,)
        assert versions(other)[-1] == SCHEMA_VERSION + 1
    refused = chatlog(config, "migrate-to-postgres", database_url=postgres_url)
    assert refused.returncode == 1
    assert f"schema version {SCHEMA_VERSION + 1} is newer than this chatlog ({SCHEMA_VERSION})" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_the_views_over_every_nodes_rows_are_rebuilt_only_when_a_node_joins(postgres_url: str) -> None:
    """A node's every (re)connection migrates; its views are dropped and made again only for a new node."""

    def view() -> int:
        return int(conn.execute("SELECT 'public.ingest_offsets'::regclass::oid").fetchone()[0])

    with contextlib.closing(PostgresConnection(postgres_url)) as conn:
        migrate(conn, "node-a")
        first = view()
        migrate(conn, "node-a")
        assert view() == first
        migrate(conn, "node-b")
        assert view() != first
        assert conn.execute("SELECT DISTINCT node_id FROM public.ingest_offsets").fetchall() == []
        assert {r[0] for r in conn.execute("SELECT node_id FROM chatlog_nodes").fetchall()} == {"node-a", "node-b"}
