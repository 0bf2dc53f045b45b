"""Live statistics and the rebuild from day files agree row for row, and every event counts once."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gzip
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest
import zstandard

from chat_statistics.rebuild.run import rebuild, rebuild_day
from chatlog.cli import main as chatlog_main
from ingestor.app import create_app as create_ingestor
from ingestor.statistics_jobs import statistics_jobs
from shared.db import connect_writer_sync
from shared.layout import StorageLayout, Stream
from shared.settings import Settings
from tests.conftest import TEST_SECRET, AiohttpClient
from tests.support.statistics_oracle import applied, generate, post_all, snapshot


async def live(aiohttp_client: AiohttpClient, config: Settings, zone: str, count: int = 700) -> Settings:
    """Post generated events to a running ingestor and wait until the statistics hold them all."""
    zoned = dataclasses.replace(config, timezone=ZoneInfo(zone))
    ingest = await aiohttp_client(create_ingestor(zoned))
    events = generate(11, datetime.now(UTC), count=count)
    await post_all(ingest, events, per_request=70)
    await applied(zoned, len(events))
    await ingest.close()
    return zoned


def span(config: Settings) -> tuple[date, date]:
    """The first and last day that has a log file."""
    days = list(StorageLayout.from_settings(config).days(Stream.LOGS))
    return days[0], days[-1]


def rebuild_all(config: Settings) -> None:
    """Rebuild every day that has a log file."""
    first, last = span(config)
    rebuild(config.db_path, StorageLayout.from_settings(config), first, last)


@pytest.mark.parametrize("zone", ["UTC", "Asia/Seoul"])
async def test_rebuild_equals_live(aiohttp_client: AiohttpClient, config: Settings, zone: str) -> None:
    """Rebuilding every day from its file gives exactly the rows the live path wrote."""
    zoned = await live(aiohttp_client, config, zone)
    before = snapshot(zoned.db_path)
    assert all(before[t] for t in before)
    rebuild_all(zoned)
    assert snapshot(zoned.db_path) == before


async def test_rebuild_reads_compressed_days(aiohttp_client: AiohttpClient, config: Settings) -> None:
    """Days stored as .jsonl.zst and .jsonl.gz rebuild to the same rows as when they were plain."""
    zoned = await live(aiohttp_client, config, "UTC")
    before = snapshot(zoned.db_path)
    layout = StorageLayout.from_settings(zoned)
    plain = [f.plain for f in layout.days(Stream.LOGS).values() if f.plain is not None]
    for index, path in enumerate(plain[:-1]):
        data = path.read_bytes()
        if index % 2:
            Path(f"{path}.gz").write_bytes(gzip.compress(data))
        else:
            # Two frames, as a late event appended after compression makes.
            cut = data.index(b"\n", len(data) // 2) + 1
            compressor = zstandard.ZstdCompressor()
            Path(f"{path}.zst").write_bytes(compressor.compress(data[:cut]) + compressor.compress(data[cut:]))
        path.unlink()
    rebuild_all(zoned)
    assert snapshot(zoned.db_path) == before


def _day_events(db_path: Path, day: date) -> int:
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        row = conn.execute(
            "SELECT message_count FROM chat_statistics_daily WHERE scope = '' AND date = ?", (day.isoformat(),)
        ).fetchone()
    return int(row[0]) if row else 0


async def test_rebuild_never_wipes_what_damage_made_unreadable(aiohttp_client: AiohttpClient, config: Settings) -> None:
    """A day whose first frame is damaged keeps its rows; without rows it gets those of its readable lines."""
    zoned = await live(aiohttp_client, config, "UTC")
    layout = StorageLayout.from_settings(zoned)
    day, files = next((d, f) for d, f in layout.days(Stream.LOGS).items() if f.plain is not None)
    assert files.plain is not None
    data = files.plain.read_bytes()
    cut = data.index(b"\n", len(data) // 2) + 1
    compressor = zstandard.ZstdCompressor(write_checksum=True)
    first = bytearray(compressor.compress(data[:cut]))
    first[len(first) // 2] ^= 0x5A
    Path(f"{files.plain}.zst").write_bytes(bytes(first) + compressor.compress(data[cut:]))
    files.plain.unlink()
    counted = _day_events(zoned.db_path, day)
    readable = data[cut:].count(b"\n")
    assert counted > readable > 0
    before = snapshot(zoned.db_path)
    report = rebuild(zoned.db_path, layout, day, day)
    assert _day_events(zoned.db_path, day) == counted
    assert snapshot(zoned.db_path) == before
    assert report.kept == [day] and "with unreadable data kept their rows" in report.describe(day, day)
    with contextlib.closing(connect_writer_sync(zoned.db_path)) as conn:
        conn.execute("DELETE FROM chat_statistics_daily WHERE date = ?", (day.isoformat(),))
    report = rebuild(zoned.db_path, layout, day, day)
    assert report.days == 1 and not report.kept
    assert _day_events(zoned.db_path, day) == readable


async def test_replayed_lines_count_once(aiohttp_client: AiohttpClient, config: Settings) -> None:
    """Lines written but not applied before a crash are applied once on restart, as a rebuild counts them."""
    zoned = await live(aiohttp_client, config, "UTC", count=300)
    layout = StorageLayout.from_settings(zoned)
    today = layout.today()
    extra = generate(12, datetime.now(UTC), count=120, days=0.2)
    lines = []
    for index, event in enumerate(extra):
        event["log_id"] = f"late-{index}"
        event["conversation_id"] = event["session_id"]
        event["created_at"] = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
        lines.append(msgspec.json.encode(event) + b"\n")
    # Damaged lines in the middle are skipped by the replay and by the rebuild alike.
    lines.insert(40, b"not json at all\n")
    lines.insert(80, b'{"log_id": "bad", "session_id": 5, "collection_name": "x"}\n')
    with open(layout.day_path(Stream.LOGS, today), "ab") as f:
        f.write(b"".join(lines) + b'{"torn": ')
    restarted = await aiohttp_client(create_ingestor(zoned))
    await restarted.close()
    after_replay = snapshot(zoned.db_path)
    with contextlib.closing(sqlite3.connect(zoned.db_path)) as conn:
        (messages,) = conn.execute(
            "SELECT sum(message_count) FROM chat_statistics_daily WHERE scope = ''"
        ).fetchone()
    assert messages == 300 + 6 + len(extra)
    rebuild_all(zoned)
    assert snapshot(zoned.db_path) == after_replay


async def test_rebuild_keeps_days_without_files(aiohttp_client: AiohttpClient, config: Settings) -> None:
    """A day whose file is gone (retention) keeps its statistics; a rebuild never zeroes it."""
    zoned = await live(aiohttp_client, config, "UTC", count=200)
    before = snapshot(zoned.db_path)
    first, last = span(zoned)
    for path in StorageLayout.from_settings(zoned).days(Stream.LOGS)[first].all:
        path.unlink()
    report = rebuild(zoned.db_path, StorageLayout.from_settings(zoned), first - timedelta(days=3), last)
    # Only the day that has rows but no file is reported: the days before it have neither.
    assert report.missing == [first]
    assert snapshot(zoned.db_path) == before


def _env(monkeypatch: pytest.MonkeyPatch, config: Settings) -> None:
    monkeypatch.setenv("CHATLOG_DATA_DIR", str(config.data_dir))
    monkeypatch.setenv("CHATLOG_TIMEZONE", str(config.timezone))
    monkeypatch.setenv("CHATLOG_USER_HASH_SECRET", TEST_SECRET)


async def test_cli_rebuild_creates_database_and_catches_up(
    aiohttp_client: AiohttpClient,
    config: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``chatlog rebuild-stats`` on day files without a database creates it and gives the live rows."""
    zoned = await live(aiohttp_client, config, "Asia/Seoul", count=300)
    expected = snapshot(zoned.db_path)
    copy = dataclasses.replace(
        zoned, data_dir=tmp_path / "copy", db_path=tmp_path / "copy" / "chatlog.sqlite3"
    )
    shutil.copytree(zoned.data_dir / "data", copy.data_dir / "data")
    _env(monkeypatch, copy)
    first, last = span(copy)
    argv = ["rebuild-stats", "--from", first.isoformat(), "--to", last.isoformat()]
    # The command runs its own event loop, as it does from a shell.
    assert await asyncio.to_thread(chatlog_main, argv) == 0
    out = capsys.readouterr().out
    assert "day-file lines the database had not seen" in out and "rebuilt statistics" in out
    assert snapshot(copy.db_path) == expected
    # The catch-up derives what an ingestor start derives, not only the usage statistics
    # (it used to record the lines as applied with only those, so the rest was never made).
    assert _derived_rows(copy.db_path) == _derived_rows(zoned.db_path)
    assert all(_derived_rows(copy.db_path).values())


_DERIVED = ("conversations", "alert_minutes", "faq_questions", "answer_statistics", "retrieval_statistics_daily")


def _derived_rows(path: Path) -> dict[str, int]:
    """Row counts of the derived tables beside the usage statistics."""
    conn = sqlite3.connect(path)
    try:
        return {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in _DERIVED}
    finally:
        conn.close()


async def test_cli_rebuild_of_every_possible_day_covers_only_stored_days(
    aiohttp_client: AiohttpClient, config: Settings, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``--from 0001-01-01 --to 9999-12-31`` takes what the stored days take (it took minutes), and
    no command of the CLI overflows at the ends of the calendar."""
    zoned = await live(aiohttp_client, config, "UTC", count=200)
    before = snapshot(zoned.db_path)
    stored = len(StorageLayout.from_settings(zoned).days(Stream.LOGS))
    env = {**os.environ, "CHATLOG_DATA_DIR": str(zoned.data_dir), "CHATLOG_TIMEZONE": "UTC",
           "CHATLOG_USER_HASH_SECRET": TEST_SECRET}
    argv = [sys.executable, "-m", "chatlog", "rebuild-stats", "--from", "0001-01-01", "--to", "9999-12-31"]
    started = time.monotonic()
    proc = await asyncio.to_thread(subprocess.run, argv, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - started < 60
    assert f"0001-01-01..9999-12-31: {stored} day(s)" in proc.stdout
    assert snapshot(zoned.db_path) == before
    _env(monkeypatch, zoned)
    for args in (["--to", "0001-01-01"], ["--to", "9999-12-31"]):
        assert chatlog_main(["report", *args]) == 0
    # A report covers at most 366 days: the whole calendar is a clear error, not an overflow.
    assert chatlog_main(["report", "--from", "0001-01-01", "--to", "9999-12-31"]) == 1
    err = capsys.readouterr().err
    assert "OverflowError" not in err and "at most 366 days" in err


def test_cli_rejects_a_reversed_range(
    config: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--from`` after ``--to`` exits non-zero with a message naming both."""
    _env(monkeypatch, config)
    assert chatlog_main(["rebuild-stats", "--from", "2026-03-02", "--to", "2026-03-01"]) == 1
    assert "--from 2026-03-02 is after --to 2026-03-01" in capsys.readouterr().err


async def test_rebuild_beside_a_running_ingestor(aiohttp_client: AiohttpClient, config: Settings) -> None:
    """Rebuilding today while events keep arriving loses and doubles nothing."""
    ingest = await aiohttp_client(create_ingestor(config))
    first = generate(13, datetime.now(UTC), count=200, days=0.1)
    await post_all(ingest, first)
    await applied(config, len(first))
    layout = StorageLayout.from_settings(config)
    today = layout.today()
    second = [e | {"log_id": f"more-{i}"} for i, e in enumerate(generate(14, datetime.now(UTC), 200, 0.1))]
    for start in range(0, len(second), 50):
        await post_all(ingest, second[start : start + 50])
        await asyncio.to_thread(rebuild, config.db_path, layout, today - timedelta(days=1), today)
    total = len(first) + len(second)
    await applied(config, total)
    await ingest.close()
    live_rows = snapshot(config.db_path)
    rebuild_all(config)
    assert snapshot(config.db_path) == live_rows
    assert sum(r[9] for r in live_rows["chat_statistics_daily"] if r[0] == "") == total


async def test_finalise_job_rebuilds_yesterday(aiohttp_client: AiohttpClient, config: Settings) -> None:
    """The daily job recomputes yesterday from its file (rows unchanged when the live path was right)."""
    ingest = await aiohttp_client(create_ingestor(config))
    events = generate(15, datetime.now(UTC), count=300, days=2.0)
    await post_all(ingest, events)
    await applied(config, len(events))
    (job,) = statistics_jobs(ingest.app)
    assert job.name == "statistics-finalise"
    before = snapshot(config.db_path)
    yesterday = (StorageLayout.from_settings(config).today() - timedelta(days=1)).isoformat()
    with contextlib.closing(sqlite3.connect(config.db_path)) as conn:
        conn.execute("DELETE FROM chat_statistics WHERE date = ?", (yesterday,))
        conn.commit()
    account = await job.run()
    assert "1 day(s)" in account
    after: dict[str, Any] = snapshot(config.db_path)
    assert [r for r in after["chat_statistics"] if r[1] == yesterday] == [
        r for r in before["chat_statistics"] if r[1] == yesterday
    ]
    assert after == before


async def test_worker_processes_give_the_same_rows(aiohttp_client: AiohttpClient, config: Settings) -> None:
    """Days computed in forked or spawned worker processes give exactly the rows of the in-process path."""
    zoned = await live(aiohttp_client, config, "Asia/Seoul")
    before = snapshot(zoned.db_path)
    first, last = span(zoned)
    layout = StorageLayout.from_settings(zoned)
    assert rebuild(zoned.db_path, layout, first, last, workers=1).workers == 1
    assert snapshot(zoned.db_path) == before
    # From the event loop's thread nothing else runs, so workers are forked; from a worker
    # thread (as the ingestor's daily job calls it) they are spawned.
    assert rebuild(zoned.db_path, layout, first, last, workers=2).workers == 2
    assert snapshot(zoned.db_path) == before
    spawned = await asyncio.to_thread(rebuild, zoned.db_path, layout, first, last, False, 2)
    assert spawned.workers == 2 and spawned.days == (last - first).days + 1
    assert snapshot(zoned.db_path) == before


async def test_reach_relinked_around_days_without_files(aiohttp_client: AiohttpClient, config: Settings) -> None:
    """Relinking from the rebuilt days' activity reads back a middle day without a file, and partial ranges."""
    zoned = await live(aiohttp_client, config, "UTC")
    before = snapshot(zoned.db_path)
    first, last = span(zoned)
    layout = StorageLayout.from_settings(zoned)
    middle = first + timedelta(days=2)
    for path in layout.days(Stream.LOGS)[middle].all:
        path.unlink()
    report = rebuild(zoned.db_path, layout, first, last, workers=2)
    assert report.missing == [middle]
    assert snapshot(zoned.db_path) == before
    rebuild(zoned.db_path, layout, first + timedelta(days=1), last, workers=2)
    assert snapshot(zoned.db_path) == before


async def test_day_file_gone_during_rebuild_keeps_rows(aiohttp_client: AiohttpClient, config: Settings) -> None:
    """A day file that disappears after the range was listed keeps its rows instead of being read as empty."""
    zoned = await live(aiohttp_client, config, "UTC", count=200)
    before = snapshot(zoned.db_path)
    first, _ = span(zoned)
    layout = StorageLayout.from_settings(zoned)
    (path,) = layout.days(Stream.LOGS)[first].all
    path.unlink()
    with contextlib.closing(connect_writer_sync(zoned.db_path)) as conn:
        assert rebuild_day(conn, zoned.timezone, first, path, finalise=True) is None
    assert snapshot(zoned.db_path) == before
