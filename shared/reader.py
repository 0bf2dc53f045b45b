"""One reader for day files: ``.jsonl``, ``.jsonl.zst`` and ``.jsonl.gz`` alike.

It never raises on a damaged file. A last line without its ``\\n`` (a write cut
short by a crash) is skipped and counted as torn; so is a ``.zst`` frame (or gzip
member) cut short at the end, whose lines are dropped whole because the writer
acknowledges a frame only after it is complete and fsynced. A damaged frame is
skipped whole and counted, and reading goes on at the next valid frame
(``shared.compressed``). Lines that do not decode are skipped and counted as
corrupt by the record-level helpers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import msgspec

from shared.compressed import CHUNK, SegmentState, format_of, walk

__all__ = ["CHUNK", "ReadCounts", "iter_lines", "iter_records", "read_bytes"]
T = TypeVar("T")


@dataclass
class ReadCounts:
    """What a read met: whole lines, torn tails, undecodable lines, unreadable files.

    ``damaged`` counts runs of damaged compressed bytes skipped (each followed by a
    valid frame, or ending the file without being a torn append); ``skipped_bytes``
    counts the stored bytes no line was read from (damaged runs and torn tails).
    """

    lines: int = 0
    torn: int = 0
    corrupt: int = 0
    unreadable_files: int = 0
    damaged: int = 0
    skipped_bytes: int = 0

    def add(self, other: ReadCounts) -> None:
        """Accumulate another read's counts into this one."""
        self.lines += other.lines
        self.torn += other.torn
        self.corrupt += other.corrupt
        self.unreadable_files += other.unreadable_files
        self.damaged += other.damaged
        self.skipped_bytes += other.skipped_bytes


def _split_complete(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Whole lines of ``buffer`` and the unterminated rest."""
    cut = buffer.rfind(b"\n")
    if cut < 0:
        return [], buffer
    return buffer[:cut].split(b"\n"), buffer[cut + 1 :]


def _plain_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


def _yield_lines(lines: list[bytes], counts: ReadCounts) -> Iterator[bytes]:
    for line in lines:
        if line:
            counts.lines += 1
            yield line


def _compressed_lines(path: Path, counts: ReadCounts) -> Iterator[bytes]:
    fmt = format_of(path.name)
    assert fmt is not None
    with open(path, "rb") as f:
        for segment in walk(f, fmt):
            if segment.state is SegmentState.OK:
                # Frames always end on a line boundary, so each frame splits on its own.
                lines, rest = _split_complete(segment.content)
                yield from _yield_lines(lines, counts)
                if rest:
                    counts.torn += 1
                continue
            counts.skipped_bytes += segment.end - segment.start
            if segment.state is SegmentState.TORN:
                counts.torn += 1
            else:
                counts.damaged += 1


def iter_lines(path: Path, counts: ReadCounts | None = None) -> Iterator[bytes]:
    """Yield every complete, non-empty line of a day file (without its ``\\n``)."""
    counts = counts if counts is not None else ReadCounts()
    name = path.name
    try:
        if format_of(name) is not None:
            yield from _compressed_lines(path, counts)
            return
        parts: list[bytes] = []  # the unterminated rest, kept in pieces: a long line costs linear time
        for chunk in _plain_chunks(path):
            if b"\n" not in chunk:
                parts.append(chunk)
                continue
            lines, tail = _split_complete(b"".join(parts) + chunk if parts else chunk)
            parts = [tail] if tail else []
            yield from _yield_lines(lines, counts)
        rest = b"".join(parts)
        if rest:
            counts.torn += 1
            counts.skipped_bytes += len(rest)
    except FileNotFoundError:
        compressed = path.with_name(path.name + ".zst")
        if name.endswith(".jsonl") and compressed.exists():
            # Compressed between listing and opening: the same lines are in the .zst now.
            yield from iter_lines(compressed, counts)
            return
        counts.unreadable_files += 1
    except OSError:
        counts.unreadable_files += 1


def iter_records(
    paths: Iterable[Path], type_: type[T], counts: ReadCounts | None = None
) -> Iterator[T]:
    """Decode every line of the given files as ``type_``, skipping corrupt lines."""
    counts = counts if counts is not None else ReadCounts()
    decoder = msgspec.json.Decoder(type_)
    for path in paths:
        for line in iter_lines(path, counts):
            try:
                yield decoder.decode(line)
            except (msgspec.DecodeError, msgspec.ValidationError):
                counts.corrupt += 1


def read_bytes(path: Path, counts: ReadCounts | None = None) -> bytes:
    """The whole, decompressed, complete-lines content of a day file (for bulk parsers)."""
    lines = list(iter_lines(path, counts))
    if not lines:
        return b""
    return b"\n".join(lines) + b"\n"
