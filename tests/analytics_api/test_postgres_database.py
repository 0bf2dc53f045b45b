"""The analytics API on PostgreSQL: read-only sessions, the documented read-only role, no data directory, outages."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from analytics_api import keys
from analytics_api.app import create_app as create_analytics
from ingestor.app import create_app as create_ingestor
from shared.errors import Unavailable
from shared.postgres.connection import PostgresConnection
from shared.settings import Settings
from tests.analytics_api.test_app import check_summary
from tests.conftest import AiohttpClient
from tests.support.analytics import AnalyticsProcess
from tests.support.postgres import PostgresServer
from tests.support.statistics_oracle import applied, expected_summary, frame, generate, post_all
from tests.support.stores import on_postgres, rows

ROLE_SQL = Path(__file__).resolve().parents[2] / "deploy" / "postgres-readonly-role.sql"
READER = "chatlog_reader"
# Under the test server's trust authentication a password is accepted and ignored: it
# stands for the real one, which no answer may ever show.
PASSWORD = "not-shown-4d1f9c"
ENDPOINTS = (
    "/healthz",
    "/api/analytics/summary",
    "/api/analytics/timeline?period=hourly&days=2",
    "/api/analytics/collections",
    "/api/analytics/quality",
    "/api/analytics/faq",
    "/api/analytics/suggestions",
    "/api/analytics/alerts",
    "/api/analytics/report?format=json",
)


@pytest.fixture
def config(config: Settings) -> Settings:
    """No FAQ warm-up: loading Kiwi in the background only slows these tests (the FAQ groups on request)."""
    return dataclasses.replace(config, faq_warmup=False)


async def ingested(
    aiohttp_client: AiohttpClient, config: Settings, url: str, node: str = "node-a", seed: int = 1, count: int = 150
) -> list[dict[str, Any]]:
    """``count`` events posted to an ingestor of ``node`` on the database at ``url``, applied."""
    settings = on_postgres(dataclasses.replace(config, data_dir=config.data_dir.parent / node), url, node)
    ingest = await aiohttp_client(create_ingestor(settings))
    events = generate(seed, datetime.now(UTC), count=count)
    await post_all(ingest, events)
    await applied(settings, len(events))
    await ingest.close()
    return events


def with_user(url: str, user: str, password: str | None = None) -> str:
    """``url`` (``postgresql://user@host:port/db``) for another user, with a password if given."""
    scheme, rest = url.split("://", 1)
    address = rest.split("@", 1)[1]
    return f"{scheme}://{user}{':' + password if password else ''}@{address}"


def expected(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The default summary (the last 7 days, UTC) of ``events``, from DuckDB."""
    today = datetime.now(UTC).date()
    return expected_summary(frame(events, ZoneInfo("UTC")), None, today - timedelta(days=6), today)


def users(events: list[dict[str, Any]]) -> int:
    """The default summary's total_queries."""
    return int(expected(events)["total_queries"])


async def test_its_sessions_cannot_write(aiohttp_client: AiohttpClient, config: Settings, postgres_url: str) -> None:
    """Every read transaction is read-only on the server: writes fail (503) and change nothing."""
    events = await ingested(aiohttp_client, config, postgres_url)
    pg = on_postgres(config, postgres_url)
    api = await aiohttp_client(create_analytics(pg))
    database = api.app[keys.database_key]
    before = rows(pg, "SELECT * FROM meta ORDER BY key")
    # The test server's user is a superuser: the session setting alone refuses these.
    for statement in (
        "INSERT INTO meta VALUES ('x', 'y')",
        "UPDATE meta SET value = 'z'",
        "DELETE FROM chat_statistics",
        "CREATE TABLE t (a BIGINT)",
    ):
        with pytest.raises(Unavailable, match="read-only transaction"):
            await database.read(lambda conn, sql=statement: conn.execute(sql).fetchall(), None)
    assert rows(pg, "SELECT * FROM meta ORDER BY key") == before
    assert rows(pg, "SELECT to_regclass('public.t')") == [(None,)]
    setting = await database.read(lambda conn: conn.execute("SHOW default_transaction_read_only").fetchone(), None)
    assert setting == ("on",)
    summary = await (await api.get("/api/analytics/summary")).json()
    assert summary["total_queries"] == users(events)


async def test_the_documented_read_only_role(
    aiohttp_client: AiohttpClient, config: Settings, postgres_server: PostgresServer, postgres_url: str,
    tmp_path: Path,
) -> None:
    """deploy/postgres-readonly-role.sql: the API runs as that role, which reads everything, writes nothing,
    and keeps reading what is created after it was applied (another node's views, a later table)."""
    first = await ingested(aiohttp_client, config, postgres_url, "node-a", seed=1)
    with contextlib.closing(PostgresConnection(postgres_url)) as owner:  # the ingestors' role
        owner.executescript(ROLE_SQL.read_text())
        owner.executescript(ROLE_SQL.read_text())  # idempotent
    # After the script: a second node joins (the offsets views are dropped and made again) ...
    second = await ingested(aiohttp_client, config, postgres_url, "node-b", seed=2)
    # ... and a later migration adds a table.
    with contextlib.closing(PostgresConnection(postgres_url)) as owner:
        owner.executescript("CREATE TABLE later_table (a BIGINT); INSERT INTO later_table VALUES (7)")
    reader_url = with_user(postgres_url, READER)
    reader = dataclasses.replace(config, data_dir=tmp_path / "none", database_url=reader_url)
    api = await aiohttp_client(create_analytics(reader))
    for path in ENDPOINTS:
        resp = await api.get(path)
        assert resp.status == 200, (path, await resp.text())
    summary = await (await api.get("/api/analytics/summary")).json()
    assert summary["total_queries"] == users(first) + users(second)
    database = api.app[keys.database_key]
    assert await database.read(lambda conn: conn.execute("SELECT current_user").fetchone(), None) == (READER,)
    assert await database.read(lambda conn: conn.execute("SELECT a FROM later_table").fetchall(), None) == [(7,)]
    assert await database.read(lambda conn: conn.execute("SELECT count(*) FROM ingest_offsets").fetchone(), None) == (
        len(rows(on_postgres(config, postgres_url), "SELECT * FROM ingest_offsets")),
    )
    # The role itself, outside the API's read-only sessions: read-only by default, and
    # without a single write grant when it asks for a read-write transaction.
    with contextlib.closing(PostgresConnection(reader_url)) as reader:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            reader.execute("INSERT INTO meta VALUES ('x', 'y')")
        for statement in (
            "INSERT INTO meta VALUES ('x', 'y')", "DELETE FROM chat_statistics", "CREATE TABLE t (a BIGINT)"
        ):
            reader.execute("BEGIN READ WRITE")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                reader.execute(statement)
            reader.rollback()
    assert not (tmp_path / "none").exists()


async def test_serves_statistics_without_a_data_directory(
    aiohttp_client: AiohttpClient, config: Settings, postgres_url: str, tmp_path: Path
) -> None:
    """``python -m analytics_api`` with CHATLOG_DATA_DIR naming nothing: statistics from PostgreSQL, the
    directory never created, and the URL's password in no answer."""
    events = await ingested(aiohttp_client, config, postgres_url)
    missing = tmp_path / "no" / "such" / "dir"
    api = await asyncio.to_thread(
        AnalyticsProcess, missing, CHATLOG_DATABASE_URL=with_user(postgres_url, "chatlog", PASSWORD),
        CHATLOG_FAQ_WARMUP="false",
    )
    try:
        # The statistics: what groups questions first loads Kiwi in the new process (the
        # role test reads those endpoints).
        for path in (*ENDPOINTS[:4], "/api/analytics/alerts"):
            status, body = await asyncio.to_thread(api.get, path)
            assert status == 200, (path, body)
            assert PASSWORD not in repr(body) and "postgresql://" not in repr(body)
        status, health = await asyncio.to_thread(api.get, "/healthz")
        assert health == {"status": "ok", "service": "analytics", "database": "ready", "store": "postgresql"}
        status, summary = await asyncio.to_thread(api.get, "/api/analytics/summary")
        check_summary(summary, expected(events))
    finally:
        await asyncio.to_thread(api.stop)
    assert not tmp_path.joinpath("no").exists()


async def test_a_stopped_server_answers_503_and_is_followed_when_back(
    aiohttp_client: AiohttpClient, config: Settings, postgres_server: PostgresServer, postgres_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """PostgreSQL down: 503 in the one error shape, naming neither server nor password, and the FAQ
    warm-up keeps waiting. Back: the next requests answer as before (the sessions the server closed
    are replaced, not reported)."""
    events = await ingested(aiohttp_client, config, postgres_url)
    pg = on_postgres(config, with_user(postgres_url, "chatlog", PASSWORD))
    api = await aiohttp_client(create_analytics(pg))

    async def summaries() -> list[Any]:
        # Concurrent, so that both worker threads (and their sessions) serve.
        answers = await asyncio.gather(*(api.get("/api/analytics/summary") for _ in range(4)))
        assert [a.status for a in answers] == [200] * 4
        return [await a.json() for a in answers]

    before = await summaries()
    assert before[0]["total_queries"] == users(events) and all(b == before[0] for b in before)
    postgres_server.stop()
    try:
        for path in ENDPOINTS[:5]:
            resp = await api.get(path)
            assert resp.status == 503, path
            text = await resp.text()
            assert (await resp.json())["error"] == "unavailable" and resp.headers["Retry-After"] == "5"
            assert PASSWORD not in text and "127.0.0.1" not in text
        # An API started while the server is down: its warm-up waits for it rather than giving up.
        warming = await aiohttp_client(create_analytics(dataclasses.replace(pg, faq_warmup=True)))
        while "FAQ warm-up waits for the database" not in caplog.text:
            assert "FAQ warm-up skipped" not in caplog.text
            await asyncio.sleep(0.02)
        assert warming.app[keys.groupings_key].busy()
        await warming.close()
    finally:
        postgres_server.start()
    assert await summaries() == before
    assert (await (await api.get("/healthz")).json())["database"] == "ready"
    # A restart between two requests: the sessions it closed fail at their next statement, and
    # are replaced then without a failed request.
    postgres_server.stop()
    postgres_server.start()
    assert await summaries() == before
