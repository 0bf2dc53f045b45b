"""Following the log day files: the lines appended since the database last applied them.

The derived state (sessions, statistics, conversations) is computed from the day
files themselves, never from memory handed over by the writer, so it can live in
another process and a crash on either side loses nothing: the database records how
many lines of each day it has applied (``ingest_offsets``), and the follower reads
on from there. A plain ``.jsonl`` day is read from a remembered byte offset; a
compressed day (late events, or a day compressed while behind) is re-read and the
applied lines skipped, which is rare and slower but the same lines.

Lines are counted as the shared reader counts them: complete, non-empty lines; a
line that does not decode still counts (it advances the offset, it derives nothing).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import BinaryIO

import msgspec

from ingestor.records import EncodedRecord
from shared.layout import StorageLayout, Stream
from shared.reader import ReadCounts, iter_lines
from shared.wire import LogRecord

# Bytes read per day per pull: bounds memory and the size of one commit when far behind.
PULL_BYTES = 1 << 20

_decoder = msgspec.json.Decoder(LogRecord)
_many = msgspec.json.Decoder(list[LogRecord])


@dataclass(slots=True)
class _Position:
    lines: int  # lines applied (or read, pending commit)
    fed: int  # lines already handed to consumers (never re-fed after a failed commit)
    offset: int | None = None  # byte offset after ``lines`` in the plain file, once known
    inode: int | None = None
    compressed_size: int | None = None  # size of a compressed file when last read


@dataclass
class FollowedLines:
    """New lines of one day: their records, how many lines they advance, which are new to consumers."""

    day: date
    records: list[EncodedRecord] = field(default_factory=list)
    lines: int = 0
    fresh_from: int = 0  # records[fresh_from:] were never handed to consumers
    more: bool = False  # stopped at PULL_BYTES: call again
    size: int | None = None  # bytes of the file its lines so far cover (the whole file if compressed)


def decode_lines(lines: list[bytes]) -> list[LogRecord | None]:
    """Each line as a record, or None where it does not decode (fast path: one array decode)."""
    if not lines:
        return []
    try:
        return list(_many.decode(b"[" + b",".join(lines) + b"]"))
    except (msgspec.DecodeError, msgspec.ValidationError):
        out: list[LogRecord | None] = []
        for line in lines:
            try:
                out.append(_decoder.decode(line))
            except (msgspec.DecodeError, msgspec.ValidationError):
                out.append(None)
        return out


class LogFollower:
    """Reads each log day file on from the line the database has applied."""

    def __init__(self, layout: StorageLayout, applied: dict[date, int]) -> None:
        self._layout = layout
        self._days = {day: _Position(lines, lines) for day, lines in applied.items()}

    def applied(self, day: date) -> int:
        """Lines of ``day`` read so far (the database has them once the pending commit lands)."""
        position = self._days.get(day)
        return position.lines if position else 0

    def covered(self, day: date) -> int | None:
        """Bytes of the day's file the lines read so far cover (a compressed file: all of it)."""
        position = self._days.get(day)
        if position is None:
            return None
        return position.offset if position.offset is not None else position.compressed_size

    def reset(self, applied: dict[date, int]) -> None:
        """Go back to what the database holds (after a failed commit); consumers are not re-fed."""
        for day, position in self._days.items():
            lines = applied.get(day, 0)
            position.lines, position.offset, position.inode, position.compressed_size = lines, None, None, None

    def lag_bytes(self, days: list[date]) -> int:
        """Bytes of plain day files not read yet (days not read since start and compressed days: 0)."""
        total = 0
        for day in days:
            position = self._days.get(day)
            if position is None or position.offset is None:
                continue
            try:
                size = self._layout.day_path(Stream.LOGS, day).stat().st_size
            except OSError:
                continue
            total += max(0, size - position.offset)
        return total

    def read(self, day: date) -> FollowedLines:
        """The lines of ``day`` after those read so far (up to PULL_BYTES of a plain file)."""
        position = self._days.setdefault(day, _Position(0, 0))
        path = self._layout.day_files(Stream.LOGS, day).readable
        out = FollowedLines(day)
        if path is None:
            return out
        offsets: list[int] = []
        if path.name.endswith(".jsonl"):
            try:
                raw = self._read_plain(path, position, out, offsets)
            except FileNotFoundError:
                return out  # compressed or removed meanwhile: the next pull sees what is there
        else:
            raw = self._read_compressed(path, position)
        out.size = self.covered(day)
        first_line = position.lines
        decoded = decode_lines(raw)
        if offsets:
            out.records = [
                EncodedRecord(r, day, b"", first_line + i, offsets[i], len(raw[i]))
                for i, r in enumerate(decoded) if r is not None
            ]
        else:
            out.records = [EncodedRecord(r, day, b"") for r in decoded if r is not None]
        out.lines = len(raw)
        position.lines += len(raw)
        # Records before the fed mark were handed to consumers before a failed commit.
        already = max(0, position.fed - first_line)
        if already:
            out.fresh_from = sum(1 for r in decoded[:already] if r is not None)
        position.fed = max(position.fed, position.lines)
        return out

    def _read_plain(self, path: Path, position: _Position, out: FollowedLines, offsets: list[int]) -> list[bytes]:
        with open(path, "rb") as f:
            stat = os.fstat(f.fileno())
            if position.offset is None or position.inode != stat.st_ino:
                position.offset = _offset_after_lines(f, position.lines)
                position.inode = stat.st_ino
            if stat.st_size <= position.offset:
                return []
            f.seek(position.offset)
            data = f.read(min(stat.st_size - position.offset, PULL_BYTES))
        cut = data.rfind(b"\n")
        if cut < 0:
            return []  # only a line being written (or torn): wait for its end
        out.more = position.offset + len(data) < stat.st_size
        lines: list[bytes] = []
        at = position.offset
        for line in data[:cut].split(b"\n"):
            if line:
                lines.append(line)
                offsets.append(at)
            at += len(line) + 1
        position.offset += cut + 1
        return lines

    def _read_compressed(self, path: Path, position: _Position) -> list[bytes]:
        size = path.stat().st_size
        if position.compressed_size == size:
            return []
        position.offset, position.inode = None, None
        lines: list[bytes] = []
        for number, line in enumerate(iter_lines(path, ReadCounts())):
            if number >= position.lines:
                lines.append(line)
        position.compressed_size = size
        return lines


def _offset_after_lines(f: BinaryIO, lines: int) -> int:
    """The byte offset just after the first ``lines`` non-empty lines of an open file."""
    f.seek(0)
    if lines <= 0:
        return 0
    offset = 0
    seen = 0
    previous = b"\n"  # so that a leading blank line does not count
    while True:
        chunk = f.read(1 << 20)
        if not chunk:
            return offset
        start = 0
        while True:
            cut = chunk.find(b"\n", start)
            if cut < 0:
                break
            before = chunk[cut - 1 : cut] if cut > 0 else previous
            if before != b"\n":
                seen += 1
                if seen == lines:
                    return offset + cut + 1
            start = cut + 1
        previous = chunk[-1:]
        offset += len(chunk)
