"""Migration benchmark: ``chatlog migrate-to-postgres`` of a single-machine store, against SQLite's own catch-up.

Run: ``python -m bench.migrate_postgres`` (default 5 days x 60,000 events; ``--days``
and ``--per-day`` scale it). One run, on the same files:

1. writes the days straight into day files (``bench.catchup``'s generated days);
2. the baseline: SQLite's cold catch-up of them (``catch_up_stopped``: what the
   single-machine store costs to build from its files, conversations included);
3. migrates that store into a fresh PostgreSQL (Debian's server, started here as in
   the tests, fsync on): conversations and alerts carried over, every line applied as
   the node, verified; and prints events/s and the ratio to the baseline;
4. runs the migration again: a resumed (here: finished) migration applies nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.catchup import template_day, write_days
from shared.layout import StorageLayout, date_range
from shared.settings import Settings

SECRET = "bench-user-hash-secret-0123456789"


def run(days: int, per_day: int, root: Path) -> dict[str, Any]:
    """The whole benchmark; return its figures."""
    from tests.support.postgres import running_server

    settings = Settings.for_data_dir(root / "data", user_hash_secret=SECRET)
    layout = StorageLayout.from_settings(settings)
    last = layout.today() - timedelta(days=2)
    all_days = date_range(last - timedelta(days=days - 1), last)
    template = template_day(per_day)
    size = write_days(settings, all_days, template)
    lines = template.count(b"\n") * days
    print(f"wrote {days} days, {lines:,} events, {size / 1e6:,.0f} MB", flush=True)

    from chatlog.commands.migrate_postgres import _Progress, migrate
    from ingestor.derived.state import catch_up_stopped

    started = time.perf_counter()
    applied = catch_up_stopped(settings, layout)
    sqlite_seconds = time.perf_counter() - started
    assert applied == lines, (applied, lines)
    print(f"SQLite catch-up: {sqlite_seconds:.1f} s ({lines / sqlite_seconds:,.0f} events/s)", flush=True)

    with running_server(durable=True) as server:
        target = dataclasses.replace(settings, database_url=server.create_database(), node_id="bench-node")
        started = time.perf_counter()
        first = migrate(target, _Progress())
        total = time.perf_counter() - started
        assert first.applied == lines and first.verified is not None and not first.verified.damaged
        assert not first.unapplied(), first.unapplied()
        started = time.perf_counter()
        again = migrate(target, _Progress())
        rerun = time.perf_counter() - started
        assert again.applied == 0
    return {
        "lines": lines, "mb": size / 1e6, "sqlite": sqlite_seconds, "migration": total,
        "applied_seconds": first.seconds, "conversations": first.carried.conversations, "rerun": rerun,
    }


def report(figures: dict[str, Any]) -> list[str]:
    """Events/s of each, and the migration's share of SQLite's catch-up rate."""
    lines, sqlite_rate = figures["lines"], figures["lines"] / figures["sqlite"]
    rate = lines / figures["migration"]
    return [
        f"{lines:,} events, {figures['mb']:,.0f} MB of day files, {os.cpu_count()} cores",
        f"SQLite catch-up (baseline): {figures['sqlite']:.1f} s, {sqlite_rate:,.0f} events/s",
        f"migrate-to-postgres: {figures['migration']:.1f} s, {rate:,.0f} events/s "
        f"({figures['conversations']:,} conversations carried over, verify included); "
        f"{rate / sqlite_rate:.2f}x SQLite's catch-up",
        f"second run (nothing left to do): {figures['rerun']:.1f} s",
    ]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--days", type=int, default=5, help="days of data (default 5)")
    parser.add_argument("--per-day", type=int, default=60_000, help="events per day (default 60,000)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="chatlog-migrate-bench-") as root:
        figures = run(args.days, args.per_day, Path(root))
    print("\n" + "\n".join(report(figures)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
