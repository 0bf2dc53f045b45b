"""``chatlog compress`` and ``chatlog retention``: the ingestor's lifecycle jobs, run by hand now.

Both change day files, so they take the data directory's writer lock and refuse to run
while the ingestor holds it (the ingestor runs them itself, hourly). ``--dry-run`` only
lists what is due and works at any time.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator

from chatlog.cli import CommandError
from chatlog.store import writing
from ingestor.lifecycle.compression import compress_due, due_for_compression
from ingestor.lifecycle.retention import apply_retention, expired_days
from shared.layout import StorageLayout
from shared.locking import DataDirLocked, writer_lock
from shared.settings import Settings


@contextlib.contextmanager
def exclusive_data_dir(layout: StorageLayout, why: str) -> Iterator[None]:
    """Hold the writer lock, or fail with a CommandError saying who holds it and ``why`` it matters."""
    try:
        with writer_lock(layout):
            yield
    except DataDirLocked as exc:
        raise CommandError(f"{exc}; stop the ingestor first ({why})") from None


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """``--dry-run`` for both; ``--level`` for compress."""
    parser.add_argument("--dry-run", action="store_true", help="only list what is due")
    if name == "compress":
        parser.add_argument(
            "--level", type=int, choices=range(1, 23), metavar="1-22",
            help="zstandard level (default: CHATLOG_ZSTD_LEVEL)",
        )


def _dry_run(layout: StorageLayout, settings: Settings, command: str) -> int:
    if command == "compress":
        due = due_for_compression(layout, settings)
        for stream, day in due:
            print(f"would compress {layout.day_path(stream, day)}")
        print(f"{len(due)} files due for compression")
        return 0
    expired = expired_days(layout, settings)
    for stream, days in expired.items():
        for day in days:
            for path in layout.day_files(stream, day).all:
                print(f"would delete {path}")
    print(f"{sum(len(d) for d in expired.values())} days past retention")
    return 0


def main(settings: Settings, args: argparse.Namespace) -> int:
    """Compress or apply retention now; non-zero if any file failed."""
    layout = StorageLayout.from_settings(settings)
    if args.dry_run:
        return _dry_run(layout, settings, args.command)
    with exclusive_data_dir(layout, f"it runs {args.command} itself, hourly"):
        layout.ensure_dirs()
        with writing(settings) as conn:
            if args.command == "compress":
                report = compress_due(layout, settings, level=args.level)
                if report.failed:
                    raise CommandError(report.account())
                print(report.account())
            else:
                print(apply_retention(layout, settings, conn).account())
    return 0
