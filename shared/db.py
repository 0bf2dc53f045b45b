"""The SQLite database: schema, migrations and connection set-up (guide §6.2).

SQLite holds metadata, statistics and indexes only; the day files are the source of
truth. Every derived row is written in the same transaction as the count of day-file lines
it was derived from (``ingest_offsets``), so after a crash the ingestor re-applies
exactly the lines of each day file that SQLite had not seen. Lines, not bytes, so
that the count survives compression.

Only the ingestor (and the operator CLI while the ingestor is stopped) writes; the
analytics API opens the file with ``mode=ro``.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import operator
import os
import sqlite3
import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import aiosqlite

from shared.layout import make_private_dirs

if TYPE_CHECKING:
    from shared.settings import Settings

# Guide §6.2. synchronous=NORMAL is safe here: WAL keeps the database consistent,
# and a transaction lost to power failure is re-derived from the fsynced day files.
WRITER_PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA cache_size = -128000",
    "PRAGMA mmap_size = 10737418240",
    "PRAGMA temp_store = MEMORY",
    "PRAGMA busy_timeout = 5000",
    "PRAGMA foreign_keys = ON",
    # Checkpoints are scheduled by the ingestor; this bounds the WAL in between.
    "PRAGMA wal_autocheckpoint = 4000",
)
READER_PRAGMAS = (
    "PRAGMA query_only = ON",
    "PRAGMA cache_size = -32000",
    "PRAGMA mmap_size = 10737418240",
    "PRAGMA temp_store = MEMORY",
    "PRAGMA busy_timeout = 5000",
)

# Append-only: each entry moves the schema from version i to i + 1 (PRAGMA user_version).
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE chat_sessions (
        session_id TEXT PRIMARY KEY,
        conversation_id TEXT NOT NULL,
        collection_name TEXT NOT NULL,
        user_hash TEXT,
        started_at TEXT NOT NULL,
        last_seen_at TEXT NOT NULL,
        message_count INTEGER NOT NULL DEFAULT 0,
        last_day TEXT NOT NULL
    );
    CREATE INDEX chat_sessions_by_user ON chat_sessions (user_hash);
    CREATE INDEX chat_sessions_by_day ON chat_sessions (last_day);
    CREATE TABLE ingest_offsets (
        stream TEXT NOT NULL,
        day TEXT NOT NULL,
        lines INTEGER NOT NULL,
        PRIMARY KEY (stream, day)
    );
    """,
    # Conversation index: the newest record of each conversation and where it is stored.
    """
    CREATE TABLE conversations (
        conversation_id TEXT PRIMARY KEY,
        collection_name TEXT NOT NULL,
        user_hash TEXT,
        started_at TEXT NOT NULL,
        last_message_at TEXT NOT NULL,
        closed_at TEXT NOT NULL,
        total_turns INTEGER NOT NULL,
        has_error INTEGER NOT NULL,
        retention_priority TEXT NOT NULL,
        summary TEXT NOT NULL,
        day TEXT NOT NULL,
        byte_offset INTEGER NOT NULL,
        byte_length INTEGER NOT NULL
    );
    CREATE INDEX conversations_by_time ON conversations (last_message_at DESC, conversation_id DESC);
    CREATE INDEX conversations_by_collection
        ON conversations (collection_name, last_message_at DESC, conversation_id DESC);
    CREATE INDEX conversations_by_user
        ON conversations (user_hash, last_message_at DESC, conversation_id DESC);
    CREATE INDEX conversations_by_day ON conversations (day);
    """,
    # Statistics (chat_statistics/tables.py documents the tables): hourly per collection,
    # hourly overall, daily per scope (collection or '' = all), query counts, session
    # activity and range reach.
    """
    CREATE TABLE chat_statistics (
        collection_name TEXT NOT NULL,
        date TEXT NOT NULL,
        hour INTEGER NOT NULL,
        total_queries INTEGER NOT NULL,
        unique_sessions INTEGER NOT NULL,
        total_tokens INTEGER NOT NULL,
        response_time_sum_ms INTEGER NOT NULL,
        response_time_count INTEGER NOT NULL,
        error_count INTEGER NOT NULL,
        regeneration_count INTEGER NOT NULL,
        message_count INTEGER NOT NULL,
        first_at_us INTEGER NOT NULL,
        last_at_us INTEGER NOT NULL,
        avg_response_time_ms REAL,
        p50_response_time_ms REAL,
        p95_response_time_ms REAL,
        p99_response_time_ms REAL,
        latency_sketch BLOB,
        top_queries TEXT NOT NULL,
        PRIMARY KEY (collection_name, date, hour)
    );
    CREATE INDEX chat_statistics_by_time ON chat_statistics (date, hour);
    CREATE TABLE chat_statistics_overall (
        date TEXT NOT NULL,
        hour INTEGER NOT NULL,
        total_queries INTEGER NOT NULL,
        unique_sessions INTEGER NOT NULL,
        total_tokens INTEGER NOT NULL,
        response_time_sum_ms INTEGER NOT NULL,
        response_time_count INTEGER NOT NULL,
        error_count INTEGER NOT NULL,
        regeneration_count INTEGER NOT NULL,
        message_count INTEGER NOT NULL,
        first_at_us INTEGER NOT NULL,
        last_at_us INTEGER NOT NULL,
        avg_response_time_ms REAL,
        p50_response_time_ms REAL,
        p95_response_time_ms REAL,
        p99_response_time_ms REAL,
        latency_sketch BLOB,
        top_queries TEXT NOT NULL,
        PRIMARY KEY (date, hour)
    );
    CREATE TABLE chat_statistics_daily (
        scope TEXT NOT NULL,
        date TEXT NOT NULL,
        total_queries INTEGER NOT NULL,
        unique_sessions INTEGER NOT NULL,
        total_tokens INTEGER NOT NULL,
        response_time_sum_ms INTEGER NOT NULL,
        response_time_count INTEGER NOT NULL,
        error_count INTEGER NOT NULL,
        regeneration_count INTEGER NOT NULL,
        message_count INTEGER NOT NULL,
        first_at_us INTEGER NOT NULL,
        last_at_us INTEGER NOT NULL,
        avg_response_time_ms REAL,
        p50_response_time_ms REAL,
        p95_response_time_ms REAL,
        p99_response_time_ms REAL,
        latency_sketch BLOB,
        top_queries TEXT NOT NULL,
        PRIMARY KEY (scope, date)
    );
    CREATE INDEX chat_statistics_daily_by_date ON chat_statistics_daily (date);
    CREATE TABLE chat_statistics_queries (
        collection_name TEXT NOT NULL,
        date TEXT NOT NULL,
        hour INTEGER NOT NULL,
        query_key TEXT NOT NULL,
        sample_text TEXT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (collection_name, date, hour, query_key)
    ) WITHOUT ROWID;
    CREATE INDEX chat_statistics_queries_by_hour ON chat_statistics_queries (date, hour, query_key);
    CREATE INDEX chat_statistics_queries_by_day ON chat_statistics_queries (date, query_key);
    CREATE TABLE chat_statistics_sessions (
        session_id TEXT NOT NULL,
        collection_name TEXT NOT NULL,
        date TEXT NOT NULL,
        hour INTEGER NOT NULL,
        PRIMARY KEY (session_id, collection_name, date, hour)
    ) WITHOUT ROWID;
    CREATE INDEX chat_statistics_sessions_by_date ON chat_statistics_sessions (date);
    CREATE TABLE chat_statistics_reach (
        scope TEXT NOT NULL,
        date TEXT NOT NULL,
        prev_date TEXT NOT NULL,
        sessions INTEGER NOT NULL,
        PRIMARY KEY (scope, date, prev_date)
    ) WITHOUT ROWID;
    """,
    # The size of the day file the applied lines were read from, when they reach its end:
    # a start-up skips an old day whose file still has that size (nothing new to apply).
    """
    ALTER TABLE ingest_offsets ADD COLUMN size INTEGER;
    """,
    # Day-file lines the derived state could not apply (ingestor/quarantine.py): counted in
    # ingest_offsets like every line, kept here with the reason and their raw bytes.
    """
    CREATE TABLE quarantined_lines (
        stream TEXT NOT NULL,
        day TEXT NOT NULL,
        line INTEGER NOT NULL,
        byte_offset INTEGER,
        reason TEXT NOT NULL,
        raw BLOB NOT NULL,
        quarantined_at TEXT NOT NULL,
        PRIMARY KEY (stream, day, line)
    );
    """,
    # Alerts (ingestor/alerts/): per-minute counts of the last 8 days (scope = a collection,
    # '' = all), every alert with its evidence, and the webhook deliveries still to make.
    """
    CREATE TABLE alert_minutes (
        scope TEXT NOT NULL,
        minute INTEGER NOT NULL,
        queries INTEGER NOT NULL,
        answers INTEGER NOT NULL,
        errors INTEGER NOT NULL,
        scored INTEGER NOT NULL,
        low_scores INTEGER NOT NULL,
        latency_sketch BLOB,
        PRIMARY KEY (scope, minute)
    ) WITHOUT ROWID;
    CREATE INDEX alert_minutes_by_minute ON alert_minutes (minute);
    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY,
        rule TEXT NOT NULL,
        scope TEXT NOT NULL,
        state TEXT NOT NULL,
        started_at TEXT NOT NULL,
        resolved_at TEXT,
        value REAL,
        threshold REAL,
        baseline REAL,
        message TEXT NOT NULL,
        quiet INTEGER NOT NULL DEFAULT 0
    );
    CREATE UNIQUE INDEX alerts_one_firing ON alerts (rule, scope) WHERE state = 'firing';
    CREATE INDEX alerts_by_start ON alerts (started_at);
    CREATE TABLE alert_outbox (
        id INTEGER PRIMARY KEY,
        alert_id INTEGER NOT NULL,
        url TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at REAL NOT NULL,
        next_at REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT
    );
    """,
    # Retrieval quality per hour (chat_statistics/quality.py): counts and best-score histograms
    # (3 x 100 bins of 0.01, int32), and feedback counts; both keyed by date first for ranges.
    """
    CREATE TABLE retrieval_statistics (
        date TEXT NOT NULL,
        collection_name TEXT NOT NULL,
        hour INTEGER NOT NULL,
        answers INTEGER NOT NULL,
        errors INTEGER NOT NULL,
        regenerations INTEGER NOT NULL,
        with_retrieval INTEGER NOT NULL,
        no_result INTEGER NOT NULL,
        reranked INTEGER NOT NULL,
        histograms BLOB NOT NULL,
        PRIMARY KEY (date, collection_name, hour)
    ) WITHOUT ROWID;
    CREATE TABLE feedback_statistics (
        date TEXT NOT NULL,
        collection_name TEXT NOT NULL,
        hour INTEGER NOT NULL,
        positive INTEGER NOT NULL,
        negative INTEGER NOT NULL,
        PRIMARY KEY (date, collection_name, hour)
    ) WITHOUT ROWID;
    """,
    # Retrieval quality per day (chat_statistics/quality.py): the hourly rows summed, kept in
    # the same transactions; filled here from the hourly rows a database already has.
    """
    CREATE TABLE retrieval_statistics_daily (
        date TEXT NOT NULL,
        collection_name TEXT NOT NULL,
        answers INTEGER NOT NULL,
        errors INTEGER NOT NULL,
        regenerations INTEGER NOT NULL,
        with_retrieval INTEGER NOT NULL,
        no_result INTEGER NOT NULL,
        reranked INTEGER NOT NULL,
        histograms BLOB NOT NULL,
        PRIMARY KEY (date, collection_name)
    ) WITHOUT ROWID;
    INSERT INTO retrieval_statistics_daily
    SELECT date, collection_name, sum(answers), sum(errors), sum(regenerations), sum(with_retrieval),
           sum(no_result), sum(reranked), chatlog_int32_sum(histograms)
    FROM retrieval_statistics GROUP BY date, collection_name;
    """,
    # The FAQ's base (chat_statistics/questions.py): distinct user questions per (date,
    # collection) with their answers' scores and best answers, each session's current
    # question per day (pairing answers across commits), and feedback per answer.
    """
    CREATE TABLE faq_questions (
        date TEXT NOT NULL,
        collection_name TEXT NOT NULL,
        question_key TEXT NOT NULL,
        sample_text TEXT NOT NULL,
        count INTEGER NOT NULL,
        scored INTEGER NOT NULL,
        score_sum REAL NOT NULL,
        candidates TEXT NOT NULL,
        PRIMARY KEY (date, collection_name, question_key)
    ) WITHOUT ROWID;
    CREATE INDEX faq_questions_by_key ON faq_questions (question_key, date);
    CREATE TABLE faq_sessions (
        date TEXT NOT NULL,
        session_id TEXT NOT NULL,
        collection_name TEXT NOT NULL,
        question_key TEXT NOT NULL,
        last_answer TEXT,
        PRIMARY KEY (date, session_id)
    ) WITHOUT ROWID;
    CREATE TABLE answer_feedback (
        feedback_id TEXT PRIMARY KEY,
        log_id TEXT NOT NULL,
        date TEXT NOT NULL,
        collection_name TEXT NOT NULL,
        score INTEGER NOT NULL,
        comment TEXT,
        created_at TEXT NOT NULL,
        user_hash TEXT
    );
    CREATE INDEX answer_feedback_by_log ON answer_feedback (log_id);
    """,
    # Answers per day by model and reasoning level (chat_statistics/answers.py: '' = not given),
    # with a latency sketch, and error types per day; what the suggestions read by model and level.
    """
    CREATE TABLE answer_statistics (
        date TEXT NOT NULL,
        collection_name TEXT NOT NULL,
        llm_model TEXT NOT NULL,
        reasoning_level TEXT NOT NULL,
        answers INTEGER NOT NULL,
        errors INTEGER NOT NULL,
        regenerations INTEGER NOT NULL,
        response_time_count INTEGER NOT NULL,
        response_time_sum_ms INTEGER NOT NULL,
        latency_sketch BLOB,
        PRIMARY KEY (date, collection_name, llm_model, reasoning_level)
    ) WITHOUT ROWID;
    CREATE TABLE error_statistics (
        date TEXT NOT NULL,
        collection_name TEXT NOT NULL,
        error_type TEXT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (date, collection_name, error_type)
    ) WITHOUT ROWID;
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


class _Int32Sum:
    """SQL aggregate ``chatlog_int32_sum(blob)``: element-wise sum of packed little-endian int32 arrays.

    Migrations use it to sum histogram blobs, which SQL cannot add.
    """

    def __init__(self) -> None:
        self._total: array.array[int] | None = None

    def step(self, blob: bytes) -> None:
        values = array.array("i", blob)
        if sys.byteorder == "big":
            values.byteswap()
        if self._total is None:
            self._total = values
        else:
            self._total = array.array("i", map(operator.add, self._total, values))

    def finalize(self) -> bytes:
        total = self._total if self._total is not None else array.array("i")
        if sys.byteorder == "big":
            total.byteswap()
        return total.tobytes()


def register_functions(conn: sqlite3.Connection) -> None:
    """The SQL functions migrations use (``chatlog_int32_sum``)."""
    # typeshed types an aggregate as taking and giving ints only; this one takes and gives blobs.
    conn.create_aggregate("chatlog_int32_sum", 1, cast(Any, _Int32Sum))


def migrate(conn: sqlite3.Connection) -> int:
    """Bring a database to the current schema; return the version it had before."""
    register_functions(conn)
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version > SCHEMA_VERSION:
        raise RuntimeError(
            f"database schema version {version} is newer than this chatlog ({SCHEMA_VERSION})"
        )
    for index in range(version, SCHEMA_VERSION):
        conn.executescript(
            "BEGIN IMMEDIATE;" + MIGRATIONS[index] + f"; PRAGMA user_version = {index + 1}; COMMIT;"
        )
    return int(version)


# The database holds summaries and top questions: owner and the service's group only.
# SQLite gives the -wal and -shm files the database file's mode.
DB_FILE_MODE = 0o640


def create_private_file(path: Path, mode: int = DB_FILE_MODE) -> None:
    """Create ``path`` empty with ``mode`` unless it exists (SQLite would create it 0644)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))


def narrow_mode(path: Path, mode: int = DB_FILE_MODE) -> None:
    """Take away any permission beyond ``mode`` (a database an older chatlog made 0644)."""
    with contextlib.suppress(FileNotFoundError):
        current = stat.S_IMODE(os.stat(path).st_mode)
        if current & ~mode:
            os.chmod(path, current & mode)


def connect_writer_sync(path: Path) -> sqlite3.Connection:
    """A synchronous read-write connection, migrated (CLI and start-up use)."""
    make_private_dirs(path.parent)
    create_private_file(path)
    for name in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        narrow_mode(name)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in WRITER_PRAGMAS:
        conn.execute(pragma)
    migrate(conn)
    return conn


class DatabaseUnreachable(ConnectionError):
    """CHATLOG_DATABASE_URL's server does not answer (refused, timed out, shutting down).

    An ``OSError``, like a failing disk: the derived state retries it rather than blaming
    any line. The message names the server (``shared.postgres.reachability``), never the password.
    """


def connect_store_sync(settings: Settings) -> sqlite3.Connection:
    """The derived state's synchronous read-write connection, migrated: SQLite's, or PostgreSQL's.

    With ``CHATLOG_DATABASE_URL`` set this is a ``PostgresConnection`` (the same
    interface; see ``shared.postgres``) for this node; else the SQLite file.
    """
    if not settings.database_url:
        return connect_writer_sync(settings.db_path)
    import psycopg

    from shared.postgres.connection import PostgresConnection
    from shared.postgres.schema import migrate as migrate_postgres

    try:
        conn = PostgresConnection(settings.database_url, node=settings.node)
    except psycopg.OperationalError as exc:
        from shared.postgres.reachability import connection_problem

        raise DatabaseUnreachable(connection_problem(settings.database_url, exc)) from None
    try:
        migrate_postgres(conn, settings.node)
    except BaseException:
        conn.close()
        raise
    return cast(sqlite3.Connection, conn)


def store_name(conn: sqlite3.Connection) -> str:
    """Which database a store connection reads (a cache key): SQLite's file, or PostgreSQL's server and name."""
    from shared.postgres.connection import PostgresConnection

    if isinstance(conn, PostgresConnection):
        return conn.store_name
    (path,) = [row[2] for row in conn.execute("PRAGMA database_list") if row[1] == "main"]
    return str(path)


async def open_store(settings: Settings) -> aiosqlite.Connection:
    """The derived state's async read-write connection: an aiosqlite connection over either store.

    aiosqlite runs a connection on a thread of its own; over PostgreSQL the same
    thread owns a ``PostgresConnection``, so every caller (and ``run_sync``) works
    unchanged.
    """
    if not settings.database_url:
        return await open_writer(settings.db_path)
    await asyncio.to_thread(lambda: connect_store_sync(settings).close())
    from shared.postgres.connection import PostgresConnection

    def connector() -> sqlite3.Connection:
        return cast(sqlite3.Connection, PostgresConnection(settings.database_url, node=settings.node))

    return await aiosqlite.Connection(connector, iter_chunk_size=64)


async def open_writer(path: Path) -> aiosqlite.Connection:
    """The ingestor's read-write connection, migrated, with the guide's PRAGMAs."""
    connect_writer_sync(path).close()
    conn = await aiosqlite.connect(path, isolation_level=None)
    for pragma in WRITER_PRAGMAS:
        await conn.execute(pragma)
    return conn


def reader_uri(path: Path, immutable: bool = False) -> str:
    """The read-only URI of the database file.

    ``immutable`` tells SQLite the file cannot change, so it takes no lock and needs no
    ``-shm``/``-wal``: the only way to read a WAL database on read-only media, and one
    that creates no file. Only correct while no writer has it open (see
    ``analytics_api.database``).
    """
    return f"file:{path.resolve()}?mode=ro" + ("&immutable=1" if immutable else "")


async def open_reader(path: Path) -> aiosqlite.Connection:
    """A read-only connection: ``mode=ro`` and ``query_only``, so no statement can write."""
    conn = await aiosqlite.connect(reader_uri(path), uri=True, isolation_level=None)
    for pragma in READER_PRAGMAS:
        await conn.execute(pragma)
    return conn


def connect_store_reader_sync(settings: Settings, node: bool = False) -> sqlite3.Connection | None:
    """A read-only connection to the derived state (every node's, on PostgreSQL); None while there is none.

    SQLite: the file opened ``mode=ro`` (None before the ingestor first made it).
    PostgreSQL (None before an ingestor migrated it): a session whose every transaction
    is read-only, search path ``public``;
    with ``node``, this node's own tables first (its ``ingest_offsets``, once it has them).
    """
    if not settings.database_url:
        if not settings.db_path.exists():
            return None
        return sqlite3.connect(reader_uri(settings.db_path), uri=True)
    from shared.postgres.connection import PostgresConnection
    from shared.postgres.schema import schema_version

    conn = PostgresConnection(settings.database_url, node=settings.node if node else None, read_only=True)
    if schema_version(conn) == 0:  # no ingestor has migrated it yet
        conn.close()
        return None
    return cast(sqlite3.Connection, conn)

