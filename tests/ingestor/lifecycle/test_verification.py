"""Transparent, damage-tolerant reads and `chatlog verify` on real damaged files and databases."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta
from pathlib import Path

import msgspec
import pytest

from chatlog.cli import main as chatlog
from ingestor.lifecycle.compression import compress_day
from ingestor.lifecycle.verification import verify_storage
from shared.db import connect_writer_sync
from shared.layout import StorageLayout, Stream
from shared.reader import ReadCounts
from shared.settings import Settings
from tests.support.drivers.storage import day_events, read_ids, write_day


@pytest.fixture
def layout(config: Settings, monkeypatch: pytest.MonkeyPatch) -> StorageLayout:
    """The test data directory's layout; the CLI reads the same directory."""
    monkeypatch.setenv("CHATLOG_DATA_DIR", str(config.data_dir))
    layout = StorageLayout.from_settings(config)
    layout.ensure_dirs()
    return layout


def _three_kinds(layout: StorageLayout) -> dict[str, list[str]]:
    """A plain, a .zst (several frames) and a .gz day; the log_ids each holds."""
    today = layout.today()
    ids = {}
    for age, kind in ((1, "plain"), (9, "zst"), (11, "gz")):
        day = today - timedelta(days=age)
        events = day_events(day, 60, seed=age)
        path = write_day(layout, Stream.LOGS, day, events)
        if kind == "zst":
            compress_day(layout, Stream.LOGS, day, level=3, frame_bytes=8 << 10)
        elif kind == "gz":
            path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes()))
            path.unlink()
        ids[kind] = [e["log_id"] for e in events]
    return ids


def test_one_reader_for_plain_zst_and_gz(layout: StorageLayout, config: Settings) -> None:
    """Every kind of day file reads back whole and `chatlog verify` passes on them."""
    ids = _three_kinds(layout)
    counts = ReadCounts()
    assert read_ids(layout, counts=counts) == ids["gz"] + ids["zst"] + ids["plain"]
    assert counts == ReadCounts(lines=180)
    assert chatlog(["verify"]) == 0


def test_torn_and_garbage_lines_are_skipped_and_counted(
    layout: StorageLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    """Garbage lines and torn tails are skipped by readers, counted, and fail `chatlog verify`."""
    ids = _three_kinds(layout)
    plain = layout.day_files(Stream.LOGS, layout.today() - timedelta(days=1)).readable
    assert plain is not None
    with open(plain, "ab") as f:
        f.write(b"\x00\xffbinary junk\n[1, 2]\n" + json.dumps({"log_id": "late"}).encode() + b'\n{"log_id": "to')
    gz = layout.day_files(Stream.LOGS, layout.today() - timedelta(days=11)).readable
    assert gz is not None
    gz.write_bytes(gz.read_bytes()[:-30])  # a cut-short gzip member
    counts = ReadCounts()
    got = read_ids(layout, counts=counts)
    assert got[-61:] == [*ids["plain"], "late"]
    assert counts.corrupt == 2 and counts.torn == 2
    assert chatlog(["verify", "--json"]) == 1
    report = msgspec.json.decode(capsys.readouterr().out)
    assert report["damaged"] is True
    assert report["totals"]["torn"] == 2 and report["totals"]["corrupt"] == 2
    damaged = {Path(f["path"]).name for f in report["files"] if f["problems"]}
    assert damaged == {plain.name, gz.name}


def test_a_damaged_zstd_frame_is_located(layout: StorageLayout, config: Settings,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """A corrupt frame in the middle of a .zst costs only its own lines; verify says where."""
    ids = _three_kinds(layout)
    zst = layout.day_files(Stream.LOGS, layout.today() - timedelta(days=9)).zst
    assert zst is not None
    (healthy,) = [f for f in verify_storage(layout, config).files if f.path == zst]
    assert healthy.frames >= 3
    data = bytearray(zst.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 16] = b"\xaa" * 16
    zst.write_bytes(bytes(data))
    counts = ReadCounts()
    got = read_ids(layout, counts=counts)  # never raises
    read = [i for i in got if i in set(ids["zst"])]
    # Reading resumes at the next frame: the lines after the damaged frame are all there, in order.
    assert 0 < len(read) < 60 and read[-1] == ids["zst"][-1] and read[0] == ids["zst"][0]
    assert read == [i for i in ids["zst"] if i in set(read)]
    assert counts.damaged == 1 and counts.torn == 0 and 0 < counts.skipped_bytes < len(data)
    assert chatlog(["verify"]) == 1
    out = capsys.readouterr().out
    assert f"DAMAGED {zst}" in out and "damaged and unreadable" in out


def test_database_damage_and_offsets_ahead_of_files_fail(
    layout: StorageLayout, config: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """Offsets claiming more lines than a file holds, or a corrupt SQLite file, exit non-zero."""
    assert chatlog(["verify"]) == 0
    assert "no database yet" in capsys.readouterr().out
    day = layout.today() - timedelta(days=2)
    write_day(layout, Stream.LOGS, day, day_events(day, 5, seed=1))
    conn = connect_writer_sync(config.db_path)
    conn.execute("INSERT INTO ingest_offsets (stream, day, lines) VALUES ('data', ?, 4)", (day.isoformat(),))
    assert chatlog(["verify"]) == 0
    assert "1 lines not yet applied" in capsys.readouterr().out
    conn.execute("UPDATE ingest_offsets SET lines = 7")
    assert chatlog(["verify"]) == 1
    assert "applied 7 lines but the day file has 5" in capsys.readouterr().out
    conn.execute("UPDATE ingest_offsets SET lines = 5")
    conn.executemany(
        "INSERT INTO chat_sessions VALUES (?, 'c', 'hr', NULL, 't', 't', 1, 'd')",
        [(f"s{i}" * 20,) for i in range(3000)],
    )
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    assert chatlog(["verify"]) == 0
    capsys.readouterr()
    data = bytearray(config.db_path.read_bytes())
    for page in range(3, len(data) // 4096, 3):
        data[page * 4096 + 100 : page * 4096 + 400] = b"\x5a" * 300
    config.db_path.write_bytes(bytes(data))
    assert chatlog(["verify"]) == 1
    assert "DAMAGED database" in capsys.readouterr().out


def test_leftovers_are_noted_not_damage(layout: StorageLayout, capsys: pytest.CaptureFixture[str]) -> None:
    """A .jsonl beside its .zst and a stale .tmp are reported as notes; the day reads once."""
    day = layout.today() - timedelta(days=9)
    events = day_events(day, 10, seed=3)
    plain = write_day(layout, Stream.LOGS, day, events)
    saved = plain.read_bytes()
    compress_day(layout, Stream.LOGS, day, level=3)
    plain.write_bytes(saved)
    (plain.parent / "2026-01-01.jsonl.zst.tmp").write_bytes(b"x")
    assert read_ids(layout) == [e["log_id"] for e in events]
    assert chatlog(["verify"]) == 0
    out = capsys.readouterr().out
    assert "leftover of an interrupted compression" in out and "leftover temporary file" in out
