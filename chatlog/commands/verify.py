"""``chatlog verify``: check every day file and the database; exit 1 on damage.

Read-only, so it works while the ingestor runs. A damaged original kept in the
quarantine folder counts as damage until the operator removes it from there.
"""

from __future__ import annotations

import argparse

import msgspec

from ingestor.lifecycle.verification import VerifyReport, verify_storage
from shared.layout import StorageLayout
from shared.settings import Settings


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """``--all`` lists healthy files too; ``--json`` prints a machine-readable report."""
    parser.add_argument("--all", action="store_true", help="list every file, not only damaged ones")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--no-integrity", action="store_true",
                        help="skip PRAGMA integrity_check (reads the whole database)")


def _as_json(report: VerifyReport) -> bytes:
    totals = report.totals()
    return msgspec.json.format(msgspec.json.encode({
        "damaged": report.damaged,
        "files": [
            {
                "path": str(f.path), "stream": f.stream.value, "day": f.day.isoformat(), "bytes": f.bytes,
                "lines": f.counts.lines, "torn": f.counts.torn, "corrupt": f.counts.corrupt,
                "damaged": f.counts.damaged, "skipped_bytes": f.counts.skipped_bytes,
                "frames": f.frames, "problems": f.problems,
            }
            for f in report.files
        ],
        "quarantined": [
            {
                "path": str(q.kept.path), "day_file": str(q.kept.day_file), "stream": q.kept.stream.value,
                "day": q.kept.day.isoformat(), "bytes": q.bytes, "salvaged_lines": q.counts.lines,
                "salvaged_frames": q.frames, "damaged_runs": q.counts.damaged,
                "unreadable_bytes": q.counts.skipped_bytes, "description": q.describe(),
            }
            for q in report.quarantined
        ],
        "totals": {
            "lines": totals.lines, "torn": totals.torn, "corrupt": totals.corrupt, "damaged": totals.damaged,
            "skipped_bytes": totals.skipped_bytes,
        },
        "database": {
            "exists": report.database.exists,
            "problems": report.database.problems,
            "notes": report.database.notes,
        },
        "notes": report.notes,
    }))


def _print_text(report: VerifyReport, show_all: bool) -> None:
    for f in report.files:
        if f.damaged or show_all:
            state = "DAMAGED" if f.damaged else "ok"
            frames = f" in {f.frames} frames" if f.path.name.endswith(".zst") else ""
            print(
                f"{state:7} {f.path}: {f.counts.lines} lines{frames}, "
                f"{f.counts.torn} torn, {f.counts.corrupt} corrupt, {f.counts.damaged} damaged runs skipped"
            )
            for problem in f.problems:
                print(f"        - {problem}")
    for q in report.quarantined:
        print(f"DAMAGED {q.kept.day_file}: {q.describe()}")
    for note in report.notes:
        print(f"note    {note}")
    db = report.database
    if not db.exists:
        print("note    no database yet")
    for problem in db.problems:
        print(f"DAMAGED database: {problem}")
    for note in db.notes:
        print(f"note    database: {note}")
    print(("DAMAGED: " if report.damaged else "OK: ") + report.account())


def main(settings: Settings, args: argparse.Namespace) -> int:
    """Check everything; 0 when nothing is damaged, 1 otherwise."""
    report = verify_storage(StorageLayout.from_settings(settings), settings, integrity=not args.no_integrity)
    if args.json:
        print(_as_json(report).decode())
    else:
        _print_text(report, args.all)
    return 1 if report.damaged else 0
