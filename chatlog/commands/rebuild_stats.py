"""``chatlog rebuild-stats --from DATE --to DATE``: recompute statistics from the day files.

With the ingestor stopped, it first applies any day-file lines the database has not
seen yet (exactly what the ingestor does on start: every derived table, conversations
and alert minutes included, not only the statistics), then recomputes each day of
the range with pandas. With the ingestor running it only recomputes: each day's rows
are replaced in one short transaction that the live path waits for, and lines the
ingestor has not applied yet are left to it, so nothing is counted twice.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from datetime import date

from chat_statistics.rebuild.run import RebuildReport, rebuild
from chatlog.cli import CommandError, date_argument
from ingestor.derived.state import catch_up_stopped
from shared.layout import StorageLayout
from shared.locking import DataDirLocked, writer_lock
from shared.settings import Settings


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """``--from`` and ``--to``: the inclusive range of days (in CHATLOG_TIMEZONE)."""
    parser.add_argument(
        "--from",
        dest="first",
        type=date_argument,
        required=True,
        metavar="DATE",
        help="first day to recompute (YYYY-MM-DD)",
    )
    parser.add_argument(
        "--to",
        dest="last",
        type=date_argument,
        required=True,
        metavar="DATE",
        help="last day to recompute (YYYY-MM-DD)",
    )


def run_rebuild(settings: Settings, first: date, last: date, progress: bool) -> tuple[RebuildReport, int]:
    """Catch up when the data directory is free, then rebuild; return the report and lines caught up."""
    layout = StorageLayout.from_settings(settings)
    try:
        with writer_lock(layout):
            applied = catch_up_stopped(settings, layout)
            return rebuild(settings.db_path, layout, first, last, progress=progress), applied
    except DataDirLocked:
        # A running ingestor applies its own lines; rebuilding beside it is safe.
        return rebuild(settings.db_path, layout, first, last, progress=progress), 0


# Why not on PostgreSQL, and what to do instead (exit status 2: not run, nothing changed).
SHARED_STATISTICS_REFUSAL = (
    "not available on PostgreSQL (CHATLOG_DATABASE_URL is set): rebuild-stats replaces each day's "
    "statistics rows with those recomputed from this data directory's day files, but in PostgreSQL "
    "those rows hold every node's events merged (latency sketches, top queries, distinct sessions), "
    "so this node's share cannot be taken out of them, and replacing them would drop the other "
    "nodes' events. Nothing was changed. Each node's derived state keeps the shared rows current "
    "from its own files; `chatlog verify` checks this node's files against the database. To "
    "recompute everything, load every node into an empty database with `chatlog migrate-to-postgres`."
)


def main(settings: Settings, args: argparse.Namespace) -> int:
    """Recompute the range and print what was done."""
    if settings.database_url:
        print(f"chatlog rebuild-stats: {SHARED_STATISTICS_REFUSAL}", file=sys.stderr)
        return 2
    if args.first > args.last:
        raise CommandError(f"--from {args.first} is after --to {args.last}")
    try:
        report, applied = run_rebuild(settings, args.first, args.last, progress=sys.stderr.isatty())
    except (OSError, sqlite3.Error) as exc:
        raise CommandError(str(exc)) from None
    if applied:
        print(f"applied {applied:,} day-file lines the database had not seen yet")
    print(report.describe(args.first, args.last))
    return 0
