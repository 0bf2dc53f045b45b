"""One reader for day files: ``.jsonl``, ``.jsonl.zst`` and ``.jsonl.gz`` alike.

It never raises on a damaged file. A last line without its ``\\n`` (a write cut
short by a crash) is skipped and counted as torn; so is a ``.zst`` frame cut
short, whose lines are dropped whole because the writer acknowledges a frame only
after it is complete and fsynced. Lines that do not decode are skipped and
counted as corrupt by the record-level helpers.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import msgspec
import zstandard

CHUNK = 1 << 20
T = TypeVar("T")


@dataclass
class ReadCounts:
    """What a read met: whole lines, torn tails, undecodable lines, unreadable files."""

    lines: int = 0
    torn: int = 0
    corrupt: int = 0
    unreadable_files: int = 0

    def add(self, other: ReadCounts) -> None:
        """Accumulate another read's counts into this one."""
        self.lines += other.lines
        self.torn += other.torn
        self.corrupt += other.corrupt
        self.unreadable_files += other.unreadable_files


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


def _gzip_chunks(path: Path, counts: ReadCounts) -> Iterator[bytes]:
    try:
        with gzip.open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk
    except (EOFError, OSError, zlib.error):
        counts.torn += 1


def _zstd_frames(path: Path, counts: ReadCounts) -> Iterator[bytes]:
    """Yield the decompressed content of each complete frame; a damaged frame ends the file."""
    dctx = zstandard.ZstdDecompressor()
    with open(path, "rb") as f:
        pending = b""
        out: list[bytes] = []
        dobj = dctx.decompressobj()
        fed = False
        while True:
            data = pending or f.read(CHUNK)
            pending = b""
            if not data:
                break
            fed = True
            try:
                out.append(dobj.decompress(data))
            except zstandard.ZstdError:
                counts.torn += 1
                return
            if dobj.eof:
                yield b"".join(out)
                out = []
                pending = dobj.unused_data
                dobj = dctx.decompressobj()
                fed = False
        if fed:
            counts.torn += 1


def iter_lines(path: Path, counts: ReadCounts | None = None) -> Iterator[bytes]:
    """Yield every complete, non-empty line of a day file (without its ``\\n``)."""
    counts = counts if counts is not None else ReadCounts()
    name = path.name
    try:
        if name.endswith(".zst"):
            # Frames always end on a line boundary, so each frame splits on its own.
            for frame in _zstd_frames(path, counts):
                lines, rest = _split_complete(frame)
                for line in lines:
                    if line:
                        counts.lines += 1
                        yield line
                if rest:
                    counts.torn += 1
            return
        chunks = _gzip_chunks(path, counts) if name.endswith(".gz") else _plain_chunks(path)
        rest = b""
        for chunk in chunks:
            lines, rest = _split_complete(rest + chunk)
            for line in lines:
                if line:
                    counts.lines += 1
                    yield line
        if rest:
            counts.torn += 1
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
