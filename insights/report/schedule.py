"""The periodic report files: ``reports/<period>.html`` under the data directory (``CHATLOG_REPORT_SCHEDULE``).

``weekly`` (the default) writes the last complete ISO week, Monday to Sunday, as
``reports/2026-W48.html``; ``daily`` writes yesterday as ``reports/2026-12-01.html``
(days in CHATLOG_TIMEZONE); ``off`` writes nothing. The ingestor's scheduled job
(``ingestor.report_jobs``) runs ``write_due`` in a child process every hour: the file
of the last complete period is written once, when it is missing (so an ingestor that
was down at the turn of the period writes it when it is back); a period without a
single event is skipped (a fresh install writes no empty report of the week before it
existed) and older periods are never back-filled.
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from chat_statistics.tables import DAILY
from insights.report.build import build_report
from insights.report.page import as_html
from shared.atomic_write import write_private
from shared.db import connect_reader_sync
from shared.settings import Settings

REPORTS_DIR = "reports"


@dataclass(frozen=True)
class Period:
    """One report period: its file name (without ``.html``) and its days."""

    name: str
    first: date
    last: date


def last_complete(schedule: str, today: date) -> Period | None:
    """The newest period that ended before ``today`` (None when the schedule is ``off``)."""
    if schedule == "daily":
        day = today - timedelta(days=1)
        return Period(day.isoformat(), day, day)
    if schedule == "weekly":
        last = today - timedelta(days=today.isoweekday())  # the Sunday before today
        year, week, _ = last.isocalendar()
        return Period(f"{year}-W{week:02d}", last - timedelta(days=6), last)
    return None


def report_path(settings: Settings, period: Period) -> Path:
    """Where a period's HTML report is written."""
    return settings.data_dir / REPORTS_DIR / f"{period.name}.html"


def _has_data(conn: sqlite3.Connection, period: Period) -> bool:
    """Whether any event falls in the period (a fresh install has nothing to report on)."""
    found = conn.execute(
        f"SELECT 1 FROM {DAILY} WHERE date BETWEEN ? AND ? LIMIT 1", (period.first.isoformat(), period.last.isoformat())
    ).fetchone()
    return found is not None


def write_due(settings: Settings, now: datetime | None = None) -> str:
    """Write the last complete period's report unless it exists; a one-line account of what was done."""
    today = (now or datetime.now(settings.timezone)).astimezone(settings.timezone).date()
    period = last_complete(settings.report_schedule, today)
    if period is None:
        return "reports are off (CHATLOG_REPORT_SCHEDULE=off)"
    path = report_path(settings, period)
    if path.exists():
        return f"{path.name} already written"
    conn = connect_reader_sync(settings)
    if conn is None:
        return "no database yet"
    with contextlib.closing(conn):
        if not _has_data(conn, period):
            return f"no data for {period.name} ({period.first}..{period.last}): nothing written"
        report = build_report(conn, settings, None, period.first, period.last)
    write_private(path, as_html(report))
    return f"wrote {path} ({period.first}..{period.last}, {report.summary.total_queries:,} questions)"
