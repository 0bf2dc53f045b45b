"""Start-up repair after a crash: torn tails, interrupted compressions, damaged files, the id window."""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import msgspec

from ingestor.dayfiles import fsync_dir, repair_compressed_tail, repair_torn_tail
from ingestor.feedback import ID_PREFIX as FEEDBACK_ID_PREFIX
from ingestor.idempotency import RecentIdWindow
from ingestor.lifecycle.salvage import Salvage, salvage_damaged
from shared.layout import StorageLayout, Stream
from shared.quarantine import quarantine_dir, quarantined
from shared.reader import iter_lines

log = logging.getLogger("chatlog.ingestor.recovery")


@dataclass
class RepairReport:
    """What start-up repair changed."""

    torn_bytes: int = 0
    leftovers_removed: int = 0
    salvaged: list[Salvage] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)  # damaged files that could not be salvaged


def _cut_torn_tail(path: Path, compressed: bool) -> int:
    fd = os.open(path, os.O_RDWR)
    try:
        # A previous run's derived-state process may still be finishing an append.
        fcntl.flock(fd, fcntl.LOCK_EX)
        return repair_compressed_tail(fd, path) if compressed else repair_torn_tail(fd)
    finally:
        os.close(fd)


def _remove_temporaries(directory: Path) -> int:
    removed = 0
    if not directory.is_dir():
        return 0
    for name in os.listdir(directory):
        if name.endswith(".tmp") and not (directory / name).is_dir():
            # A compression, salvage or rewrite that never reached its rename.
            (directory / name).unlink(missing_ok=True)
            removed += 1
    return removed


def repair_day_files(layout: StorageLayout) -> RepairReport:
    """Cut torn tails, remove leftovers of interrupted compressions, salvage damaged files.

    Only a torn tail is ever cut; a compressed file damaged anywhere else is moved to
    quarantine whole and replaced by its readable frames (``ingestor.lifecycle.salvage``).
    """
    report = RepairReport()
    for stream in Stream:
        directory = layout.stream_dir(stream)
        report.leftovers_removed += _remove_temporaries(quarantine_dir(layout, stream))
        if not directory.is_dir():
            continue
        report.leftovers_removed += _remove_temporaries(directory)
        for files in layout.days(stream).values():
            if files.plain is not None and (files.zst is not None or files.gz is not None):
                # The compressed file was renamed into place complete: the plain one is a leftover.
                files.plain.unlink()
                report.leftovers_removed += 1
            elif files.plain is not None:
                report.torn_bytes += _cut_torn_tail(files.plain, compressed=False)
            for path in (files.zst, files.gz):
                if path is None:
                    continue
                # Salvage first, so that quarantine keeps the original with its torn tail too.
                try:
                    salvaged = salvage_damaged(layout, stream, path)
                except OSError as exc:
                    # Left as it is (readers skip the damage, appends go after it): ingest
                    # must not stop for want of room to salvage an old day.
                    log.error("DAMAGED day file %s could not be salvaged (%s); left in place", path, exc)
                    report.failed.append((path, str(exc)))
                    continue
                if salvaged is not None:
                    report.salvaged.append(salvaged)
                else:
                    report.torn_bytes += _cut_torn_tail(path, compressed=True)
        fsync_dir(directory)
    if report.torn_bytes or report.leftovers_removed:
        log.warning(
            "start-up repair: removed %d torn bytes and %d leftover files",
            report.torn_bytes, report.leftovers_removed,
        )
    just = {s.quarantined for s in report.salvaged}
    for kept in quarantined(layout):
        if kept.path not in just:
            log.error(
                "DAMAGED day file %s: its damaged original is still in quarantine at %s "
                "(run `chatlog verify`; remove it from there once dealt with)", kept.day_file, kept.path,
            )
    return report


class _LogId(msgspec.Struct):
    log_id: str


class _FeedbackId(msgspec.Struct):
    feedback_id: str


def realign_offsets(conn: sqlite3.Connection, layout: StorageLayout, salvaged: list[Salvage]) -> None:
    """After a salvage, count no more applied lines for a day than its file still holds.

    The derived state counts lines, and a salvaged file lost the lines of its damaged
    frames: left as it was, the count would point past the end of the file and the
    follower would wait for lines that never come. ``min(applied, kept)`` is exact when
    the damage is in the day's last frames; when an earlier frame was lost it may take a
    few unapplied later lines as applied (the day's statistics then trail its file until
    ``chatlog rebuild-stats``), which is better than never applying the day again.
    """
    for item in salvaged:
        for stream in Stream:
            if item.day_file.parent != layout.stream_dir(stream):
                continue
            day = item.day_file.name.split(".", 1)[0]
            with conn:
                changed = conn.execute(
                    "UPDATE ingest_offsets SET lines = ?, size = NULL WHERE stream = ? AND day = ? AND lines > ?",
                    (item.lines_kept, stream.value, day, item.lines_kept),
                ).rowcount
            if changed:
                log.error("%s: applied lines of %s set back to the %d lines it still holds",
                          item.day_file, day, item.lines_kept)


def rebuild_window(layout: StorageLayout, window: RecentIdWindow, capacity: int) -> int:
    """Refill the id window from yesterday's and today's log files; return ids loaded."""
    today = layout.today()
    decoder = msgspec.json.Decoder(_LogId)
    ids: list[str] = []
    for day in (today - timedelta(days=1), today):
        path = layout.day_files(Stream.LOGS, day).readable
        if path is None:
            continue
        for line in iter_lines(path):
            try:
                ids.append(decoder.decode(line).log_id)
            except (msgspec.DecodeError, msgspec.ValidationError):
                continue
    feedback = msgspec.json.Decoder(_FeedbackId)
    for day in (today - timedelta(days=1), today):
        path = layout.day_files(Stream.FEEDBACK, day).readable
        if path is None:
            continue
        for line in iter_lines(path):
            try:
                ids.append(FEEDBACK_ID_PREFIX + feedback.decode(line).feedback_id)
            except (msgspec.DecodeError, msgspec.ValidationError):
                continue
    for log_id in ids[-capacity:] if capacity else []:
        window.add(log_id)
    return len(window)
