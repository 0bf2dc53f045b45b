"""Compression of day files to .jsonl.zst: round trip, torn tails, late lines, crash safety."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import msgspec
import pytest

from chatlog.cli import main as chatlog
from ingestor.dayfiles import DayFileWriter
from ingestor.lifecycle.compression import STEPS, compress_day, compress_due, due_for_compression
from ingestor.lifecycle.verification import verify_storage
from ingestor.recovery import repair_day_files
from shared.layout import StorageLayout, Stream
from shared.locking import writer_lock
from shared.reader import ReadCounts, iter_lines
from shared.settings import Settings
from tests.support.drivers.storage import day_events, read_ids, write_day

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def layout(config: Settings) -> StorageLayout:
    """The test data directory's layout, with its folders."""
    layout = StorageLayout.from_settings(config)
    layout.ensure_dirs()
    return layout


def test_round_trip_keeps_every_line_byte_for_byte(layout: StorageLayout, config: Settings) -> None:
    """A compressed day reads back the same lines, in order, split into line-aligned frames."""
    day = layout.today() - timedelta(days=10)
    plain = write_day(layout, Stream.LOGS, day, day_events(day, 400, seed=1))
    before = list(iter_lines(plain))
    size = plain.stat().st_size
    result = compress_day(layout, Stream.LOGS, day, level=3, frame_bytes=32 << 10)
    assert result is not None and result.bytes_before == size and result.torn_bytes == 0
    files = layout.day_files(Stream.LOGS, day)
    assert files.plain is None and files.zst is not None
    assert not list(layout.stream_dir(Stream.LOGS).glob("*.tmp"))
    counts = ReadCounts()
    assert list(iter_lines(files.zst, counts)) == before
    assert counts == ReadCounts(lines=400)
    assert result.frames > 3 and result.bytes_after < size / 3
    (check,) = verify_storage(layout, config).files
    assert check.frames == result.frames and not check.damaged
    assert "질문 번호" in msgspec.json.decode(before[0])["message_content"]


def test_torn_tail_is_dropped_and_counted(layout: StorageLayout) -> None:
    """An unterminated last line (a crashed append, never acknowledged) is not compressed."""
    day = layout.today() - timedelta(days=9)
    plain = write_day(layout, Stream.LOGS, day, day_events(day, 20, seed=2))
    with open(plain, "ab") as f:
        f.write(b'{"log_id": "torn", "sess')
    result = compress_day(layout, Stream.LOGS, day, level=3)
    assert result is not None and result.torn_bytes == len(b'{"log_id": "torn", "sess')
    counts = ReadCounts()
    assert len(read_ids(layout, counts=counts)) == 20 and counts.torn == 0


def test_due_days_follow_the_settings_and_spare_recent_days(
    layout: StorageLayout, config: Settings
) -> None:
    """Only days older than compress-after (and never today or yesterday) are compressed."""
    today = layout.today()
    for age in (0, 1, 2, 3, 7, 8, 40):
        day = today - timedelta(days=age)
        write_day(layout, Stream.LOGS, day, day_events(day, 3, seed=age))
        write_day(layout, Stream.CONVERSATIONS, day, day_events(day, 3, seed=age))
    due = due_for_compression(layout, config)
    # Past retention (40 days) is left for retention to delete.
    assert due == [(Stream.LOGS, today - timedelta(days=8)), (Stream.CONVERSATIONS, today - timedelta(days=8))]
    eager = Settings.for_data_dir(config.data_dir, log_compress_after_days=1, conversation_compress_after_days=3)
    report = compress_due(layout, eager)
    compressed = {(d.stream, (today - d.day).days) for d in report.done}
    assert compressed == {
        (Stream.LOGS, 2), (Stream.LOGS, 3), (Stream.LOGS, 7), (Stream.LOGS, 8),
        (Stream.CONVERSATIONS, 7), (Stream.CONVERSATIONS, 8),
    }
    assert layout.day_files(Stream.LOGS, today - timedelta(days=1)).zst is None
    assert "compressed 6 files" in report.account()


def test_lines_appended_during_compression_are_taken_in(layout: StorageLayout) -> None:
    """A late event appended while the bulk is compressed lands in the .zst, read once."""
    day = layout.today() - timedelta(days=12)
    events = day_events(day, 50, seed=3)
    write_day(layout, Stream.LOGS, day, events)
    files = DayFileWriter(layout, zstd_level=3)
    late = day_events(day, 2, seed=4)

    def append_late(step: str) -> None:
        if step == "tmp-synced":
            files.append({(Stream.LOGS, day): [msgspec.json.encode(e) + b"\n" for e in late]})

    try:
        result = compress_day(layout, Stream.LOGS, day, level=3, files=files, steps=append_late)
    finally:
        files.close()
    assert result is not None
    assert read_ids(layout) == [e["log_id"] for e in events + late]
    assert layout.day_files(Stream.LOGS, day).plain is None


def test_cli_compress_and_its_lock(
    layout: StorageLayout, config: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`chatlog compress` compresses due days and refuses while the data directory is in use."""
    monkeypatch.setenv("CHATLOG_DATA_DIR", str(config.data_dir))
    day = layout.today() - timedelta(days=8)
    write_day(layout, Stream.LOGS, day, day_events(day, 10, seed=5))
    with writer_lock(layout):
        assert chatlog(["compress"]) == 1
    assert "in use by another chatlog writer" in capsys.readouterr().err
    assert chatlog(["compress", "--dry-run"]) == 0
    assert "would compress" in capsys.readouterr().out
    assert chatlog(["compress", "--level", "9"]) == 0
    assert "compressed 1 files" in capsys.readouterr().out
    assert layout.day_files(Stream.LOGS, day).zst is not None
    assert len(read_ids(layout)) == 10


def test_cli_compress_on_a_fresh_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`chatlog compress` works on a data directory that has no database yet, creating it."""
    monkeypatch.setenv("CHATLOG_DATA_DIR", str(tmp_path / "fresh"))
    assert chatlog(["compress"]) == 0
    assert (tmp_path / "fresh" / "chatlog.sqlite3").exists()


@pytest.mark.slow
def test_crash_at_every_step_leaves_each_event_readable_once(tmp_path: Path) -> None:
    """SIGKILL before and after each compression step: never missing, never doubled."""
    runs = {}
    for step in STEPS:
        settings = Settings.for_data_dir(tmp_path / step)
        layout = StorageLayout.from_settings(settings)
        layout.ensure_dirs()
        day = layout.today() - timedelta(days=10)
        events = day_events(day, 300, seed=6)
        write_day(layout, Stream.LOGS, day, events)
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.drivers.compress_crash",
             str(settings.data_dir), day.isoformat(), step],
            cwd=REPO,
        )
        runs[step] = (proc, layout, settings, [e["log_id"] for e in events])
    for step, (proc, layout, settings, expected) in runs.items():
        assert proc.wait(timeout=30) == -signal.SIGKILL, step
        names = sorted(os.listdir(layout.stream_dir(Stream.LOGS)))
        assert read_ids(layout) == expected, (step, names)
        # What a restart does: start-up repair, then the next scheduled compression.
        repair_day_files(layout)
        compress_due(layout, settings)
        assert sorted(os.listdir(layout.stream_dir(Stream.LOGS))) == [f"{names[0][:10]}.jsonl.zst"], step
        assert read_ids(layout) == expected, step
        assert not verify_storage(layout, settings).damaged, step
