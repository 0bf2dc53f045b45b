"""Walking a compressed day file frame by frame, reading on past damage.

A ``.jsonl.zst`` day is a run of independent zstd frames and a ``.jsonl.gz`` day a
run of gzip members (compression writes several, late events append one each). A
damaged frame costs only its own lines: the walk looks for the next frame magic
after the damaged frame's start (zstd ``28 B5 2F FD``, gzip ``1F 8B 08``), and
takes a candidate only when it decodes to a complete, valid frame, so a magic-like
run of bytes inside damaged data is skipped too.

Every byte of the file lands in exactly one ``Segment``, in file order:

- ``OK``: a complete frame that decoded (and passed its checksum, when it has one);
- ``DAMAGED``: bytes no valid frame could be read from, with a valid frame after
  them, or a corrupt frame at the end (something other than an append cut short);
- ``TORN``: the last frame, cut short (an append a crash interrupted, never
  acknowledged), or zero bytes a crash left after the last frame; nothing
  readable follows it.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import BinaryIO, Protocol

import zstandard

CHUNK = 1 << 20


class SegmentState(StrEnum):
    """What a run of bytes of a compressed file is."""

    OK = "ok"
    DAMAGED = "damaged"
    TORN = "torn"


@dataclass(frozen=True, slots=True)
class Segment:
    """Bytes ``[start, end)`` of the file; ``content`` is the decompressed frame when OK."""

    start: int
    end: int
    state: SegmentState
    content: bytes = b""


class _Decoder(Protocol):
    @property
    def eof(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...

    def decompress(self, data: bytes) -> bytes: ...


@dataclass(frozen=True)
class FrameFormat:
    """How frames of one compression format start and decode."""

    name: str
    magic: bytes
    decoder: Callable[[], _Decoder]
    errors: tuple[type[Exception], ...]


def _zstd_decoder() -> _Decoder:
    return zstandard.ZstdDecompressor().decompressobj()


def _gzip_decoder() -> _Decoder:
    return zlib.decompressobj(wbits=31)


ZSTD = FrameFormat("zstd", b"\x28\xb5\x2f\xfd", _zstd_decoder, (zstandard.ZstdError,))
GZIP = FrameFormat("gzip", b"\x1f\x8b\x08", _gzip_decoder, (zlib.error,))


def format_of(name: str) -> FrameFormat | None:
    """The frame format of a day file's name (None for a plain ``.jsonl``)."""
    if name.endswith(".zst"):
        return ZSTD
    if name.endswith(".gz"):
        return GZIP
    return None


class _Outcome(StrEnum):
    OK = "ok"
    ERROR = "error"
    INCOMPLETE = "incomplete"
    END = "end"


@dataclass(slots=True)
class _Attempt:
    outcome: _Outcome
    content: bytes = b""
    end: int = 0
    unused: bytes = b""


def _decode_at(f: BinaryIO, fmt: FrameFormat, start: int, pending: bytes) -> _Attempt:
    """Decode one frame starting at ``start`` (``pending``: bytes already read from there)."""
    if not pending:
        f.seek(start)
    decoder = fmt.decoder()
    out: list[bytes] = []
    consumed = 0
    while True:
        data = pending or f.read(CHUNK)
        pending = b""
        if not data:
            return _Attempt(_Outcome.INCOMPLETE if consumed else _Outcome.END)
        try:
            out.append(decoder.decompress(data))
        except fmt.errors:
            return _Attempt(_Outcome.ERROR)
        consumed += len(data)
        if decoder.eof:
            unused = decoder.unused_data
            return _Attempt(_Outcome.OK, b"".join(out), start + consumed - len(unused), unused)


def _magic_from(f: BinaryIO, fmt: FrameFormat, start: int) -> int | None:
    """The offset of the first frame magic at or after ``start``, if any."""
    f.seek(start)
    overlap = len(fmt.magic) - 1
    base = start
    carry = b""
    while chunk := f.read(CHUNK):
        data = carry + chunk
        found = data.find(fmt.magic)
        if found >= 0:
            return base + found
        carry = data[-overlap:]
        base += len(data) - len(carry)
    return None


def _only_zeros_from(f: BinaryIO, start: int) -> bool:
    f.seek(start)
    while chunk := f.read(CHUNK):
        if chunk.count(0) != len(chunk):
            return False
    return True


def _file_size(f: BinaryIO) -> int:
    f.seek(0, 2)
    return f.tell()


def walk(f: BinaryIO, fmt: FrameFormat) -> Iterator[Segment]:
    """Every segment of an open compressed file, in order (see the module docstring)."""
    size = _file_size(f)
    pos = 0
    pending = b""
    while pos < size:
        attempt = _decode_at(f, fmt, pos, pending)
        pending = b""
        if attempt.outcome is _Outcome.END:
            return
        if attempt.outcome is _Outcome.OK:
            yield Segment(pos, attempt.end, SegmentState.OK, attempt.content)
            pos, pending = attempt.end, attempt.unused
            continue
        found = _next_frame(f, fmt, pos + 1, size)
        if found is None:
            torn = attempt.outcome is _Outcome.INCOMPLETE or _only_zeros_from(f, pos)
            yield Segment(pos, size, SegmentState.TORN if torn else SegmentState.DAMAGED)
            return
        yield Segment(pos, found.start, SegmentState.DAMAGED)
        yield found
        pos = found.end


def _next_frame(f: BinaryIO, fmt: FrameFormat, start: int, size: int) -> Segment | None:
    """The first valid frame that starts at or after ``start`` (a resync point)."""
    while start < size:
        candidate = _magic_from(f, fmt, start)
        if candidate is None:
            return None
        attempt = _decode_at(f, fmt, candidate, b"")
        if attempt.outcome is _Outcome.OK:
            return Segment(candidate, attempt.end, SegmentState.OK, attempt.content)
        start = candidate + 1
    return None
