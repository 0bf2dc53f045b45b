"""``chatlog import PATH...``: bring in the logs the guide's ``HybridLoggingService`` already wrote.

Files, globs (expanded here when quoted), ``.gz``/``.zst`` (recognised by their
first bytes) or ``-`` for stdin. Each line is mapped from the guide's shapes and
validated like a ``POST /v1/logs`` event (``chatlog.importing.guide``); a bad line is
rejected with its number and reason and the import goes on. A line without a
``log_id`` gets one derived from its content, and every target day's file is checked
for the ids it already holds, so running an import again imports nothing twice.

With the ingestor stopped the import takes the data directory's writer lock, appends
to the day files itself and then catches the derived state up; with the ingestor
running it posts batches to its Unix socket and waits until the ingestor's derived
state has applied the imported days.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from chatlog.cli import CommandError
from chatlog.importing.guide import GuideLineReader, UnknownFields
from chatlog.importing.offline import OfflineStore
from chatlog.importing.online import OnlineImportFailed, OnlineStore, wait_until_applied
from chatlog.importing.pipeline import Importer
from chatlog.importing.sources import Source, expand
from chatlog.importing.tally import Tally
from ingestor.derived.state import catch_up_stopped
from shared.layout import StorageLayout
from shared.locking import DataDirLocked, writer_lock
from shared.privacy import UserHashKeyError
from shared.settings import Settings

DERIVED_WAIT_SECONDS = 600.0


def _zone(text: str) -> ZoneInfo:
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not an IANA time zone (e.g. Asia/Seoul, UTC)") from None


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """Inputs, the rejects file, how naive datetimes and unknown fields are read."""
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="JSONL files (.jsonl, .gz, .zst), globs, or - for stdin")
    parser.add_argument("--rejects", metavar="FILE",
                        help="write every rejected line's source, number and reason here (JSON lines)")
    parser.add_argument("--naive-timezone", type=_zone, metavar="ZONE",
                        help="zone of created_at values without an offset (default: CHATLOG_TIMEZONE)")
    parser.add_argument("--unknown-fields", choices=("reject", "metadata"), default="reject",
                        help="a field the contract does not know: reject the line (default), or keep it "
                             "under metadata.imported_fields")
    parser.add_argument("--wait", type=float, default=DERIVED_WAIT_SECONDS, metavar="SECONDS",
                        help="with the ingestor running: how long to wait for its statistics to "
                             f"include the import (default {DERIVED_WAIT_SECONDS:.0f})")


def main(settings: Settings, args: argparse.Namespace) -> int:
    """Import, catch the derived state up, print the account; 0 when every input was read."""
    layout = StorageLayout.from_settings(settings)
    sources, unmatched = expand(list(args.paths))
    if unmatched and not sources:
        raise CommandError(f"no file matches {', '.join(unmatched)}")
    if sum(1 for s in sources if s.name == "-") > 1:
        raise CommandError("stdin (-) can be read only once")
    unknown: UnknownFields = args.unknown_fields
    reader = GuideLineReader(layout, settings.log_retention_days, args.naive_timezone or settings.timezone, unknown)
    tally = Tally(rejects_path=None if args.rejects is None else Path(args.rejects))
    for pattern in unmatched:
        tally.unreadable(pattern, 0, f"no file matches {pattern}")
    tally.open()
    started = time.monotonic()
    try:
        try:
            with writer_lock(layout):
                mode = _offline(settings, layout, reader, tally, sources)
        except DataDirLocked:
            mode = _online(settings, layout, reader, tally, sources, args.wait)
    finally:
        tally.close()
    print(tally.summary())
    print(mode)
    print(f"took {time.monotonic() - started:.1f} s")
    return 1 if tally.unreadable_sources else 0


def _offline(settings: Settings, layout: StorageLayout, reader: GuideLineReader, tally: Tally,
             sources: list[Source]) -> str:
    try:
        store = OfflineStore(settings, layout)
    except UserHashKeyError as exc:
        raise CommandError(str(exc)) from None
    started = time.monotonic()
    try:
        Importer(layout, reader, store, tally).run(sources)
    except OSError as exc:
        # A failed write or fsync was cut back whole: only what was counted before it is stored.
        print(tally.summary(), file=sys.stderr)
        raise CommandError(f"storing failed ({exc}); what was reported imported is stored: "
                           "run the import again to finish it") from None
    finally:
        store.close()
    written = time.monotonic()
    if sys.stderr.isatty():
        print("catching the derived state up (sessions, statistics, conversations) ...", file=sys.stderr)
    applied = catch_up_stopped(settings, layout)
    return (f"ingestor not running: wrote the day files under the writer lock ({written - started:.1f} s); "
            f"derived state caught up ({applied:,} new lines applied to sessions and statistics, "
            f"{time.monotonic() - written:.1f} s)")


def _online(settings: Settings, layout: StorageLayout, reader: GuideLineReader, tally: Tally,
            sources: list[Source], wait: float) -> str:
    socket_path = settings.ingest_socket_path
    if socket_path is None:
        raise CommandError("the ingestor is running and CHATLOG_INGEST_SOCKET is off: enable its Unix socket, "
                           "or stop the ingestor and import then")
    store = OnlineStore(socket_path, settings.max_body_bytes)
    started = time.monotonic()
    try:
        Importer(layout, reader, store, tally).run(sources)
    except OnlineImportFailed as exc:
        print(tally.summary(), file=sys.stderr)
        raise CommandError(str(exc)) from None
    finally:
        store.close()
    stored = time.monotonic()
    behind = wait_until_applied(settings, layout, sorted(tally.days), wait)
    retried = f", {store.retries:,} batches retried after a 503" if store.retries else ""
    via = f"ingestor running: imported through its Unix socket ({stored - started:.1f} s{retried})"
    if behind:
        return (f"{via}; its derived state has not yet applied {len(behind)} of the days after {wait:.0f} s "
                "more (it will: they are stored)")
    return f"{via}; its derived state has applied every day ({time.monotonic() - stored:.1f} s more)"
