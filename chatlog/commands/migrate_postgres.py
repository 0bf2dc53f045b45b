"""``chatlog migrate-to-postgres``: load this data directory's store into PostgreSQL as this node.

The guide's initial data migration. With the ingestor stopped (the data directory's
writer lock, then the derived lock, as ``catch_up_stopped`` takes them):

1. SQLite is brought up to date with the day files first, exactly as an ingestor start
   would (so conversations open when the ingestor stopped are closed and stored once);
2. the user-hash key is checked against SQLite and recorded in (or checked against)
   PostgreSQL; an unfinished erasure refuses the migration;
3. what the files cannot give back is carried over (``chatlog.migrating.carry``): the
   conversation index with the records, the alerts history and the outbox, the
   statistics of days whose files retention deleted;
4. the derived state is applied from the day files as this node
   (``chatlog.migrating.derived``), committing with this node's offsets;
5. ``chatlog verify`` runs against PostgreSQL: every day file's lines applied.

Every step is idempotent, so a run that was killed is simply run again; a second run
finds nothing to do. The SQLite file is left as it is (a rollback is unsetting
``CHATLOG_DATABASE_URL``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import re
import sqlite3
import sys
import time

import psycopg

from chatlog.cli import CommandError
from chatlog.migrating.carry import (
    Carried,
    MigrationRefused,
    carry_alerts,
    carry_conversations,
    carry_expired_days,
    check_keys,
    check_no_pending_erasure,
)
from chatlog.migrating.derived import apply_day_files
from ingestor.derived.state import catch_up_stopped
from ingestor.lifecycle.verification import VerifyReport, verify_storage
from shared.db import connect_store_sync, connect_writer_sync
from shared.layout import StorageLayout
from shared.locking import DataDirLocked, derived_lock, writer_lock
from shared.postgres.reachability import connection_problem, safe_url
from shared.postgres.schema import SchemaTooNew
from shared.privacy import UserHashKeyError
from shared.settings import Settings

PROGRESS_SECONDS = 2.0


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """``--database-url``: where to (default CHATLOG_DATABASE_URL)."""
    parser.add_argument("--database-url", default="", metavar="URL",
                        help="postgresql://user:password@host:port/dbname (default: CHATLOG_DATABASE_URL)")


class _Progress:
    """A line on stderr every PROGRESS_SECONDS at most, and at each stage."""

    def __init__(self) -> None:
        self._last = 0.0

    def stage(self, text: str) -> None:
        print(f"migrate-to-postgres: {text}", file=sys.stderr, flush=True)

    def every(self, text: str) -> None:
        now = time.monotonic()
        if now - self._last >= PROGRESS_SECONDS:
            self._last = now
            self.stage(text)


def _open_sqlite(settings: Settings) -> sqlite3.Connection | None:
    """SQLite's connection (read-write: a key fingerprint it lacks is recorded), None without a file."""
    if not settings.db_path.exists():
        return None
    return connect_writer_sync(settings.db_path)


@dataclasses.dataclass
class MigrationReport:
    """What one run did."""

    caught_up_sqlite: int = 0
    carried: Carried = dataclasses.field(default_factory=Carried)
    applied: int = 0
    seconds: float = 0.0
    verified: VerifyReport | None = None

    def unapplied(self) -> list[str]:
        """The verify notes of lines PostgreSQL has not applied yet (a complete migration has none)."""
        if self.verified is None:
            return []
        return [n for n in self.verified.database.notes if "not yet applied" in n]


def migrate(settings: Settings, progress: _Progress) -> MigrationReport:
    """Run every step for ``settings`` (whose database_url is the target); the ingestor must be stopped."""
    report = MigrationReport()
    started = time.monotonic()
    layout = StorageLayout.from_settings(settings)
    local = dataclasses.replace(settings, database_url="")
    with writer_lock(layout):
        if settings.db_path.exists():
            progress.stage(f"bringing {settings.db_path} up to date with the day files")
            report.caught_up_sqlite = catch_up_stopped(local, layout)
        progress.stage(f"connecting to {safe_url(settings.database_url)} as node {settings.node}")
        with contextlib.closing(connect_store_sync(settings)) as pg, derived_lock(layout):
            lite = _open_sqlite(settings)
            with contextlib.closing(lite) if lite is not None else contextlib.nullcontext():
                check_keys(settings, lite, pg)
                if lite is not None:
                    check_no_pending_erasure(lite)
                    progress.stage("carrying over the conversation index and records")
                    carry_conversations(
                        layout, lite, pg, settings.node, report.carried,
                        lambda n: progress.every(f"{n:,} conversations carried over"),
                    )
                    carry_alerts(lite, pg, settings.node, report.carried)
                    carry_expired_days(layout, lite, pg, settings.node, report.carried)
            progress.stage("applying the day files")
            report.applied = apply_day_files(
                settings, layout, lambda n: progress.every(f"{n:,} day-file lines applied"),
            )
    report.seconds = time.monotonic() - started
    progress.stage("verifying the day files against PostgreSQL")
    report.verified = verify_storage(layout, settings, integrity=False)
    return report


def describe(report: MigrationReport, node: str) -> list[str]:
    """The summary printed at the end."""
    carried = report.carried
    rate = f" ({report.applied / report.seconds:,.0f} lines/s)" if report.applied and report.seconds else ""
    alerts = ("alerts carried over by an earlier run" if carried.alerts_already
              else f"{carried.alerts:,} alerts and {carried.outbox:,} outbox deliveries carried over")
    lines = [
        f"node {node}: {report.applied:,} day-file lines applied in {report.seconds:.1f} s{rate}",
        f"{carried.conversations:,} conversations carried over with their records"
        + (f", {carried.unreadable:,} left out (record unreadable)" if carried.unreadable else ""),
        alerts + (f" ({carried.alerts_skipped} firing already, left out)" if carried.alerts_skipped else ""),
    ]
    if carried.expired_days or carried.expired_days_skipped:
        lines.append(
            f"statistics of {carried.expired_days:,} days without day files carried over"
            + (f"; {carried.expired_days_skipped:,} left out (other nodes have statistics for them)"
               if carried.expired_days_skipped else "")
        )
    if report.caught_up_sqlite:
        lines.insert(0, f"SQLite first caught up {report.caught_up_sqlite:,} day-file lines")
    if report.verified is not None:
        lines.append(("DAMAGED: " if report.verified.damaged else "verified: ") + report.verified.account())
        lines.extend(f"DAMAGED database: {p}" for p in report.verified.database.problems)
        lines.extend(f"not applied: {n}" for n in report.unapplied())
    return lines


def main(settings: Settings, args: argparse.Namespace) -> int:
    """Migrate; 0 when PostgreSQL holds every line of the day files, 1 otherwise."""
    url = args.database_url.strip() or settings.database_url
    if url and not re.match(r"postgres(ql)?://", url):
        raise CommandError("--database-url must start with postgresql://")
    if not url:
        raise CommandError("no PostgreSQL to migrate to: pass --database-url or set CHATLOG_DATABASE_URL")
    target = dataclasses.replace(settings, database_url=url)
    try:
        report = migrate(target, _Progress())
    except DataDirLocked as exc:
        raise CommandError(f"{exc}: stop the ingestor first") from None
    except psycopg.Error as exc:
        raise CommandError(connection_problem(url, exc)) from None
    except (MigrationRefused, UserHashKeyError, SchemaTooNew) as exc:
        raise CommandError(str(exc)) from None
    except (OSError, sqlite3.Error) as exc:
        raise CommandError(str(exc)) from None
    for line in describe(report, target.node):
        print(line)
    verified = report.verified
    return 1 if verified is None or verified.damaged or report.unapplied() else 0
