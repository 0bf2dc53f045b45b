"""Integrity checks of every day file and of the database (``chatlog verify`` and a daily job).

Read-only: it works while the ingestor runs. Lines are counted by the one reader
(``shared.reader``), so the counts are exactly what every reader sees; ``.zst`` and
``.gz`` files are also walked frame by frame to locate damage. A damaged original that
start-up repair moved to quarantine is damage too, until the operator removes it: the
report names it and what of it was salvaged. The database's ``ingest_offsets`` are
read before the files: files only grow, so a live ingestor cannot make the database
look ahead of its files.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import msgspec

from ingestor.lifecycle.policy import retain_from, today_of
from ingestor.lifecycle.store_check import store_check
from shared.compressed import SegmentState, format_of, walk
from shared.layout import StorageLayout, Stream
from shared.quarantine import QuarantinedFile, quarantined
from shared.reader import ReadCounts, iter_lines
from shared.settings import Settings

# A plain file that changes while it is read is being appended to: read it again.
_LIVE_RETRIES = 3


@dataclass
class FileCheck:
    """What one day file holds and what is wrong with it."""

    stream: Stream
    day: date
    path: Path
    bytes: int = 0
    counts: ReadCounts = field(default_factory=ReadCounts)
    frames: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def damaged(self) -> bool:
        """True when a reader skips anything in this file."""
        return bool(self.problems)


@dataclass
class QuarantineCheck:
    """A damaged original kept in quarantine: what of it is readable (and was salvaged)."""

    kept: QuarantinedFile
    bytes: int = 0
    counts: ReadCounts = field(default_factory=ReadCounts)
    frames: int = 0

    def describe(self) -> str:
        """What happened to the file, for the operator."""
        c = self.counts
        return (
            f"damaged original ({self.bytes} bytes) kept at {self.kept.path}: {c.skipped_bytes} bytes "
            f"unreadable in {c.damaged} damaged run(s) and {c.torn} torn tail(s); its {self.frames} "
            f"readable frame(s), {c.lines} lines, were salvaged into {self.kept.day_file}"
        )


@dataclass
class DatabaseCheck:
    """What the database check found."""

    exists: bool
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class VerifyReport:
    """Every day file checked, the database checked, and what is only worth a note."""

    files: list[FileCheck] = field(default_factory=list)
    quarantined: list[QuarantineCheck] = field(default_factory=list)
    database: DatabaseCheck = field(default_factory=lambda: DatabaseCheck(exists=False))
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def damaged(self) -> bool:
        """True when any file or the database is damaged."""
        return any(f.damaged for f in self.files) or bool(self.quarantined) or bool(self.database.problems)

    def totals(self, stream: Stream | None = None) -> ReadCounts:
        """Summed read counts over all files, or one stream's."""
        total = ReadCounts()
        for check in self.files:
            if stream is None or check.stream is stream:
                total.add(check.counts)
        return total

    def account(self) -> str:
        """The one-line account of the check."""
        t = self.totals()
        damaged = sum(f.damaged for f in self.files)
        kept = f", {len(self.quarantined)} damaged originals in quarantine" if self.quarantined else ""
        db = (
            "no database yet" if not self.database.exists
            else "database damaged" if self.database.problems else "database ok"
        )
        return (
            f"checked {len(self.files)} day files: {t.lines} lines, {t.torn} torn, {t.corrupt} corrupt, "
            f"{damaged} damaged{kept}; {db}"
        )


def _frame_damage(path: Path, name: str | None = None) -> tuple[int, list[str], ReadCounts]:
    """Walk the frames of a ``.zst`` or ``.gz`` file (``name`` gives the format when the path
    does not); return how many are whole, what is wrong, and what a reader counts."""
    counts = ReadCounts()
    fmt = format_of(name or path.name)
    if fmt is None:
        return 0, [], counts
    frames = 0
    problems = []
    with open(path, "rb") as f:
        for segment in walk(f, fmt):
            length = segment.end - segment.start
            if segment.state is SegmentState.OK:
                frames += 1
                counts.lines += sum(1 for line in segment.content.split(b"\n")[:-1] if line)
                if not segment.content.endswith(b"\n") and segment.content:
                    counts.torn += 1
                    problems.append(f"frame {frames} at byte {segment.start} does not end on a line boundary")
                continue
            counts.skipped_bytes += length
            if segment.state is SegmentState.TORN:
                counts.torn += 1
                problems.append(
                    f"the last frame, at byte {segment.start}, is cut short ({length} bytes): a torn append"
                )
            else:
                counts.damaged += 1
                problems.append(
                    f"bytes {segment.start}..{segment.end} ({length} bytes) are damaged and unreadable; "
                    "reading goes on at the next valid frame"
                )
    return frames, problems, counts


def _count_lines(path: Path, counts: ReadCounts) -> None:
    for line in iter_lines(path, counts):
        try:
            value = msgspec.json.decode(line)
        except msgspec.DecodeError:
            counts.corrupt += 1
            continue
        if not isinstance(value, dict):
            counts.corrupt += 1


def _check_once(check: FileCheck) -> None:
    path = check.path
    check.counts = ReadCounts()
    check.frames, check.problems = 0, []
    _count_lines(path, check.counts)
    c = check.counts
    if format_of(path.name) is not None and not c.unreadable_files:
        check.frames, check.problems, _ = _frame_damage(path)
    if c.torn and not check.problems:
        check.problems.append("ends with a torn (unterminated or undecompressable) tail")
    if c.corrupt:
        check.problems.append(f"{c.corrupt} lines are not JSON objects")
    if c.unreadable_files:
        check.problems.append("cannot be read")


def check_day_file(stream: Stream, day: date, path: Path) -> FileCheck:
    """Decode one day file fully; count lines, torn and corrupt lines; check each ``.zst`` frame."""
    check = FileCheck(stream, day, path)
    for _ in range(_LIVE_RETRIES):
        try:
            check.bytes = path.stat().st_size
        except FileNotFoundError:
            check.counts = ReadCounts(unreadable_files=1)
            check.problems = ["cannot be read (removed while checked)"]
            break
        _check_once(check)
        if not check.counts.torn:
            break
        # A torn tail on a file that grew meanwhile was an append in progress: look again.
        try:
            if path.stat().st_size == check.bytes:
                break
        except FileNotFoundError:
            break
    return check


def _check_day(layout: StorageLayout, stream: Stream, day: date) -> FileCheck | None:
    """Check a day's readable file; a file compressed or deleted meanwhile is looked up again."""
    check = None
    for _ in range(_LIVE_RETRIES):
        path = layout.day_files(stream, day).readable
        if path is None:
            return None  # deleted by retention since the listing
        check = check_day_file(stream, day, path)
        if not check.counts.unreadable_files or path.exists():
            return check
    return check


def _check_quarantined(kept: QuarantinedFile) -> QuarantineCheck:
    check = QuarantineCheck(kept)
    try:
        check.bytes = kept.path.stat().st_size
        check.frames, _, check.counts = _frame_damage(kept.path, kept.day_file.name)
    except OSError:
        check.counts.unreadable_files += 1
    return check


def _compare_offsets(
    report: VerifyReport, offsets: dict[tuple[str, str], int], settings: Settings, today: date
) -> None:
    """Every ``ingest_offsets`` row against the lines of its day file."""
    lines = {(f.stream.value, f.day.isoformat()): f.counts.lines for f in report.files}
    tracked = {stream for stream, _ in offsets}
    db = report.database
    for (stream_name, day_text), applied in sorted(offsets.items()):
        try:
            stream = Stream(stream_name)
        except ValueError:
            db.notes.append(f"ingest_offsets names an unknown stream {stream_name!r}")
            continue
        have = lines.get((stream_name, day_text), 0)
        where = f"{stream_name}/{day_text}"
        if applied > have:
            if day_text < retain_from(settings, stream, today).isoformat():
                db.notes.append(f"{where}: offsets row of an expired day (the next retention drops it)")
            else:
                db.problems.append(
                    f"{where}: the database applied {applied} lines but the day file has {have}"
                )
        elif applied < have:
            db.notes.append(f"{where}: {have - applied} lines not yet applied to the database")
    for key, have in sorted(lines.items()):
        if key[0] in tracked and key not in offsets and have:
            db.notes.append(f"{key[0]}/{key[1]}: {have} lines not yet applied to the database")


def _leftovers(layout: StorageLayout) -> list[str]:
    notes = []
    for stream in Stream:
        directory = layout.stream_dir(stream)
        for files in layout.days(stream).values():
            if files.plain is not None and (files.zst is not None or files.gz is not None):
                notes.append(f"{files.plain}: leftover of an interrupted compression (ignored by readers)")
        if directory.is_dir():
            notes.extend(
                f"{directory / name}: leftover temporary file" for name in sorted(os.listdir(directory))
                if name.endswith(".tmp")
            )
    return notes


def verify_storage(
    layout: StorageLayout, settings: Settings, *, integrity: bool = True, now: datetime | None = None
) -> VerifyReport:
    """Check every readable day file and the database; ``report.damaged`` says if anything is."""
    started = time.perf_counter()
    report = VerifyReport()
    store = store_check(layout, settings)
    report.database.exists = store.exists()
    offsets: dict[tuple[str, str], int] = {}
    if report.database.exists:
        offsets, problems = store.offsets()
        report.database.problems.extend(problems)
    for stream in Stream:
        for day in layout.days(stream):
            check = _check_day(layout, stream, day)
            if check is not None:
                report.files.append(check)
    report.quarantined = [_check_quarantined(kept) for kept in quarantined(layout)]
    report.notes.extend(_leftovers(layout))
    if report.database.exists:
        if integrity:
            report.database.problems.extend(store.integrity())
        _compare_offsets(report, offsets, settings, today_of(layout, now))
    report.seconds = time.perf_counter() - started
    return report
