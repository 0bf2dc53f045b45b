"""Import benchmark: ``chatlog import`` of guide-format logs, next to the derived catch-up of the same events.

Run: ``python -m bench.importing`` (``--help`` for the size). One run, on this machine:

- writes ``--days`` days of guide-format lines (``json.dumps`` per line as the guide's
  ``HybridLoggingService`` wrote them: naive datetimes, raw user ids, no log_id; Korean
  and English questions and answers with retrieval info), one file per day, half of
  them gzip-compressed as the guide's 7-day compression left them;
- the validation ceiling: the same lines through the import's reader alone, in this
  process (decode, map, validate: what every imported line costs before it is stored);
- offline: ``chatlog import`` on a fresh data directory with the ingestor stopped: the
  day files written (hash, redaction, fsync) and then the derived catch-up of those
  same events (sessions, statistics, quality, conversations), each timed by the command;
- online: the same import through a running ingestor's Unix socket (202 only after
  fsync), and how long its derived-state process then takes to apply them;
- a re-run of the offline import (every event already stored: the id check alone).
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from chatlog.importing.guide import GuideLineReader
from shared.layout import StorageLayout
from shared.settings import Settings
from tests.support.daemon import IngestorProcess
from tests.support.guide_logs import IMPORT_ENV, guide_lines, import_env

FIRST_DAY = date(2026, 5, 1)


def write_inputs(folder: Path, days: int, per_day: int) -> list[Path]:
    """One guide-format file per day; every second one gzip-compressed."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(days):
        day = FIRST_DAY + timedelta(days=i)
        text = ("\n".join(guide_lines(day, per_day)) + "\n").encode()
        path = folder / f"{day.isoformat()}.jsonl"
        if i % 2:
            path = path.with_name(path.name + ".gz")
            path.write_bytes(gzip.compress(text, 6))
        else:
            path.write_bytes(text)
        paths.append(path)
    return paths


def validation_ceiling(paths: list[Path], root: Path) -> float:
    """Lines per second through the import's reader alone (in-process, nothing stored)."""
    settings = Settings.for_data_dir(root)
    reader = GuideLineReader(StorageLayout.from_settings(settings), 3650, settings.timezone)
    lines = []
    for path in paths:
        raw = path.read_bytes()
        lines.extend((gzip.decompress(raw) if path.name.endswith(".gz") else raw).splitlines())
    started = time.perf_counter()
    for line in lines:
        reader.read(line)
    return len(lines) / (time.perf_counter() - started)


def _seconds(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    if match is None:
        raise RuntimeError(f"no {pattern!r} in the import's output:\n{text}")
    return float(match.group(1))


def run_import(env: dict[str, str], paths: list[Path]) -> str:
    done = subprocess.run([sys.executable, "-m", "chatlog", "import", *map(str, paths)], env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"chatlog import failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def main() -> None:
    """Generate, import offline and online, print the figures side by side."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--events-per-day", type=int, default=5000)
    args = parser.parse_args()
    events = args.days * args.events_per_day
    root = Path(tempfile.mkdtemp(prefix="clbench", dir="/tmp"))
    try:
        paths = write_inputs(root / "guide", args.days, args.events_per_day)
        size = sum(p.stat().st_size for p in paths)
        print(f"{events:,} guide-format events in {args.days} day files ({size / 1e6:.1f} MB, half gzip)")
        ceiling = validation_ceiling(paths, root / "scratch")

        offline_env = import_env(root / "offline")
        out = run_import(offline_env, paths)
        written = _seconds(r"under the writer lock \(([\d.]+) s\)", out)
        caught_up = _seconds(r"statistics, ([\d.]+) s\)", out)
        started = time.monotonic()
        rerun = run_import(offline_env, paths)
        rerun_seconds = time.monotonic() - started
        assert f"skipped {events:,} events already stored" in rerun, rerun

        online_dir = root / "online"
        socket_path = root / "ingest.sock"
        ingestor = IngestorProcess(online_dir, socket_path, **IMPORT_ENV).start()
        try:
            out = run_import(import_env(online_dir, socket_path, CHATLOG_LOG_LEVEL="WARNING"), paths)
        finally:
            ingestor.terminate()
        posted = _seconds(r"Unix socket \(([\d.]+) s", out)
        applied = _seconds(r"applied every day \(([\d.]+) s more\)", out)

        rows = [
            ("validation alone (in-process ceiling)", ceiling, None),
            ("offline: day files written (hash, redact, fsync)", events / written, written),
            ("offline: derived catch-up of the same events", events / caught_up, caught_up),
            ("online: stored through the ingestor's socket (202 after fsync)", events / posted, posted),
            ("online: then applied by its derived process", events / (posted + applied), posted + applied),
            ("re-run, everything already stored (whole command)", events / rerun_seconds, rerun_seconds),
        ]
        print(f"{'measure':<66} {'events/s':>10} {'seconds':>8}")
        for name, rate, seconds in rows:
            print(f"{name:<66} {rate:>10,.0f} {'' if seconds is None else f'{seconds:.1f}':>8}")
        print(f"offline import / derived catch-up: {caught_up / written:.1f}x; "
              f"offline import / validation ceiling: {events / written / ceiling:.2f}; "
              f"online / offline import: {written / posted:.2f}; cores: {os.cpu_count()}, "
              f"load average {os.getloadavg()[0]:.1f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
