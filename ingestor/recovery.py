"""Start-up repair after a crash: torn tails, interrupted compressions, the id window."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import timedelta

import msgspec

from ingestor.dayfiles import fsync_dir, repair_torn_tail, repair_zstd_tail
from ingestor.idempotency import RecentIdWindow
from shared.layout import StorageLayout, Stream
from shared.reader import iter_lines

log = logging.getLogger("chatlog.ingestor.recovery")


@dataclass
class RepairReport:
    """What start-up repair changed."""

    torn_bytes: int = 0
    leftovers_removed: int = 0


def repair_day_files(layout: StorageLayout) -> RepairReport:
    """Cut torn tails and remove leftovers of interrupted compressions, in every stream."""
    report = RepairReport()
    for stream in Stream:
        directory = layout.stream_dir(stream)
        if not directory.is_dir():
            continue
        for name in os.listdir(directory):
            if name.endswith(".tmp"):
                # A compression or rewrite that never reached its rename.
                (directory / name).unlink(missing_ok=True)
                report.leftovers_removed += 1
        for files in layout.days(stream).values():
            if files.plain is not None and (files.zst is not None or files.gz is not None):
                # The compressed file was renamed into place complete: the plain one is a leftover.
                files.plain.unlink()
                report.leftovers_removed += 1
            elif files.plain is not None:
                fd = os.open(files.plain, os.O_RDWR)
                try:
                    report.torn_bytes += repair_torn_tail(fd)
                finally:
                    os.close(fd)
            if files.zst is not None:
                report.torn_bytes += repair_zstd_tail(files.zst)
        fsync_dir(directory)
    if report.torn_bytes or report.leftovers_removed:
        log.warning(
            "start-up repair: removed %d torn bytes and %d leftover files",
            report.torn_bytes, report.leftovers_removed,
        )
    return report


class _LogId(msgspec.Struct):
    log_id: str


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
    for log_id in ids[-capacity:] if capacity else []:
        window.add(log_id)
    return len(window)
