"""Recompute statistics from the day files: the CLI's ``rebuild-stats`` and the daily finalise.

Statistics always describe exactly the lines the ingestor has applied to SQLite
(``ingest_offsets``): the rebuild of a day reads that many lines of its file, and
lines written since are left to the live path, which adds them on top. So a
rebuild can run beside a live ingestor: it aggregates outside any lock, then
replaces the day's rows in one short ``BEGIN IMMEDIATE`` transaction if the offset
has not moved meanwhile (and re-reads if it has). A day whose file is gone
(retention) keeps its rows.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from tqdm import tqdm

from shared.db import connect_writer_sync
from shared.layout import StorageLayout, Stream, date_range
from shared.stats.aggregate import DayRows, aggregate_day
from shared.stats.frames import DayColumns, parse_lines, read_day
from shared.stats.reach import recompute_reach
from shared.stats.schema import DAILY, HOURLY, OVERALL, QUERIES, SESSIONS, insert_sql
from shared.stats.sessions import bump_generation

log = logging.getLogger("chatlog.stats.rebuild")

_OPTIMISTIC_TRIES = 3


@dataclass
class RebuildReport:
    """What a rebuild did."""

    days: int = 0
    events: int = 0
    missing: list[date] = field(default_factory=list)
    seconds: float = 0.0

    def describe(self, first: date, last: date) -> str:
        """One line for the operator."""
        rate = self.events / self.seconds if self.seconds else 0.0
        text = (
            f"rebuilt statistics of {first}..{last}: {self.days} day(s), {self.events:,} events "
            f"in {self.seconds:.1f} s ({rate:,.0f} events/s)"
        )
        if self.missing:
            text += f"; {len(self.missing)} day(s) without a log file kept their rows"
        return text


def _applied_lines(conn: sqlite3.Connection, day: date) -> int:
    row = conn.execute(
        "SELECT lines FROM ingest_offsets WHERE stream = ? AND day = ?", (Stream.LOGS.value, day.isoformat())
    ).fetchone()
    return int(row[0]) if row else 0


def day_columns(path: Path, applied: int, tz: ZoneInfo) -> DayColumns:
    """The columns of the first ``applied`` lines of a day file."""
    lines = read_day(path)
    if applied > lines.lines:
        log.warning("%s: %d lines applied but only %d readable; using those", path, applied, lines.lines)
    return parse_lines(lines.first(applied), tz)


def _replace_day(conn: sqlite3.Connection, day: date, rows: DayRows) -> None:
    iso = day.isoformat()
    for table in (HOURLY, OVERALL, DAILY, QUERIES, SESSIONS):
        conn.execute(f"DELETE FROM {table} WHERE date = ?", (iso,))
    conn.executemany(insert_sql(HOURLY), rows.hourly)
    conn.executemany(insert_sql(OVERALL), rows.overall)
    conn.executemany(insert_sql(DAILY), rows.daily)
    conn.executemany(f"INSERT INTO {QUERIES} VALUES (?, ?, ?, ?, ?, ?)", rows.queries)
    conn.executemany(f"INSERT INTO {SESSIONS} VALUES (?, ?, ?, ?)", rows.sessions)
    bump_generation(conn)


def rebuild_day(
    conn: sqlite3.Connection,
    tz: ZoneInfo,
    day: date,
    path: Path,
    finalise: bool,
    prepared: tuple[int, Future[DayColumns]] | None = None,
) -> int:
    """Replace one day's rows with those of its applied lines; return the events counted.

    ``prepared`` is (applied lines, columns being parsed) from a read-ahead.
    """
    for _ in range(_OPTIMISTIC_TRIES):
        if prepared is not None:
            applied, columns = prepared[0], prepared[1].result()
            prepared = None
        else:
            applied = _applied_lines(conn, day)
            columns = day_columns(path, applied, tz)
        rows = aggregate_day(columns, day, finalise)
        conn.execute("BEGIN IMMEDIATE")
        try:
            if _applied_lines(conn, day) != applied:
                conn.execute("ROLLBACK")
                continue
            _replace_day(conn, day, rows)
            conn.execute("COMMIT")
            return rows.events
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    # Late events keep arriving for this day: read it while holding the write lock.
    conn.execute("BEGIN IMMEDIATE")
    try:
        rows = aggregate_day(day_columns(path, _applied_lines(conn, day), tz), day, finalise)
        _replace_day(conn, day, rows)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return rows.events


def rebuild(
    db_path: Path, layout: StorageLayout, first: date, last: date, progress: bool = False
) -> RebuildReport:
    """Recompute the statistics of ``first..last`` (inclusive) from the log day files."""
    started = time.perf_counter()
    report = RebuildReport()
    today = layout.today()
    conn = connect_writer_sync(db_path)
    # One day is parsed ahead (pyarrow releases the GIL) while the previous one is aggregated.
    reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rebuild-read")
    try:
        work = [(day, layout.day_files(Stream.LOGS, day).readable) for day in date_range(first, last)]
        report.missing = [day for day, path in work if path is None]
        found = [(day, path) for day, path in work if path is not None]

        def read_ahead(index: int) -> tuple[int, Future[DayColumns]] | None:
            if index >= len(found):
                return None
            day, path = found[index]
            applied = _applied_lines(conn, day)
            return applied, reader.submit(day_columns, path, applied, layout.tz)

        ahead = read_ahead(0)
        for index, (day, path) in enumerate(
            tqdm(found, desc="rebuild-stats", unit="day", disable=None if progress else True)
        ):
            current, ahead = ahead, read_ahead(index + 1)
            report.events += rebuild_day(conn, layout.tz, day, path, day < today, current)
            report.days += 1
        # Distinct sessions over ranges link each day to the session's previous one, so
        # every later day's links are recomputed too (from the activity table, quickly).
        conn.execute("BEGIN IMMEDIATE")
        try:
            recompute_reach(conn, first)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        reader.shutdown(wait=True, cancel_futures=True)
        conn.close()
    report.seconds = time.perf_counter() - started
    return report
