"""The daily quality rows (``retrieval_statistics_daily``) answer exactly as the hourly rows they sum.

Kept by the live path, by ``rebuild-stats`` and filled by the migration from the hourly
rows of an older database; in every case the quality answer read from the daily rows
equals the one read from the hourly rows, in every time zone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from chat_statistics.quality import DAILY_TABLE, HOURLY_TABLE
from chat_statistics.quality_reads import query_quality
from chat_statistics.rebuild.quality import daily_rows
from chat_statistics.rebuild.run import rebuild
from ingestor.app import create_app as create_ingestor
from shared.db import MIGRATIONS, register_functions
from shared.layout import StorageLayout, Stream
from shared.settings import Settings
from tests.analytics_api.test_quality import counted
from tests.conftest import AiohttpClient
from tests.support.quality_oracle import labelled_answers
from tests.support.statistics_oracle import post_all

Rows = list[tuple[object, ...]]


def tables(config: Settings) -> tuple[Rows, Rows]:
    """The hourly and the daily quality rows, sorted."""
    with contextlib.closing(sqlite3.connect(config.db_path)) as conn:
        hourly = conn.execute(f"SELECT * FROM {HOURLY_TABLE} ORDER BY 1, 2, 3").fetchall()
        daily = conn.execute(f"SELECT * FROM {DAILY_TABLE} ORDER BY 1, 2").fetchall()
    return hourly, daily


def assert_daily_sums_hourly(config: Settings) -> None:
    """Every daily row is its day's hourly rows summed, and no day is missing or extra."""
    hourly, daily = tables(config)
    assert hourly
    assert sorted(daily_rows(hourly), key=lambda row: (str(row[0]), str(row[1]))) == daily


def assert_same_answers(config: Settings) -> None:
    """Every one-day range, the whole span and each collection: daily rows answer as hourly rows."""
    with contextlib.closing(sqlite3.connect(config.db_path)) as conn:
        days = sorted(date.fromisoformat(d) for (d,) in conn.execute(f"SELECT DISTINCT date FROM {HOURLY_TABLE}"))
        names = [n for (n,) in conn.execute(f"SELECT DISTINCT collection_name FROM {HOURLY_TABLE}")]
        ranges = [(d, d) for d in days] + [(days[0], days[-1]), (days[0] - timedelta(days=5), days[-1])]
        for collection in (None, *names):
            for first, last in ranges:
                for threshold in (0.5, 0.57):
                    daily = query_quality(conn, collection, first, last, threshold)
                    hourly = query_quality(conn, collection, first, last, threshold, table=HOURLY_TABLE)
                    assert daily == hourly, (collection, first, last, threshold)
        whole = query_quality(conn, None, days[0], days[-1], 0.5)
        assert whole.answers > 0 and len(whole.by_collection) == len(names)


async def ingest_days(aiohttp_client: AiohttpClient, config: Settings) -> int:
    """Answers of today, yesterday and three days ago through a real ingestor; returns how many."""
    ingest = await aiohttp_client(create_ingestor(config))
    now = datetime.now(UTC)
    events = labelled_answers(21, now, count=400) + labelled_answers(22, now - timedelta(days=3), count=200)
    await post_all(ingest, events)
    answers = sum(1 for e in events if e["message_type"] == "assistant")
    await counted(config, answers, 0)
    await ingest.close()
    return answers


@pytest.mark.parametrize("zone", ["UTC", "Asia/Seoul", "America/New_York"])
async def test_live_daily_rows_answer_as_the_hourly_rows(
    aiohttp_client: AiohttpClient, config: Settings, zone: str
) -> None:
    """The derived process keeps the daily rows in step with the hourly rows, over several file days."""
    zoned = dataclasses.replace(config, timezone=ZoneInfo(zone))
    await ingest_days(aiohttp_client, zoned)
    hourly, daily = tables(zoned)
    assert len({row[0] for row in daily}) >= 3 and len(daily) < len(hourly)
    assert_daily_sums_hourly(zoned)
    assert_same_answers(zoned)


async def test_rebuild_stats_rewrites_the_daily_rows(aiohttp_client: AiohttpClient, config: Settings) -> None:
    """Wrong or missing daily rows are rebuilt; a day whose file is gone (retention) keeps both kinds of row."""
    zoned = dataclasses.replace(config, timezone=ZoneInfo("Asia/Seoul"))
    await ingest_days(aiohttp_client, zoned)
    live = tables(zoned)
    with contextlib.closing(sqlite3.connect(zoned.db_path)) as conn, conn:
        conn.execute(f"DELETE FROM {DAILY_TABLE} WHERE collection_name = 'hr-docs'")
        conn.execute(f"UPDATE {DAILY_TABLE} SET answers = answers + 7, histograms = zeroblob(1200)")
    layout = StorageLayout.from_settings(zoned)
    today = datetime.now(zoned.timezone).date()
    rebuild(zoned.db_path, layout, today - timedelta(days=10), today)
    assert tables(zoned) == live

    oldest = min(layout.days(Stream.LOGS))
    for path in layout.root.joinpath(Stream.LOGS.value).glob(f"{oldest.isoformat()}.jsonl*"):
        path.unlink()
    rebuild(zoned.db_path, layout, today - timedelta(days=10), today)
    assert tables(zoned) == live
    assert_same_answers(zoned)


async def test_migration_fills_the_daily_rows_of_an_older_database(
    aiohttp_client: AiohttpClient, config: Settings
) -> None:
    """A database from before the daily table gets it filled from its hourly rows by the migration."""
    await ingest_days(aiohttp_client, config)
    live = tables(config)
    migration = next(m for m in MIGRATIONS if f"CREATE TABLE {DAILY_TABLE}" in m)
    with contextlib.closing(sqlite3.connect(config.db_path, isolation_level=None)) as conn:
        conn.execute(f"DROP TABLE {DAILY_TABLE}")
        # Before the migration the read falls back to the hourly rows and still answers.
        today = datetime.now(UTC).date()
        fallback = query_quality(conn, None, today - timedelta(days=5), today + timedelta(days=1), 0.5)
        assert fallback.answers > 0
        register_functions(conn)  # as migrate() does
        conn.executescript(migration)
    assert tables(config) == live
    assert_same_answers(config)
