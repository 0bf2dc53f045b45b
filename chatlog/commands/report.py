"""``chatlog report``: one period's usage, quality, FAQ, gaps, suggestions, alerts and conversations to review.

Read only, from the statistics, the alerts table and the conversation index (never
the raw logs), so a month's report takes what the analytics API's answers take.
Markdown by default, ``--format html`` (one self-contained file with its charts) or
``json``; ``--output FILE`` writes it atomically (0640) instead of printing it.
The report itself is built by ``insights.report``.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

from chatlog.cli import CommandError, date_argument
from chatlog.commands.reading import derived_state
from insights.report.build import MAX_DAYS, build_report
from insights.report.render import FORMATS, render
from shared.atomic_write import write_private
from shared.settings import Settings

DEFAULT_DAYS = 7


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """The range (default: the last 7 days), a collection, the format and where to write."""
    parser.add_argument(
        "--from", dest="first", type=date_argument, metavar="DATE", help="first day (default: 6 days before --to)"
    )
    parser.add_argument("--to", dest="last", type=date_argument, metavar="DATE", help="last day (default: today)")
    parser.add_argument("--collection", help="only this collection")
    parser.add_argument("--format", dest="fmt", choices=FORMATS, default="markdown",
                        help="markdown (default), html (one self-contained file) or json")
    parser.add_argument("--json", dest="fmt", action="store_const", const="json", help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, metavar="FILE", help="write the report here (default: print it)")


def period(settings: Settings, first: date | None, last: date | None) -> tuple[date, date]:
    """The report's days: by default the 7 ending today (in CHATLOG_TIMEZONE); a clear error when wrong."""
    end = last or datetime.now(settings.timezone).date()
    # Near date.min there are no 6 days to go back: the range starts at the first day there is.
    start = first or max(date.min + timedelta(days=DEFAULT_DAYS - 1), end) - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise CommandError(f"--from {start} is after --to {end}")
    if (end - start).days + 1 > MAX_DAYS:
        raise CommandError(f"a report covers at most {MAX_DAYS} days")
    return start, end


def main(settings: Settings, args: argparse.Namespace) -> int:
    """Print (or write) the report of the range."""
    first, last = period(settings, args.first, args.last)
    with derived_state(settings) as conn:
        report = build_report(conn, settings, args.collection, first, last)
    content = render(report, args.fmt)
    if args.output is None:
        sys.stdout.write(content)
        return 0
    try:
        write_private(args.output, content)
    except OSError as exc:
        raise CommandError(f"cannot write {args.output}: {exc}") from None
    print(f"wrote the {args.fmt} report of {first}..{last} to {args.output}")
    return 0
