"""Following the log day files: the lines appended since the database last applied them.

The derived state (sessions, statistics, conversations) is computed from the day
files themselves, never from memory handed over by the writer, so it can live in
another process and a crash on either side loses nothing: the database records how
many lines of each day it has applied (``ingest_offsets``), and the follower reads
on from there. A plain ``.jsonl`` day is read from a remembered byte offset; a
compressed day (late events, or a day compressed while behind) is re-read and the
applied lines skipped, which is rare and slower but the same lines.

Lines are counted as the shared reader counts them: complete, non-empty lines, of
any length (a line longer than PULL_BYTES is read on to its newline; only an
unterminated tail is waited for). A line that does not decode, or holds a record
the derived state cannot apply (``chat_statistics.admission``), still counts: it
advances the offset, derives nothing, and is handed back as ``rejected`` so that
it is quarantined in the same commit.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import BinaryIO

import msgspec

from ingestor.records import EncodedRecord
from shared.layout import StorageLayout, Stream
from shared.reader import ReadCounts, iter_lines
from shared.wire import LogRecord

# Bytes read per day per pull: bounds memory and the size of one commit when far behind
# (a single longer line is read whole: the ingestor accepts lines up to its body limit).
PULL_BYTES = 1 << 20
# The same while catching up on a backlog at start: fewer, larger commits. Each commit
# re-ranks the top queries of the days it touches, which costs in proportion to the
# day's rows, so a day in 25 commits cost several times a day in 4.
CATCH_UP_PULL_BYTES = 8 << 20

# Why a record cannot be applied, or None (``chat_statistics.admission.inadmissible``).
RecordCheck = Callable[[LogRecord], "str | None"]

_decoder = msgspec.json.Decoder(LogRecord)


@dataclass(slots=True)
class _Position:
    lines: int  # lines applied (or read, pending commit)
    fed: int  # lines already handed to consumers (never re-fed after a failed commit)
    offset: int | None = None  # byte offset after ``lines`` in the plain file, once known
    inode: int | None = None
    compressed_size: int | None = None  # size of a compressed file when last read
    # Bytes after ``offset`` already searched for a newline in vain (an unterminated tail).
    searched: int = 0


@dataclass(frozen=True, slots=True)
class RejectedLine:
    """A line that advances its day's count but derives nothing: it is quarantined."""

    day: date
    number: int  # 1-based, among the file's non-empty lines
    offset: int | None  # in the plain file, when read from one
    reason: str
    raw: bytes


@dataclass
class FollowedLines:
    """New lines of one day: their records, how many lines they advance, which are new to consumers."""

    day: date
    records: list[EncodedRecord] = field(default_factory=list)
    lines: int = 0
    fresh_from: int = 0  # records[fresh_from:] were never handed to consumers
    rejected: list[RejectedLine] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)  # every line read, in order (kept until folded)
    more: bool = False  # stopped at PULL_BYTES: call again
    size: int | None = None  # bytes of the file its lines so far cover (the whole file if compressed)
    first: int = 0  # lines of the day before these
    order: list[EncodedRecord | RejectedLine] = field(default_factory=list)  # records and rejected, by line

    def singles(self) -> list[FollowedLines]:
        """These lines as one FollowedLines each (to apply them one transaction at a time)."""
        out: list[FollowedLines] = []
        records = 0
        for i, item in enumerate(self.order):
            one = FollowedLines(self.day, lines=1, raw=[self.raw[i]], first=self.first + i)
            one.size = self.size if i == len(self.order) - 1 else None
            if isinstance(item, RejectedLine):
                one.rejected.append(item)
            else:
                one.records.append(item)
                one.fresh_from = 1 if records < self.fresh_from else 0
                records += 1
            out.append(one)
        return out


def decode_lines(lines: list[bytes]) -> list[LogRecord | str]:
    """Each line as a record, or why it does not decode.

    One decode per line, never one array decode of the joined lines: a crafted line
    (two objects, or half of one) would shift every record after it in the array.
    """
    out: list[LogRecord | str] = []
    for line in lines:
        try:
            out.append(_decoder.decode(line))
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            out.append(f"does not decode: {exc}")
    return out


class LogFollower:
    """Reads each log day file on from the line the database has applied."""

    def __init__(
        self,
        layout: StorageLayout,
        applied: dict[date, int],
        check: RecordCheck | None = None,
        pull_bytes: int = PULL_BYTES,
        stream: Stream = Stream.LOGS,
    ) -> None:
        self._layout = layout
        self._stream = stream
        self._check = check
        self.pull_bytes = pull_bytes  # the catch-up reads larger pieces than the live path
        self._days = {day: _Position(lines, lines) for day, lines in applied.items()}
        # Compressed days read whole (each a decompression of the day): a steady state adds none.
        self.compressed_reads = 0

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

    def covered_days(self) -> dict[date, int]:
        """``covered`` of every day read since this follower started or was last reset."""
        return {day: size for day in self._days if (size := self.covered(day)) is not None}

    def reset(self, applied: dict[date, int]) -> None:
        """Go back to what the database holds (after a failed commit); consumers are not re-fed."""
        for day, position in self._days.items():
            lines = applied.get(day, 0)
            position.lines, position.offset, position.inode, position.compressed_size = lines, None, None, None

    def unapplied(self) -> dict[date, int]:
        """Days with lines handed to consumers but not read since a reset: how many lines that is up to."""
        return {day: p.fed for day, p in self._days.items() if p.lines < p.fed}

    def lag_bytes(self, days: list[date]) -> int:
        """Bytes of plain day files not read yet (days not read since start and compressed days: 0)."""
        total = 0
        for day in days:
            position = self._days.get(day)
            if position is None or position.offset is None:
                continue
            try:
                size = self._layout.day_path(self._stream, day).stat().st_size
            except OSError:
                continue
            total += max(0, size - position.offset)
        return total

    def read_raw(self, day: date) -> FollowedLines:
        """The raw lines of ``day`` after those read so far, counted as read but not decoded.

        For streams whose lines are not log records (feedback): ``raw`` holds them.
        """
        out = FollowedLines(day)
        raw, _ = self._read_lines(day, out)
        out.lines, out.raw = len(raw), raw
        position = self._days[day]
        position.lines += len(raw)
        position.fed = max(position.fed, position.lines)
        return out

    def _read_lines(self, day: date, out: FollowedLines) -> tuple[list[bytes], list[int]]:
        position = self._days.setdefault(day, _Position(0, 0))
        path = self._layout.day_files(self._stream, day).readable
        offsets: list[int] = []
        if path is None:
            return [], offsets
        if path.name.endswith(".jsonl"):
            try:
                raw = self._read_plain(path, position, out, offsets)
            except FileNotFoundError:
                return [], []  # compressed or removed meanwhile: the next pull sees what is there
        else:
            raw = self._read_compressed(path, position)
        out.size = self.covered(day)
        out.first = position.lines
        return raw, offsets

    def read(self, day: date) -> FollowedLines:
        """The lines of ``day`` after those read so far (about PULL_BYTES of a plain file)."""
        out = FollowedLines(day)
        raw, offsets = self._read_lines(day, out)
        position = self._days[day]
        if not raw:
            return out
        first_line = position.lines
        check = self._check
        for i, decoded in enumerate(decode_lines(raw)):
            reason = decoded if isinstance(decoded, str) else check(decoded) if check is not None else None
            if reason is not None or isinstance(decoded, str):
                rejected = RejectedLine(day, first_line + i + 1, offsets[i] if offsets else None, reason or "", raw[i])
                out.rejected.append(rejected)
                out.order.append(rejected)
                continue
            if offsets:
                item = EncodedRecord(decoded, day, b"", first_line + i, offsets[i], len(raw[i]))
            else:
                item = EncodedRecord(decoded, day, b"")
            out.records.append(item)
            out.order.append(item)
            # Records before the fed mark were handed to consumers before a failed commit.
            if first_line + i < position.fed:
                out.fresh_from = len(out.records)
        out.lines = len(raw)
        out.raw = raw
        position.lines += len(raw)
        position.fed = max(position.fed, position.lines)
        return out

    def _read_plain(
        self, path: Path, position: _Position, out: FollowedLines, offsets: list[int]
    ) -> list[bytes]:
        with open(path, "rb") as f:
            stat = os.fstat(f.fileno())
            if position.offset is None or position.inode != stat.st_ino:
                position.offset = _offset_after_lines(f, position.lines)
                position.inode = stat.st_ino
                position.searched = 0
            start = position.offset
            # Past a tail known to have no newline, only growth of the file can change anything.
            if stat.st_size <= start + position.searched:
                return []
            f.seek(start)
            data = f.read(min(stat.st_size - start, self.pull_bytes))
            cut = data.rfind(b"\n")
            if cut < 0 and start + len(data) < stat.st_size:
                # One line longer than a pull: read on to its newline.
                parts, size = [data], len(data)
                while chunk := f.read(min(stat.st_size - start - size, self.pull_bytes)):
                    parts.append(chunk)
                    newline = chunk.find(b"\n")
                    if newline >= 0:
                        cut = size + newline
                        break
                    size += len(chunk)
                data = b"".join(parts)
        if cut < 0:
            position.searched = len(data)
            return []  # only a line being written (or torn): wait for its end
        position.searched = 0
        lines: list[bytes] = []
        at = start
        for line in data[:cut].split(b"\n"):
            if line:
                lines.append(line)
                offsets.append(at)
            at += len(line) + 1
        out.more = start + cut + 1 < stat.st_size
        position.offset = start + cut + 1
        return lines

    def _read_compressed(self, path: Path, position: _Position) -> list[bytes]:
        size = path.stat().st_size
        if position.compressed_size == size:
            return []
        position.offset, position.inode = None, None
        self.compressed_reads += 1
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
