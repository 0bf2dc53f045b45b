"""Appending to day files durably: write, fsync, and undo on any failure.

A batch either reaches the disk whole and fsynced, or every file it touched is cut
back to its previous length: no partial line is ever left for a reader. A failed
fsync is never retried on the same data (after a failed fsync the kernel may have
dropped the dirty pages and marked them clean); the batch fails and is rewritten by
the client's retry.

A day whose file is already compressed gets late events as an extra zstd frame
(``.jsonl.gz`` days get an extra gzip member, both with checksums): readers see one
file per day.

Repair here only ever cuts a torn tail (the unterminated last line, or the cut-short
last frame, of an append a crash interrupted), and only under the file's append lock,
so another process's append in progress is never mistaken for one. Damage anywhere
else is left for ``ingestor.lifecycle.salvage``, which keeps the original whole.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import gzip
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import zstandard

from shared.compressed import SegmentState, format_of, walk
from shared.layout import StorageLayout, Stream, make_private_dirs

DayKey = tuple[Stream, date]


def fsync_dir(path: Path) -> None:
    """Make a directory entry change (create, rename, unlink) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is written (short writes happen near a full disk)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.EIO, "write made no progress")
        view = view[written:]


@dataclass
class AppendResult:
    """What one durable append did: bytes written, and where each day's lines start."""

    bytes_written: int = 0
    # Per day: the file kind (".jsonl", ".jsonl.zst", ...) and the offset the batch starts at.
    starts: dict[DayKey, tuple[str, int]] = field(default_factory=dict)


@dataclass
class _OpenDay:
    fd: int
    path: Path
    kind: str  # ".jsonl", ".jsonl.zst" or ".jsonl.gz"
    checked: bool = False  # its tail was checked for a torn append under the lock


class DayFileWriter:
    """Owns the open day files of one data directory; used from one thread at a time.

    ``lock`` is also taken by the lifecycle jobs (compression, erasure) so that a day
    is never rewritten while events are being appended to it.
    """

    def __init__(self, layout: StorageLayout, zstd_level: int = 6) -> None:
        self._layout = layout
        self._open: dict[DayKey, _OpenDay] = {}
        # Checksummed frames: a damaged frame is then detected and skipped, never misread.
        self._zstd = zstandard.ZstdCompressor(level=zstd_level, write_checksum=True)
        self.lock = threading.RLock()

    def append(self, groups: Mapping[DayKey, Sequence[bytes]]) -> AppendResult:
        """Append each day's lines and fsync them all.

        On any OSError every touched file is cut back to where it was and the error
        is raised: the batch is then not stored at all.
        """
        with self.lock:
            touched: list[tuple[_OpenDay, int]] = []
            result = AppendResult()
            try:
                for key, lines in groups.items():
                    day = self._locked_day(key)
                    before = os.fstat(day.fd).st_size
                    touched.append((day, before))
                    payload = self._payload(day, lines)
                    write_all(day.fd, payload)
                    result.bytes_written += len(payload)
                    result.starts[key] = (day.kind, before)
                for day, _ in touched:
                    os.fsync(day.fd)
            except OSError:
                self._undo(touched)
                raise
            finally:
                for day, _ in touched:
                    with contextlib.suppress(OSError):
                        fcntl.flock(day.fd, fcntl.LOCK_UN)
            return result

    def _locked_day(self, key: DayKey) -> _OpenDay:
        """The day's open file, locked against the other process that appends to it.

        Conversation files have two writers (the ingestor for posted conversations and
        the derived-state process for assembled ones): the lock makes each append, its
        fsync and its undo whole, and the offsets in ``AppendResult`` true. A torn tail
        is cut under the lock too, where no append of the other writer is in progress.
        """
        day = self._day(key)
        fcntl.flock(day.fd, fcntl.LOCK_EX)
        for _ in range(3):
            if not _replaced(day):
                break
            # Replaced meanwhile (compressed, salvaged, rewritten): append to what is there now.
            self._forget(day)
            day = self._day(key)
            fcntl.flock(day.fd, fcntl.LOCK_EX)
        if not day.checked:
            try:
                if day.kind == ".jsonl":
                    repair_torn_tail(day.fd)
                else:
                    # Reopened after a failed append could not be cut back: drop a torn frame
                    # so new frames never land behind it.
                    repair_compressed_tail(day.fd, day.path)
            except OSError:
                self._forget(day)
                raise
            day.checked = True
        return day

    def _payload(self, day: _OpenDay, lines: Sequence[bytes]) -> bytes:
        data = b"".join(lines)
        if day.kind == ".jsonl.zst":
            return bytes(self._zstd.compress(data))
        if day.kind == ".jsonl.gz":
            return gzip.compress(data, mtime=0)
        return data

    def _undo(self, touched: list[tuple[_OpenDay, int]]) -> None:
        for day, before in touched:
            try:
                os.ftruncate(day.fd, before)
                os.fsync(day.fd)
            except OSError:
                # Cannot even cut back: forget the descriptor; reopening repairs the tail.
                self._forget(day)

    def _forget(self, day: _OpenDay) -> None:
        for key, value in list(self._open.items()):
            if value is day:
                del self._open[key]
        with contextlib.suppress(OSError):
            os.close(day.fd)

    def _day(self, key: DayKey) -> _OpenDay:
        day = self._open.get(key)
        if day is not None:
            return day
        stream, d = key
        directory = self._layout.stream_dir(stream)
        make_private_dirs(directory)
        files = self._layout.day_files(stream, d)
        path = files.zst or files.gz or self._layout.day_path(stream, d)
        kind = ".jsonl.zst" if files.zst else ".jsonl.gz" if files.gz else ".jsonl"
        created = not path.exists()
        # Read access too: repair_torn_tail reads the tail of an existing file.
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            if created:
                fsync_dir(directory)
        except OSError:
            os.close(fd)
            raise
        day = _OpenDay(fd=fd, path=path, kind=kind, checked=created)
        self._open[key] = day
        return day

    def close_day(self, key: DayKey) -> None:
        """Close one day's file (before the lifecycle rewrites or removes it)."""
        with self.lock:
            day = self._open.pop(key, None)
            if day is not None:
                os.close(day.fd)

    def close_all_but(self, keep: set[DayKey]) -> None:
        """Close every open day file not in ``keep`` (old days are rarely written)."""
        with self.lock:
            for key in [k for k in self._open if k not in keep]:
                self.close_day(key)

    def close(self) -> None:
        """Close every open file."""
        self.close_all_but(set())


def repair_torn_tail(fd: int) -> int:
    """Cut a plain day file back to its last ``\\n``; return the bytes removed.

    Only a crash mid-append leaves an unterminated tail, and such a line was never
    acknowledged, so removing it loses nothing that was promised.
    """
    size = os.fstat(fd).st_size
    if size == 0:
        return 0
    block = 1 << 16
    end = size
    while end > 0:
        start = max(0, end - block)
        chunk = os.pread(fd, end - start, start)
        if end == size and chunk.endswith(b"\n"):
            return 0
        cut = chunk.rfind(b"\n")
        if cut >= 0:
            keep = start + cut + 1
            os.ftruncate(fd, keep)
            os.fsync(fd)
            return size - keep
        end = start
    os.ftruncate(fd, 0)
    os.fsync(fd)
    return size


def _replaced(day: _OpenDay) -> bool:
    """True when the day's path no longer names the open file (renamed over or removed)."""
    held = os.fstat(day.fd)
    if held.st_nlink == 0:
        return True
    try:
        now = os.stat(day.path)
    except FileNotFoundError:
        return True
    return (now.st_dev, now.st_ino) != (held.st_dev, held.st_ino)


def torn_frame_start(fd: int, path: Path) -> int | None:
    """Where a compressed file's torn last frame starts (None when its last frame is whole).

    Only a cut-short last frame (or zero bytes after the last frame) with nothing
    readable after it counts: damaged bytes are not a torn tail.
    """
    fmt = format_of(path.name)
    if fmt is None:
        raise ValueError(f"{path.name} is not a compressed day file")
    last = None
    with open(os.dup(fd), "rb") as f:
        for segment in walk(f, fmt):
            last = segment
    if last is not None and last.state is SegmentState.TORN:
        return last.start
    return None


def repair_compressed_tail(fd: int, path: Path) -> int:
    """Cut a torn last frame off a ``.zst`` (or ``.gz``) day file; return the bytes removed.

    Like ``repair_torn_tail``: such a frame was never acknowledged. Any other damage
    is left in place (see ``ingestor.lifecycle.salvage``).
    """
    start = torn_frame_start(fd, path)
    if start is None:
        return 0
    size = os.fstat(fd).st_size
    os.ftruncate(fd, start)
    os.fsync(fd)
    return size - start
