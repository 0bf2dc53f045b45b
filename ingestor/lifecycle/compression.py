"""Compressing day files to ``.jsonl.zst``, crash-safe at every step.

The steps, each named for the tests' crash hook:

1. ``begin``: stream the plain file's complete lines into ``<day>.jsonl.zst.tmp`` as
   independent zstd frames of about ``frame_bytes`` each, cut on line boundaries (readers
   keep one frame in memory, and a damaged frame costs only its own lines);
   ``frame-written`` follows the first frame, ``tmp-written`` the last.
2. ``tmp-synced``: fsync the temporary file, then decompress it and compare length and
   CRC with what was read, so the only copy is never replaced by a bad one.
3. Under the writer's lock: take in lines appended meanwhile, then rename over
   ``<day>.jsonl.zst`` (``renamed``), fsync the directory (``dir-synced``), remove the
   ``.jsonl`` (``plain-removed``) and fsync the directory again (``done``).

A crash before the rename leaves the ``.jsonl`` (plus a ``.tmp`` that readers ignore and
start-up removes); after it, the ``.zst`` is complete and ``DayFiles.readable`` prefers it
to the leftover ``.jsonl``. Either way each line is read exactly once.

Line numbering is preserved (``ingest_offsets`` counts lines, not bytes): the compressed
file holds the same complete lines in the same order. Only an unterminated tail, the
remains of an append cut short and never acknowledged, is dropped and counted.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import BinaryIO

import zstandard

from ingestor.dayfiles import DayFileWriter, fsync_dir, write_all
from ingestor.lifecycle.guard import day_closed
from ingestor.lifecycle.policy import compress_before, retain_from, today_of
from shared.layout import StorageLayout, Stream
from shared.settings import Settings

FRAME_BYTES = 4 << 20
READ_BYTES = 1 << 20
# Free space wanted before compressing: a fraction of the plain size (copies are ~1/7 of it).
ROOM_FRACTION = 2
STEPS = (
    "begin", "frame-written", "tmp-written", "tmp-synced", "renamed", "dir-synced", "plain-removed", "done",
)
StepHook = Callable[[str], None]


class CompressionMismatch(OSError):
    """The compressed copy does not decompress to what was read; the plain file is kept."""


@dataclass(frozen=True)
class DayCompression:
    """One day file compressed."""

    stream: Stream
    day: date
    bytes_before: int
    bytes_after: int
    torn_bytes: int
    frames: int


@dataclass
class CompressionReport:
    """Every day file compressed by one run, and the ones that failed."""

    done: list[DayCompression] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    leftovers_removed: int = 0
    seconds: float = 0.0

    @property
    def bytes_before(self) -> int:
        """Plain bytes compressed."""
        return sum(d.bytes_before for d in self.done)

    @property
    def bytes_after(self) -> int:
        """Compressed bytes written."""
        return sum(d.bytes_after for d in self.done)

    def account(self) -> str:
        """The one-line account of the run."""
        before, after = self.bytes_before, self.bytes_after
        ratio = f" ({after / before:.1%})" if before else ""
        text = (
            f"compressed {len(self.done)} files, {before} -> {after} bytes{ratio}, "
            f"{sum(d.torn_bytes for d in self.done)} torn bytes dropped, "
            f"{self.leftovers_removed} leftovers removed, {len(self.failed)} failed"
        )
        if self.failed:
            text += ": " + "; ".join(f"{path.name}: {why}" for path, why in self.failed)
        return text


@dataclass
class _Progress:
    consumed: int = 0  # bytes of the plain file compressed (always just after a '\n')
    crc: int = 0
    frames: int = 0
    written: int = 0


def _no_step(_: str) -> None:
    return None


def _segments(src: BinaryIO, start: int, end: int, frame_bytes: int) -> Iterator[bytes]:
    """Runs of whole lines from ``[start, end)``, each about ``frame_bytes`` long."""
    src.seek(start)
    left = end - start
    buffer = b""
    while left > 0:
        chunk = src.read(min(READ_BYTES, left))
        if not chunk:
            break  # cut short meanwhile (a torn tail repaired): keep what was read
        left -= len(chunk)
        buffer += chunk
        while len(buffer) >= frame_bytes:
            cut = buffer.rfind(b"\n", 0, frame_bytes)
            if cut < 0:
                # One line longer than a frame: the frame grows to hold it whole.
                cut = buffer.find(b"\n", frame_bytes)
                if cut < 0:
                    break
            yield buffer[: cut + 1]
            buffer = buffer[cut + 1 :]
    cut = buffer.rfind(b"\n")
    if cut >= 0:
        yield buffer[: cut + 1]


def _append_frames(
    plain: Path, start: int, end: int, fd: int, cctx: zstandard.ZstdCompressor,
    frame_bytes: int, progress: _Progress, step: StepHook,
) -> None:
    with open(plain, "rb") as src:
        for segment in _segments(src, start, end, frame_bytes):
            frame = cctx.compress(segment)
            write_all(fd, frame)
            progress.consumed += len(segment)
            progress.crc = zlib.crc32(segment, progress.crc)
            progress.written += len(frame)
            progress.frames += 1
            if progress.frames == 1:
                step("frame-written")


def _check_copy(tmp: Path, progress: _Progress) -> None:
    """Decompress the whole temporary file and compare it with what was compressed."""
    crc = 0
    length = 0
    with open(tmp, "rb") as f, zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True) as r:
        while chunk := r.read(READ_BYTES):
            crc = zlib.crc32(chunk, crc)
            length += len(chunk)
    if (length, crc) != (progress.consumed, progress.crc):
        raise CompressionMismatch(
            f"{tmp.name} decompresses to {length} bytes (crc {crc:#x}), "
            f"expected {progress.consumed} (crc {progress.crc:#x})"
        )


def _check_room(directory: Path, plain_size: int) -> None:
    """Refuse to start when the copy might fill the disk: ingest needs that space more."""
    fs = os.statvfs(directory)
    free = fs.f_bavail * fs.f_frsize
    needed = plain_size // ROOM_FRACTION
    if free < needed:
        raise OSError(errno.ENOSPC, f"only {free} bytes free, {needed} wanted for the compressed copy")


def remove_leftover_plain(layout: StorageLayout, stream: Stream, day: date) -> bool:
    """Remove a ``.jsonl`` left beside its compressed file by an interrupted compression."""
    files = layout.day_files(stream, day)
    if files.plain is None or (files.zst is None and files.gz is None):
        return False
    files.plain.unlink()
    fsync_dir(layout.stream_dir(stream))
    return True


def compress_day(
    layout: StorageLayout,
    stream: Stream,
    day: date,
    *,
    level: int,
    files: DayFileWriter | None = None,
    frame_bytes: int = FRAME_BYTES,
    steps: StepHook | None = None,
) -> DayCompression | None:
    """Compress one day's ``.jsonl`` into ``.jsonl.zst``; None when there is nothing to compress.

    ``files`` is the running ingestor's writer: the bulk is compressed without its lock
    and only the final catch-up and rename hold it, so ingest is never stalled for long.
    ``steps`` is called with each name of ``STEPS`` (tests use it to crash at each step).
    """
    step = steps or _no_step
    key = (stream, day)
    plain = layout.day_path(stream, day)
    target = layout.day_path(stream, day, ".jsonl.zst")
    tmp = target.with_name(target.name + ".tmp")
    with day_closed(files, key):
        existing = layout.day_files(stream, day)
        if existing.plain is None or existing.zst is not None or existing.gz is not None:
            return None
        # Under the lock the file holds whole appends only: no write is half done.
        stat = os.stat(plain)
    _check_room(plain.parent, stat.st_size)
    step("begin")
    cctx = zstandard.ZstdCompressor(level=level, write_checksum=True)
    progress = _Progress()
    published = False
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        _append_frames(plain, 0, stat.st_size, fd, cctx, frame_bytes, progress, step)
        step("tmp-written")
        os.fsync(fd)
        step("tmp-synced")
        _check_copy(tmp, progress)
        with day_closed(files, key):
            now = os.stat(plain)
            if (now.st_dev, now.st_ino) != (stat.st_dev, stat.st_ino) or now.st_size < progress.consumed:
                raise CompressionMismatch(f"{plain.name} was replaced while it was being compressed")
            if now.st_size > progress.consumed:
                # Late events appended since the first pass (rare): a few more frames.
                checked = progress.frames
                _append_frames(plain, progress.consumed, now.st_size, fd, cctx, frame_bytes, progress, step)
                if progress.frames > checked:
                    os.fsync(fd)
                    _check_copy(tmp, progress)
            torn = now.st_size - progress.consumed
            os.rename(tmp, target)
            published = True
            step("renamed")
            fsync_dir(target.parent)
            step("dir-synced")
            os.unlink(plain)
            step("plain-removed")
            fsync_dir(target.parent)
            step("done")
    except BaseException:
        if not published:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise
    finally:
        os.close(fd)
    return DayCompression(stream, day, now.st_size, progress.written, torn, progress.frames)


def due_for_compression(
    layout: StorageLayout, settings: Settings, now: datetime | None = None
) -> list[tuple[Stream, date]]:
    """Every (stream, day) whose plain file is past its compress-after age and still retained."""
    today = today_of(layout, now)
    due = []
    for stream in Stream:
        before = compress_before(settings, stream, today)
        oldest = retain_from(settings, stream, today)
        for day, day_files in layout.days(stream).items():
            if oldest <= day < before and day_files.plain is not None:
                due.append((stream, day))
    return due


def compress_due(
    layout: StorageLayout,
    settings: Settings,
    *,
    now: datetime | None = None,
    level: int | None = None,
    files: DayFileWriter | None = None,
) -> CompressionReport:
    """Compress every day file past its compress-after age; a failed day does not stop the rest."""
    started = time.perf_counter()
    report = CompressionReport()
    for stream, day in due_for_compression(layout, settings, now):
        try:
            with day_closed(files, (stream, day)):
                if remove_leftover_plain(layout, stream, day):
                    report.leftovers_removed += 1
                    continue
            result = compress_day(
                layout, stream, day, level=level or settings.zstd_level, files=files
            )
        except OSError as exc:
            report.failed.append((layout.day_path(stream, day), exc.strerror or str(exc)))
            continue
        if result is not None:
            report.done.append(result)
    report.seconds = time.perf_counter() - started
    return report
