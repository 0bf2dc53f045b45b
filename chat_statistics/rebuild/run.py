"""Recompute statistics from the day files: the CLI's ``rebuild-stats`` and the daily finalise.

Statistics always describe exactly the lines the ingestor has applied to SQLite
(``ingest_offsets``): the rebuild of a day reads that many lines of its file, and
lines written since are left to the live path, which adds them on top. So a
rebuild can run beside a live ingestor: it aggregates outside any lock, then
replaces the day's rows in one short ``BEGIN IMMEDIATE`` transaction if the offset
has not moved meanwhile (and re-reads if it has). A day whose file is gone
(retention) keeps its rows.

A day whose file has lost data (damaged bytes, a damaged original in quarantine, or
fewer lines than the database applied) is rebuilt from its readable lines only when
they hold at least as many events as its rows count; otherwise its rows are kept as
they are (``KeptDay``): a rebuild never wipes statistics it can no longer recompute,
nor drops below what is readable.

Only days that have a log file are read, and only days with statistics rows are
reported as kept for want of one, so a range as wide as ``0001-01-01..9999-12-31``
costs what the stored days cost.

Days are read and aggregated a few ahead in worker processes (``workers``) while
this process writes each one's rows in order; the distinct-session links are then
recomputed once, from the activity the workers returned when no day has moved.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from tqdm import tqdm

from chat_statistics.rebuild.aggregate import DayRows
from chat_statistics.rebuild.answers import replace_answers
from chat_statistics.rebuild.quality import rebuild_feedback, replace_quality
from chat_statistics.rebuild.questions import rebuild_answer_feedback, replace_questions
from chat_statistics.rebuild.reach import DayActivity, SessionCodes, recompute_reach
from chat_statistics.rebuild.workers import day_rows, executor
from chat_statistics.sessions import bump_generation
from chat_statistics.tables import ALL_SCOPE, DAILY, HOURLY, OVERALL, QUERIES, SESSIONS, insert_sql
from shared.db import connect_writer_sync
from shared.layout import StorageLayout, Stream
from shared.quarantine import has_quarantined
from shared.reader import ReadCounts, iter_lines

log = logging.getLogger("chatlog.stats.rebuild")

_OPTIMISTIC_TRIES = 3


@dataclass
class RebuildReport:
    """What a rebuild did."""

    days: int = 0
    events: int = 0
    missing: list[date] = field(default_factory=list)
    kept: list[date] = field(default_factory=list)  # days with unreadable data whose rows were kept
    seconds: float = 0.0
    reach_seconds: float = 0.0  # of which relinking distinct sessions across days
    workers: int = 1  # processes (or the one thread) that read and aggregated days
    feedback: int = 0  # pieces of feedback recounted from the feedback stream

    def describe(self, first: date, last: date) -> str:
        """One line for the operator."""
        rate = self.events / self.seconds if self.seconds else 0.0
        text = (
            f"rebuilt statistics of {first}..{last}: {self.days} day(s), {self.events:,} events "
            f"in {self.seconds:.1f} s ({rate:,.0f} events/s)"
        )
        if self.missing:
            text += f"; {len(self.missing)} day(s) without a log file kept their rows"
        if self.kept:
            days = ", ".join(d.isoformat() for d in self.kept[:10]) + (", ..." if len(self.kept) > 10 else "")
            text += (
                f"; {len(self.kept)} day(s) with unreadable data kept their rows ({days}): "
                "their readable lines hold fewer events (see `chatlog verify`)"
            )
        return text


@dataclass
class RebuiltDay:
    """What one day's rebuild wrote: how many lines and events, and its activity for reach."""

    applied: int
    events: int
    activity: DayActivity

    @classmethod
    def of(cls, applied: int, rows: DayRows, codes: SessionCodes) -> RebuiltDay:
        """Keep only what the reach recompute needs of a written day's rows."""
        sessions = codes.of(rows.session_names.to_pylist())
        return cls(applied, rows.events, DayActivity(rows.date, rows.collection_names, sessions, rows.active))


@dataclass(frozen=True)
class KeptDay:
    """A day with unreadable data whose readable lines hold fewer events than its rows: rows kept."""

    readable_events: int
    counted_events: int


def _counted_events(conn: sqlite3.Connection, day: date) -> int:
    row = conn.execute(
        f"SELECT message_count FROM {DAILY} WHERE scope = ? AND date = ?", (ALL_SCOPE, day.isoformat())
    ).fetchone()
    return int(row[0]) if row else 0


def _lost_data(path: Path, applied: int) -> bool:
    """True when some of the day's applied lines can no longer be read from its file."""
    if has_quarantined(path):
        return True
    counts = ReadCounts()
    for _ in iter_lines(path, counts):
        pass
    return bool(counts.damaged) or counts.lines < applied or bool(counts.unreadable_files)


def _keep_rows(conn: sqlite3.Connection, day: date, path: Path, applied: int, rows: DayRows) -> KeptDay | None:
    """A ``KeptDay`` when replacing the day's rows would drop events it can no longer read."""
    counted = _counted_events(conn, day)
    if rows.events >= counted or not _lost_data(path, applied):
        return None
    log.warning(
        "%s has unreadable data: its readable lines hold %d events, its statistics %d; rows kept",
        path, rows.events, counted,
    )
    return KeptDay(rows.events, counted)


def _applied_lines(conn: sqlite3.Connection, day: date) -> int:
    row = conn.execute(
        "SELECT lines FROM ingest_offsets WHERE stream = ? AND day = ?", (Stream.LOGS.value, day.isoformat())
    ).fetchone()
    return int(row[0]) if row else 0


def _replace_day(conn: sqlite3.Connection, day: date, rows: DayRows) -> None:
    iso = day.isoformat()
    for table in (HOURLY, OVERALL, DAILY, QUERIES, SESSIONS):
        conn.execute(f"DELETE FROM {table} WHERE date = ?", (iso,))
    conn.executemany(insert_sql(HOURLY), rows.hourly)
    conn.executemany(insert_sql(OVERALL), rows.overall)
    conn.executemany(insert_sql(DAILY), rows.daily)
    conn.executemany(f"INSERT INTO {QUERIES} VALUES (?, ?, ?, ?, ?, ?)", rows.queries)
    conn.executemany(f"INSERT INTO {SESSIONS} VALUES (?, ?, ?, ?)", rows.session_rows())
    replace_quality(conn, day, rows.quality)
    replace_questions(conn, day, rows.questions)
    replace_answers(conn, day, rows.answers, rows.errors)
    bump_generation(conn)


def rebuild_day(
    conn: sqlite3.Connection,
    tz: ZoneInfo,
    day: date,
    path: Path,
    finalise: bool,
    prepared: tuple[int, Future[DayRows]] | None = None,
    codes: SessionCodes | None = None,
) -> RebuiltDay | KeptDay | None:
    """Replace one day's rows with those of its applied lines (None: its file is gone, rows kept).

    A ``KeptDay`` when the file has lost data and its readable lines would count fewer
    events than the rows hold (the rows are left as they are).

    ``prepared`` is (applied lines, rows being computed) from a worker; ``codes`` codes
    the day's sessions for the reach recompute.
    """
    codes = codes if codes is not None else SessionCodes()
    try:
        for _ in range(_OPTIMISTIC_TRIES):
            if prepared is not None:
                applied, rows = prepared[0], prepared[1].result()
                prepared = None
            else:
                applied = _applied_lines(conn, day)
                rows = day_rows(path, applied, tz, day, finalise)
            conn.execute("BEGIN IMMEDIATE")
            try:
                if _applied_lines(conn, day) != applied:
                    conn.execute("ROLLBACK")
                    continue
                kept = _keep_rows(conn, day, path, applied, rows)
                if kept is not None:
                    conn.execute("ROLLBACK")
                    return kept
                _replace_day(conn, day, rows)
                conn.execute("COMMIT")
                return RebuiltDay.of(applied, rows, codes)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        # Late events keep arriving for this day: read it while holding the write lock.
        conn.execute("BEGIN IMMEDIATE")
        try:
            applied = _applied_lines(conn, day)
            rows = day_rows(path, applied, tz, day, finalise)
            kept = _keep_rows(conn, day, path, applied, rows)
            if kept is not None:
                conn.execute("ROLLBACK")
                return kept
            _replace_day(conn, day, rows)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return RebuiltDay.of(applied, rows, codes)
    except FileNotFoundError:
        # Expired (or moved) since the range was listed: like a day without a file.
        log.warning("%s disappeared during the rebuild; its statistics are kept", path)
        return None


def _stored_days(layout: StorageLayout, conn: sqlite3.Connection, first: date, last: date) -> tuple[
    list[tuple[date, Path]], list[date]
]:
    """The days of ``first..last`` with a log file, and those with statistics rows but no file."""
    found = [
        (day, files.readable)
        for day, files in layout.days(Stream.LOGS).items()
        if first <= day <= last and files.readable is not None
    ]
    with_files = {day for day, _ in found}
    rows = conn.execute(
        f"SELECT DISTINCT date FROM {DAILY} WHERE date BETWEEN ? AND ?", (first.isoformat(), last.isoformat())
    ).fetchall()
    missing = sorted(d for d in (_as_date(r[0]) for r in rows) if d is not None and d not in with_files)
    return found, missing


def _as_date(text: object) -> date | None:
    try:
        return date.fromisoformat(str(text))
    except ValueError:
        return None


def _relink(conn: sqlite3.Connection, first: date, written: list[tuple[date, RebuiltDay]], codes: SessionCodes) -> None:
    """Recompute reach from ``first`` on, reusing the days just written if none has moved since."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        unchanged = all(_applied_lines(conn, day) == done.applied for day, done in written)
        recompute_reach(conn, first, [done.activity for _, done in written] if unchanged else (), codes)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def rebuild(
    db_path: Path,
    layout: StorageLayout,
    first: date,
    last: date,
    progress: bool = False,
    workers: int | None = None,
) -> RebuildReport:
    """Recompute the statistics of ``first..last`` (inclusive) from the log day files.

    ``workers``: processes computing days (None: one per CPU for three days or more;
    1: a thread in this process).
    """
    started = time.perf_counter()
    report = RebuildReport()
    today = layout.today()
    conn = connect_writer_sync(db_path)
    try:
        found, report.missing = _stored_days(layout, conn, first, last)
        pool, report.workers = executor(len(found), workers)
    except BaseException:
        conn.close()
        raise
    written: list[tuple[date, RebuiltDay]] = []
    codes = SessionCodes()
    try:
        ahead: deque[tuple[int, Future[DayRows]]] = deque()
        submitted = 0

        def submit_until(count: int) -> None:
            nonlocal submitted
            while submitted < min(count, len(found)):
                day, path = found[submitted]
                applied = _applied_lines(conn, day)
                ahead.append((applied, pool.submit(day_rows, path, applied, layout.tz, day, day < today)))
                submitted += 1

        # Enough days in flight that no worker waits while this process writes. The first
        # submit starts (forks) the workers, before the progress bar starts its thread.
        window = 2 * report.workers
        submit_until(window)
        for index, (day, path) in enumerate(
            tqdm(found, desc="rebuild-stats", unit="day", disable=None if progress else True)
        ):
            submit_until(index + window)
            done = rebuild_day(conn, layout.tz, day, path, day < today, ahead.popleft(), codes)
            if done is None:
                report.missing.append(day)
                continue
            if isinstance(done, KeptDay):
                report.kept.append(day)
                continue
            written.append((day, done))
            report.events += done.events
            report.days += 1
        # Distinct sessions over ranges link each day to the session's previous one, so
        # every later day's links are recomputed too.
        relinking = time.perf_counter()
        if written:
            # Days before the first one written keep their links: nothing before them changed.
            _relink(conn, written[0][0], written, codes)
        report.reach_seconds = time.perf_counter() - relinking
        report.feedback = rebuild_feedback(conn, layout, first, last)
        rebuild_answer_feedback(conn, layout, first, last)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        conn.close()
    report.missing.sort()
    report.seconds = time.perf_counter() - started
    return report
