"""``chatlog import`` while the ingestor runs: through its Unix socket, counted by its derived state."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import date
from pathlib import Path

import pytest

from tests.chatlog.importing.test_offline import FIXTURES, applied_lines, summary
from tests.support.daemon import IngestorProcess
from tests.support.events import make_event
from tests.support.guide_logs import (
    FIXTURE_USER_IDS,
    IMPORT_ENV,
    day_file_lines,
    every_byte,
    guide_lines,
    import_env,
    run_import,
)

pytestmark = pytest.mark.slow


def count(pattern: str, text: str) -> int:
    """The number (with thousands commas) the pattern's group finds in the command's output."""
    match = re.search(pattern, text)
    assert match is not None, text
    return int(match.group(1).replace(",", ""))


def test_import_through_a_running_ingestor(tmp_path: Path, short_dir: Path) -> None:
    data = tmp_path / "data"
    socket_path = short_dir / "ingest.sock"
    env = import_env(data, socket_path, CHATLOG_LOG_COMPRESS_AFTER_DAYS="7")
    # An old day already compressed before the ingestor starts: the import appends a frame to it.
    assert run_import(env, FIXTURES[1]).returncode == 0
    compress = subprocess.run([sys.executable, "-m", "chatlog", "compress"], env=env, capture_output=True,
                              text=True, check=False)
    assert compress.returncode == 0, compress.stderr
    assert (data / "data" / "2026-06-15.jsonl.zst").exists()
    ingestor = IngestorProcess(data, socket_path, **IMPORT_ENV, CHATLOG_LOG_COMPRESS_AFTER_DAYS="7").start()
    try:
        # Live traffic meanwhile: it is stored and counted beside the import.
        live = b"\n".join(json.dumps(make_event()).encode() for _ in range(5))
        request = urllib.request.Request(ingestor.url + "/v1/logs", data=live,
                                         headers={"Content-Type": "application/x-ndjson"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 202
        late = tmp_path / "late.jsonl"
        late.write_text("\n".join(guide_lines(date(2026, 6, 15), 30)) + "\n")
        done = run_import(env, *FIXTURES, str(late), "--wait", "60")
        assert done.returncode == 0, done.stderr
        assert "through its Unix socket" in done.stdout and "has applied every day" in done.stdout
        assert "imported 40 events into 2 day files" in done.stdout  # the 15th's 6 were there already
        assert "skipped 6 events already stored" in done.stdout and "already compressed" in done.stdout
        # Statistics include it as soon as the command returns.
        assert summary(data)[0] == 8 + 15
        assert applied_lines(data, "2026-06-15") == 36 and applied_lines(data, "2026-06-14") == 10
        again = run_import(env, *FIXTURES, str(late))
        assert again.returncode == 0 and "imported 0 events" in again.stdout, again.stderr
        assert "skipped 46 events already stored" in again.stdout
    finally:
        code, err = ingestor.terminate()
    assert code == 0, err
    assert not (data / "data" / "2026-06-15.jsonl").exists()
    assert len(day_file_lines(data, "2026-06-15")) == 36 and len(day_file_lines(data, "2026-06-14")) == 10
    assert summary(data)[0] == 8 + 15
    stored = every_byte(data)
    for raw in FIXTURE_USER_IDS:
        assert raw.encode() not in stored


def test_an_ingestor_without_its_socket_is_named(tmp_path: Path, short_dir: Path) -> None:
    data = tmp_path / "data"
    ingestor = IngestorProcess(data, short_dir / "ingest.sock", **IMPORT_ENV, CHATLOG_INGEST_SOCKET="").start()
    try:
        done = run_import(import_env(data, CHATLOG_INGEST_SOCKET=""), *FIXTURES)
    finally:
        ingestor.terminate()
    assert done.returncode == 1 and "CHATLOG_INGEST_SOCKET is off" in done.stderr


def test_an_online_import_killed_midway_is_completed_by_a_rerun(tmp_path: Path, short_dir: Path) -> None:
    data = tmp_path / "data"
    socket_path = short_dir / "ingest.sock"
    env = import_env(data, socket_path)
    days = [date(2026, 6, d) for d in range(1, 5)]
    source = tmp_path / "month.jsonl"
    source.write_text("".join("\n".join(guide_lines(day, 5000)) + "\n" for day in days))
    ingestor = IngestorProcess(data, socket_path, **IMPORT_ENV).start()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "chatlog", "import", str(source)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not (data / "data" / "2026-06-02.jsonl").exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        partial = sum(len(day_file_lines(data, d.isoformat())) for d in days)
        assert 0 < partial < 20_000
        done = run_import(env, str(source))
        assert done.returncode == 0 and "has applied every day" in done.stdout, done.stdout + done.stderr
        # A batch the ingestor had taken when the import died is still stored: it counts as stored.
        imported, skipped = count(r"imported ([\d,]+) events", done.stdout), count(r"skipped ([\d,]+)", done.stdout)
        assert skipped >= partial and imported + skipped == 20_000
    finally:
        code, err = ingestor.terminate()
    assert code == 0, err
    ids = [r["log_id"] for d in days for r in day_file_lines(data, d.isoformat())]
    assert len(ids) == len(set(ids)) == 20_000
    assert summary(data, "2026-06-01", "2026-06-04")[0] == 10_000
    assert sum(applied_lines(data, d.isoformat()) for d in days) == 20_000
