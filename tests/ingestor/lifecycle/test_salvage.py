"""Damaged compressed day files: repair only cuts torn tails; damage is quarantined and salvaged."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sqlite3
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from chatlog.cli import main as chatlog
from ingestor.app import create_app as create_ingestor
from ingestor.dayfiles import DayFileWriter
from ingestor.lifecycle.compression import compress_day
from ingestor.lifecycle.erasure import erase_user
from ingestor.lifecycle.jobs import lifecycle_jobs
from ingestor.lifecycle.policy import LifecycleError
from ingestor.lifecycle.salvage import STEPS
from ingestor.recovery import repair_day_files
from shared.compressed import ZSTD, SegmentState, walk
from shared.db import connect_writer_sync
from shared.layout import StorageLayout, Stream
from shared.quarantine import quarantined
from shared.reader import ReadCounts, iter_lines
from shared.settings import Settings
from tests.conftest import TEST_SECRET, AiohttpClient
from tests.support.drivers.storage import day_events, read_ids, write_day
from tests.support.events import make_event
from tests.support.statistics_oracle import applied

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def layout(config: Settings, monkeypatch: pytest.MonkeyPatch) -> StorageLayout:
    """The test data directory's layout, with its folders; the CLI reads the same directory."""
    monkeypatch.setenv("CHATLOG_DATA_DIR", str(config.data_dir))
    monkeypatch.setenv("CHATLOG_USER_HASH_SECRET", TEST_SECRET)
    layout = StorageLayout.from_settings(config)
    layout.ensure_dirs()
    return layout


def _two_frame_day(
    layout: StorageLayout, day: date, first_count: int = 100, late_count: int = 103, **late_fields: str
) -> tuple[Path, list[str], list[str]]:
    """A compressed day (one frame) that got late events appended as a second frame."""
    first = day_events(day, first_count, seed=3)
    write_day(layout, Stream.LOGS, day, first)
    compress_day(layout, Stream.LOGS, day, level=3)
    late = [{**e, **late_fields} for e in day_events(day, late_count, seed=4)]
    writer = DayFileWriter(layout)
    try:
        writer.append({(Stream.LOGS, day): [json.dumps(e).encode() + b"\n" for e in late]})
    finally:
        writer.close()
    path = layout.day_files(Stream.LOGS, day).zst
    assert path is not None
    return path, [e["log_id"] for e in first], [e["log_id"] for e in late]


def _frames(path: Path) -> list[tuple[int, int]]:
    with open(path, "rb") as f:
        segments = list(walk(f, ZSTD))
    assert all(s.state is SegmentState.OK for s in segments)
    return [(s.start, s.end) for s in segments]


def _flip(path: Path, at: int) -> bytes:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x5A
    path.write_bytes(bytes(data))
    return bytes(data)


def test_flipped_byte_in_first_frame_keeps_the_second_and_the_original(layout: StorageLayout) -> None:
    """Start-up repair no longer cuts a damaged two-frame .zst to nothing (the hostile run's case)."""
    day = layout.today() - timedelta(days=10)
    path, _first_ids, late_ids = _two_frame_day(layout, day)
    (start, end), _ = _frames(path)
    damaged = _flip(path, (start + end) // 2)
    report = repair_day_files(layout)
    counts = ReadCounts()
    assert [json.loads(line)["log_id"] for line in iter_lines(path, counts)] == late_ids
    assert counts == ReadCounts(lines=103)
    (kept,) = quarantined(layout)
    assert kept.day_file == path and kept.path.read_bytes() == damaged
    (salvage,) = report.salvaged
    assert salvage.lines_kept == 103 and salvage.frames_kept == 1 and salvage.quarantined == kept.path
    assert kept.path.stat().st_mode & 0o777 == 0o640
    # A second start finds nothing left to do, and keeps the one quarantined original.
    again = repair_day_files(layout)
    assert not again.salvaged and again.torn_bytes == 0
    assert quarantined(layout) == [kept] and len(list(iter_lines(path))) == 103


def test_verify_names_the_damaged_file_and_what_was_salvaged(
    layout: StorageLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    """`chatlog verify` exits non-zero while a damaged original is in quarantine, and says what was kept."""
    day = layout.today() - timedelta(days=10)
    path, _, _ = _two_frame_day(layout, day)
    (start, end), _ = _frames(path)
    _flip(path, (start + end) // 2)
    assert chatlog(["verify"]) == 1  # damaged in place, before any repair
    assert "damaged and unreadable" in capsys.readouterr().out
    repair_day_files(layout)
    assert chatlog(["verify"]) == 1
    out = capsys.readouterr().out
    (kept,) = quarantined(layout)
    assert f"DAMAGED {path}: damaged original" in out and str(kept.path) in out and "103 lines" in out
    assert chatlog(["verify", "--json"]) == 1
    (entry,) = json.loads(capsys.readouterr().out)["quarantined"]
    assert entry["day_file"] == str(path) and entry["salvaged_lines"] == 103 and entry["damaged_runs"] == 1
    kept.path.unlink()  # the operator dealt with it
    assert chatlog(["verify"]) == 0


def test_only_a_torn_last_frame_is_cut(layout: StorageLayout) -> None:
    """A cut-short last frame is a torn append and is cut; a corrupt whole last frame is kept aside."""
    day = layout.today() - timedelta(days=10)
    path, first_ids, _late_ids = _two_frame_day(layout, day)
    whole = path.read_bytes()
    path.write_bytes(whole[:-7])
    report = repair_day_files(layout)
    assert report.torn_bytes == len(whole) - 7 - _frames(path)[-1][1] and not report.salvaged
    assert read_ids(layout) == first_ids and not quarantined(layout)
    path.write_bytes(whole)
    damaged = _flip(path, len(whole) - 30)  # inside the last frame, which is complete
    report = repair_day_files(layout)
    assert report.torn_bytes == 0 and len(report.salvaged) == 1
    assert read_ids(layout) == first_ids
    (kept,) = quarantined(layout)
    assert kept.path.read_bytes() == damaged


def test_writer_appends_after_damage_without_cutting_it(layout: StorageLayout) -> None:
    """A running writer reopening a damaged .zst appends a readable frame and leaves the damage alone."""
    day = layout.today() - timedelta(days=10)
    path, _first_ids, late_ids = _two_frame_day(layout, day)
    (start, _end), _ = _frames(path)
    damaged = _flip(path, start + 40)
    writer = DayFileWriter(layout)
    try:
        writer.append({(Stream.LOGS, day): [b'{"log_id": "later"}\n']})
    finally:
        writer.close()
    assert path.read_bytes().startswith(damaged)
    assert read_ids(layout) == [*late_ids, "later"]


def test_a_salvage_that_fails_leaves_the_file_and_start_up_goes_on(layout: StorageLayout) -> None:
    """No room for the salvaged copy (here: its name is taken): the file stays as it was, nothing is linked."""
    day = layout.today() - timedelta(days=10)
    path, _, late_ids = _two_frame_day(layout, day)
    (start, end), _ = _frames(path)
    damaged = _flip(path, (start + end) // 2)
    path.with_name(path.name + ".salvage.tmp").mkdir()
    report = repair_day_files(layout)
    assert [p for p, _ in report.failed] == [path] and not report.salvaged
    assert path.read_bytes() == damaged and not quarantined(layout)
    assert read_ids(layout) == late_ids


@pytest.mark.parametrize("crash_at", STEPS)
def test_crash_at_every_salvage_step_loses_nothing_readable(layout: StorageLayout, crash_at: str) -> None:
    """Killed at any salvage step, the next start ends with the original in quarantine once and its readable lines."""
    day = layout.today() - timedelta(days=10)
    path, _, late_ids = _two_frame_day(layout, day)
    (start, end), _ = _frames(path)
    damaged = _flip(path, (start + end) // 2)
    proc = subprocess.run(
        [sys.executable, "-m", "tests.support.drivers.salvage_crash", str(layout.root), str(path), crash_at],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == -9, proc.stderr
    repair_day_files(layout)
    assert read_ids(layout) == late_ids
    assert [q.path.read_bytes() for q in quarantined(layout)] == [damaged]
    assert not list(layout.stream_dir(Stream.LOGS).glob("*.tmp"))


def _daily_events(db_path: Path, day: date) -> int:
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        row = conn.execute(
            "SELECT message_count FROM chat_statistics_daily WHERE scope = '' AND date = ?", (day.isoformat(),)
        ).fetchone()
    return int(row[0]) if row else 0


async def test_ingestor_reports_damage_and_rebuild_keeps_the_statistics(
    aiohttp_client: AiohttpClient, config: Settings, layout: StorageLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    """End to end: /healthz names the damaged file (still 200), late events still land, stats survive a rebuild."""
    rng = random.Random(8)
    when = (datetime.now(UTC) - timedelta(days=10)).replace(hour=12, minute=0, second=0, microsecond=0)
    day = layout.day_of(when)
    ingest = await aiohttp_client(create_ingestor(config))
    first = [make_event(rng, created_at=when + timedelta(seconds=i)) for i in range(100)]
    assert (await ingest.post("/v1/logs", json=first)).status == 202
    (compress,) = [job for job in lifecycle_jobs(ingest.server.app) if job.name == "lifecycle-compress"]
    assert (await compress.run()).startswith("compressed 1 files")
    late = [make_event(rng, created_at=when + timedelta(minutes=30, seconds=i)) for i in range(103)]
    assert (await ingest.post("/v1/logs", json=late)).status == 202
    await applied(config, 203)
    await ingest.close()
    assert _daily_events(config.db_path, day) == 203
    path = layout.day_files(Stream.LOGS, day).zst
    assert path is not None
    (start, end), _ = _frames(path)
    _flip(path, (start + end) // 2)

    ingest = await aiohttp_client(create_ingestor(config))
    health = await ingest.get("/healthz")
    body = await health.json()
    assert health.status == 200 and body["status"] == "ok"
    (entry,) = body["damaged_files"]
    assert entry["day_file"] == str(path) and Path(entry["quarantined"]).read_bytes() != path.read_bytes()
    assert read_ids(layout) == [e["log_id"] for e in late]
    (verify,) = [job for job in lifecycle_jobs(ingest.server.app) if job.name == "storage-verify"]
    with pytest.raises(LifecycleError, match="damaged original"):
        await verify.run()
    metrics = await (await ingest.get("/metrics")).text()
    assert "chatlog_storage_damaged_files 1.0" in metrics
    extra = make_event(rng, created_at=when + timedelta(minutes=50))
    assert (await ingest.post("/v1/logs", json=extra)).status == 202
    assert read_ids(layout) == [e["log_id"] for e in late] + [extra["log_id"]]
    # The day's applied count was set back to the salvaged file's lines: the late event is applied.
    await applied(config, 204)
    await ingest.close()
    assert _daily_events(config.db_path, day) == 204

    text = day.isoformat()
    assert await asyncio.to_thread(chatlog, ["rebuild-stats", "--from", text, "--to", text]) == 0
    assert "with unreadable data kept their rows" in capsys.readouterr().out
    assert _daily_events(config.db_path, day) >= 203


def test_erasure_drops_quarantined_originals_that_hold_the_user(config: Settings, layout: StorageLayout) -> None:
    """A quarantined original is kept whole for forensics, but not past an erasure of a user it holds."""
    day = layout.today() - timedelta(days=10)
    path, _, _ = _two_frame_day(layout, day, 50, 20, user_hash="victim-hash")
    (start, end), _ = _frames(path)
    _flip(path, (start + end) // 2)
    repair_day_files(layout)
    (kept,) = quarantined(layout)
    with contextlib.closing(connect_writer_sync(config.db_path)) as conn:
        report = erase_user(layout, conn, "victim-hash")
    assert report.quarantined_files == 1 and not kept.path.exists()
    assert b"victim-hash" not in path.read_bytes() and not list(iter_lines(path))
