"""The inputs of ``chatlog import``: files, globs, ``.gz``/``.zst`` (by their magic bytes) and stdin.

Each input yields its physical lines with their 1-based numbers, so that a rejected
line can be found again in the file the operator gave. A compressed input that is
damaged partway stops that input (its lines so far are imported) and is reported as
a reject of the line after the last one read; the other inputs still run.
"""

from __future__ import annotations

import glob
import gzip
import io
import os
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import zstandard

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
STDIN = "-"
_CHUNK = 1 << 20


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class Source:
    """One input: a path, or ``-`` for stdin."""

    name: str

    @property
    def size(self) -> int | None:
        """Bytes on disk (what the progress bar counts), when known."""
        if self.name == STDIN:
            return None
        try:
            return os.stat(self.name).st_size
        except OSError:
            return None


class SourceError(Exception):
    """An input could not be opened or read on (missing, unreadable, damaged compression)."""


def expand(arguments: list[str]) -> tuple[list[Source], list[str]]:
    """The inputs named by the arguments (globs expanded, sorted), and the arguments that matched nothing.

    A shell usually expands globs itself; a quoted one (``'logs/data/*.jsonl*'``) is
    expanded here, so a month of files fits in one argument.
    """
    sources: list[Source] = []
    unmatched: list[str] = []
    for argument in arguments:
        if argument == STDIN or Path(argument).exists() or not glob.has_magic(argument):
            sources.append(Source(argument))
            continue
        matches = sorted(m for m in glob.glob(argument) if not os.path.isdir(m))
        if not matches:
            unmatched.append(argument)
        sources.extend(Source(m) for m in matches)
    return sources, unmatched


class _Counting(io.RawIOBase):
    """A raw stream that counts the bytes read through it (the progress of a compressed input)."""

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.consumed += n
        return n


class OpenSource:
    """An opened input: its lines, and how many of its bytes on disk were read so far."""

    def __init__(self, source: Source) -> None:
        self.source = source
        if source.name == STDIN:
            raw: BinaryIO = sys.stdin.buffer
            self._owned: BinaryIO | None = None
        else:
            try:
                raw = self._owned = open(source.name, "rb")  # noqa: SIM115 - closed by close()
            except OSError as exc:
                raise SourceError(f"cannot open {source.name}: {exc.strerror or exc}") from None
        self._counting = _Counting(raw)
        buffered = io.BufferedReader(self._counting, _CHUNK)
        magic = buffered.peek(4)[:4]
        self.kind = "gzip" if magic.startswith(GZIP_MAGIC) else "zstd" if magic == ZSTD_MAGIC else "plain"
        if self.kind == "gzip":
            self._stream: _Readable = gzip.GzipFile(fileobj=buffered, mode="rb")
        elif self.kind == "zstd":
            # Day files the ingestor appended to hold several frames: read across them.
            self._stream = zstandard.ZstdDecompressor().stream_reader(buffered, read_across_frames=True)
        else:
            self._stream = buffered

    @property
    def consumed(self) -> int:
        """Bytes of the input (compressed, as on disk) read so far."""
        return self._counting.consumed

    def lines(self) -> Iterator[tuple[int, bytes]]:
        """``(number, line)`` for every physical line, without its line ending; SourceError if unreadable."""
        number = 0
        rest = b""
        while True:
            try:
                chunk = self._stream.read(_CHUNK)
            except (OSError, EOFError, zlib.error, zstandard.ZstdError) as exc:
                raise SourceError(f"{self.source.name} is unreadable after line {number}: {exc}") from None
            if not chunk:
                break
            parts = (rest + chunk).split(b"\n")
            rest = parts.pop()
            for part in parts:
                number += 1
                yield number, part.removesuffix(b"\r")
        if rest:
            # A last line without its newline: a hand-made file, not a torn write (nothing writes here).
            yield number + 1, rest.removesuffix(b"\r")

    def close(self) -> None:
        """Close what this opened (never stdin)."""
        if self._owned is not None:
            self._owned.close()

    def __enter__(self) -> OpenSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
