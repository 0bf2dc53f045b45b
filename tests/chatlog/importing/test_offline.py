"""``chatlog import`` with the ingestor stopped: the guide's files into the day files, then the derived state."""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import json
import os
import pty
import signal
import sqlite3
import struct
import subprocess
import sys
import termios
import time
from datetime import date
from pathlib import Path

import pytest
import zstandard

from chat_statistics.reads import query_summary
from tests.support.guide_logs import (
    FIXTURE_USER_IDS,
    GUIDE_DIR,
    day_file_lines,
    every_byte,
    guide_lines,
    import_env,
    run_import,
)

pytestmark = pytest.mark.slow
FIXTURES = sorted(str(p) for p in GUIDE_DIR.glob("*.jsonl"))
VALID_EVENTS = 16  # 10 on 2026-06-14 and 6 on 2026-06-15; 6 lines are malformed, one is blank


def summary(data_dir: Path, first: str = "2026-06-14", last: str = "2026-06-15") -> tuple[int, int, int]:
    """total_queries, unique_sessions and total_tokens of the range, from the statistics tables."""
    with contextlib.closing(sqlite3.connect(data_dir / "chatlog.sqlite3")) as conn:
        s = query_summary(conn, None, date.fromisoformat(first), date.fromisoformat(last), 10)
    return s.total_queries, s.unique_sessions, s.total_tokens


def applied_lines(data_dir: Path, day: str) -> int:
    with contextlib.closing(sqlite3.connect(data_dir / "chatlog.sqlite3")) as conn:
        row = conn.execute("SELECT lines FROM ingest_offsets WHERE stream = 'data' AND day = ?", (day,)).fetchone()
    return int(row[0]) if row else 0


def test_the_guide_files_are_imported_with_rejects_named_and_nothing_raw(tmp_path: Path) -> None:
    data = tmp_path / "data"
    rejects = tmp_path / "rejects.jsonl"
    done = run_import(import_env(data), *FIXTURES, "--rejects", str(rejects))
    assert done.returncode == 0, done.stderr
    assert f"imported {VALID_EVENTS} events into 2 day files" in done.stdout
    assert "derived state caught up (16 new lines" in done.stdout
    assert "rejected 6 lines" in done.stdout
    entries = [json.loads(line) for line in rejects.read_text().splitlines()]
    source = str(GUIDE_DIR / "2026-06-14.jsonl")
    assert [(e["source"], e["line"], e["path"]) for e in entries] == [
        (source, 4, "$"), (source, 7, "$.session_id"), (source, 9, "$.message_type"),
        (source, 15, "$.performance.response_time_ms"), (source, 16, "$.created_at"), (source, 17, "$.request_id"),
    ]
    assert "not JSON" in entries[0]["reason"] and "Invalid enum value 'bot'" in entries[2]["reason"]
    assert rejects.stat().st_mode & 0o777 == 0o640
    # Only numbers and reasons in the rejects file: none of the lines' text.
    assert "세션 없음" not in rejects.read_text() and "req-77" not in rejects.read_text()

    first, second = day_file_lines(data, "2026-06-14"), day_file_lines(data, "2026-06-15")
    assert (len(first), len(second)) == (10, 6)
    # Naive 2026-06-14T23:30 is Seoul time (CHATLOG_TIMEZONE): it stays on the 14th.
    assert any(r["created_at"] == "2026-06-14T14:30:00Z" for r in first)
    assert all(r["log_id"] and r["user_hash"] for r in first + second)
    redacted = " ".join(r["message_content"] for r in first + second)
    assert "[PHONE]" in redacted and "[EMAIL]" in redacted and "010-1234-5678" not in redacted
    flat = next(r for r in first if r["message_type"] == "assistant" and r["collection_name"] == "it-support"
                and "VPN" in r["message_content"])
    assert flat["performance"] == {"response_time_ms": 2346, "token_count": 422}
    stored = every_byte(data)
    for raw in FIXTURE_USER_IDS:
        assert raw.encode() not in stored
    # Statistics count the imported events: 8 questions, 8 sessions, every answer's tokens.
    tokens = sum(r.get("performance", {}).get("token_count", 0) for r in first + second)
    assert summary(data) == (8, 8, tokens)
    assert applied_lines(data, "2026-06-14") == 10


def test_a_rerun_imports_nothing_twice_and_changes_no_byte(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = import_env(data)
    assert run_import(env, *FIXTURES).returncode == 0
    before = {p.name: p.read_bytes() for p in (data / "data").iterdir()}
    counted = summary(data)
    again = run_import(env, str(GUIDE_DIR / "*.jsonl"))  # a quoted glob, expanded by the command
    assert again.returncode == 0, again.stderr
    assert "imported 0 events" in again.stdout and f"skipped {VALID_EVENTS} events already stored" in again.stdout
    assert {p.name: p.read_bytes() for p in (data / "data").iterdir()} == before
    assert summary(data) == counted


def test_gzip_zstd_and_stdin_inputs_store_the_same_lines(tmp_path: Path) -> None:
    plain = b"".join(Path(f).read_bytes() for f in FIXTURES)
    gz = tmp_path / "logs.jsonl.gz"
    gz.write_bytes(gzip.compress(plain))
    zst = tmp_path / "logs.zst"
    # Two frames, as a day file that got a late append has.
    half = len(plain) // 2
    compressor = zstandard.ZstdCompressor()
    zst.write_bytes(compressor.compress(plain[:half]) + compressor.compress(plain[half:]))
    stored = {}
    for name, args, stdin in (("plain", FIXTURES, None), ("gz", [str(gz)], None), ("zst", [str(zst)], None),
                              ("stdin", ["-"], gzip.compress(plain))):
        data = tmp_path / name
        done = run_import(import_env(data), *args, stdin=None if stdin is None else plain)
        assert done.returncode == 0, done.stderr
        assert f"imported {VALID_EVENTS} events" in done.stdout and "rejected 6 lines" in done.stdout, name
        stored[name] = [(data / "data" / d).read_bytes() for d in ("2026-06-14.jsonl", "2026-06-15.jsonl")]
    assert stored["gz"] == stored["plain"] == stored["zst"] == stored["stdin"]


def test_the_naive_timezone_flag_moves_naive_times(tmp_path: Path) -> None:
    data = tmp_path / "data"
    done = run_import(import_env(data), *FIXTURES, "--naive-timezone", "UTC")
    assert done.returncode == 0, done.stderr
    # 2026-06-14 23:30 UTC is 08:30 on the 15th in Seoul: that question and its answer move a day on.
    assert (len(day_file_lines(data, "2026-06-14")), len(day_file_lines(data, "2026-06-15"))) == (8, 8)


def test_a_compressed_old_day_gets_a_new_frame_and_is_counted(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = import_env(data, CHATLOG_LOG_COMPRESS_AFTER_DAYS="7")
    assert run_import(env, FIXTURES[0]).returncode == 0
    compress = subprocess.run([sys.executable, "-m", "chatlog", "compress"], env=env, capture_output=True,
                              text=True, check=False)
    assert compress.returncode == 0, compress.stderr
    zst = data / "data" / "2026-06-14.jsonl.zst"
    assert zst.exists() and not (data / "data" / "2026-06-14.jsonl").exists()
    late = tmp_path / "late.jsonl"
    late.write_text("\n".join(guide_lines(date(2026, 6, 14), 40)) + "\n")
    done = run_import(env, str(late))
    assert done.returncode == 0, done.stderr
    assert "imported 40 events into 1 day files" in done.stdout and "already compressed" in done.stdout
    assert not (data / "data" / "2026-06-14.jsonl").exists()
    frames = zst.read_bytes().count(b"\x28\xb5\x2f\xfd")
    assert frames >= 2
    assert len(day_file_lines(data, "2026-06-14")) == 50
    assert applied_lines(data, "2026-06-14") == 50
    assert summary(data, last="2026-06-14")[0] == 5 + 20


def test_a_killed_import_loses_nothing_and_a_rerun_completes_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = import_env(data)
    source = tmp_path / "month.jsonl"
    days = [date(2026, 6, d) for d in range(1, 11)]
    with source.open("w") as f:
        for day in days:
            f.write("\n".join(guide_lines(day, 3000)) + "\n")
    counts: list[tuple[int, int]] = []
    # Killed while writing the day files, then again while the derived state catches up.
    for wait_for in (data / "data" / "2026-06-03.jsonl", data / "data" / "2026-06-10.jsonl"):
        proc = subprocess.Popen([sys.executable, "-m", "chatlog", "import", str(source)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not wait_for.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.5)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        stored = [r["log_id"] for day in days for r in day_file_lines(data, day.isoformat())]
        assert len(stored) == len(set(stored))
        counts.append((len(stored), sum(applied_lines(data, d.isoformat()) for d in days)))
    # The first kill came mid-write, the second before the derived state had applied everything.
    assert 0 < counts[0][0] < 30_000 and counts[1][1] < 30_000
    done = run_import(env, str(source))
    assert done.returncode == 0, done.stderr
    ids = [r["log_id"] for day in days for r in day_file_lines(data, day.isoformat())]
    assert len(ids) == len(set(ids)) == 30_000
    assert summary(data, "2026-06-01", "2026-06-10")[0] == 15_000
    assert sum(applied_lines(data, d.isoformat()) for d in days) == 30_000


def test_the_progress_bar_shows_only_on_a_terminal(tmp_path: Path) -> None:
    env = import_env(tmp_path / "data")
    master, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "chatlog", "import", *FIXTURES], env=env,
                            stdout=subprocess.PIPE, stderr=terminal)
    os.close(terminal)
    shown = b""
    with contextlib.suppress(OSError):  # EIO once the command has exited
        while chunk := os.read(master, 65536):
            shown += chunk
    os.close(master)
    assert proc.wait(60) == 0
    assert proc.stdout is not None
    proc.stdout.close()
    assert b"import: 100%|" in shown and b"imported=16" in shown
    piped = run_import(import_env(tmp_path / "again"), *FIXTURES)
    assert piped.returncode == 0 and "%|" not in piped.stderr
