"""Day files to columns, fast: the first N lines of a day file as the arrays statistics need.

``read_columns`` reads the file once and hands it to msgspec a chunk at a time
(``decode``), counting lines as it goes, so no per-row Python object outlives its
chunk and the file is scanned for line ends only where it is decoded. A day with a
damaged line (or a blank one, which the reader does not count as a line) is read
again the careful way: ``read_day`` normalises it as the reader does and every line
is decoded on its own as ``LogRecord``, exactly as the ingestor's replay does.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from chat_statistics.rebuild.decode import DECODE_ERRORS, Chunk, Damaged, decode_careful, decode_fast
from shared.reader import ReadCounts, read_bytes

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
log = logging.getLogger("chatlog.stats.rebuild")


@dataclass
class DayLines:
    """The complete lines of a day file: the bytes and how many lines they hold."""

    data: bytes
    lines: int

    def first(self, n: int) -> bytes:
        """The bytes of the first ``n`` lines."""
        if n >= self.lines:
            return self.data
        if n <= 0:
            return b""
        ends = np.flatnonzero(np.frombuffer(self.data, dtype=np.uint8) == 10)
        return self.data[: int(ends[n - 1]) + 1]


@dataclass
class DayColumns:
    """One day's events as arrays; strings are codes into small tables of names."""

    collections: list[str]
    collection: IntArray
    sessions: pa.StringArray  # kept in Arrow: cheap to send between processes
    session: IntArray
    hour: IntArray
    at_us: IntArray
    is_user: BoolArray
    tokens: IntArray  # assistant token counts, 0 otherwise
    response_time_ms: IntArray  # 0 where has_response_time is false
    has_response_time: BoolArray
    is_error: BoolArray
    is_regeneration: BoolArray
    texts: list[str]  # distinct user message texts
    text: IntArray  # per event: index into texts, -1 for assistant events

    def __len__(self) -> int:
        return len(self.collection)


def _gone(path: Path) -> bool:
    return not path.exists() and not path.with_name(path.name + ".zst").exists()


def complete_bytes(path: Path) -> bytes:
    """The decompressed bytes of a day file up to its last line end (a torn tail is left out).

    Raises FileNotFoundError when the file is gone (expired since it was listed), and
    OSError when it cannot be read, instead of reading the day as empty.
    """
    if path.name.endswith(".jsonl"):
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            pass  # compressed since it was listed: the reader finds the lines in the .zst
        else:
            cut = data.rfind(b"\n") + 1
            return data if cut == len(data) else data[:cut]
    counts = ReadCounts()
    data = read_bytes(path, counts)
    if counts.unreadable_files:
        if _gone(path):
            raise FileNotFoundError(f"{path} is gone")
        raise OSError(f"{path} cannot be read")
    return data


def read_day(path: Path) -> DayLines:
    """The complete, non-empty lines of a plain or compressed day file, as the reader counts them."""
    data = complete_bytes(path)
    if data.startswith(b"\n") or b"\n\n" in data:
        # Blank lines are not lines to the reader; normalise so counts agree with it.
        data = read_bytes(path, ReadCounts())
    return DayLines(data, data.count(b"\n"))


def _encoded(chunks: list[pa.Array]) -> tuple[IntArray, pa.Array]:
    """Dense codes and the distinct values they index (in first-seen order)."""
    if not chunks:
        return np.zeros(0, dtype=np.int64), pa.array([], pa.string())
    encoded = pa.concat_arrays(chunks).dictionary_encode()
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), encoded.dictionary


def _codes(chunks: list[pa.Array]) -> tuple[IntArray, list[str]]:
    codes, names = _encoded(chunks)
    return codes, names.to_pylist()


def _joined(arrays: list[npt.NDArray[np.generic]], dtype: type) -> npt.NDArray[np.generic]:
    return np.concatenate(arrays) if arrays else np.zeros(0, dtype=dtype)


def _columns(chunks: list[Chunk], tz: ZoneInfo) -> DayColumns:
    at = np.asarray(_joined([c.at_us for c in chunks], np.int64), dtype=np.int64)
    is_user = np.asarray(_joined([c.is_user for c in chunks], bool), dtype=bool)
    collection, collections = _codes([c.collection for c in chunks])
    session, sessions = _encoded([c.session for c in chunks])
    text = np.full(len(at), -1, dtype=np.int64)
    user_text, texts = _codes([c.texts for c in chunks])
    text[is_user] = user_text
    local = pd.to_datetime(at, unit="us", utc=True).tz_convert(tz)
    return DayColumns(
        collections=collections,
        collection=collection,
        sessions=sessions,
        session=session,
        hour=np.asarray(local.hour, dtype=np.int64),
        at_us=at,
        is_user=is_user,
        tokens=np.asarray(_joined([c.tokens for c in chunks], np.int64), dtype=np.int64),
        response_time_ms=np.asarray(_joined([c.response_time_ms for c in chunks], np.int64), dtype=np.int64),
        has_response_time=np.asarray(_joined([c.has_response_time for c in chunks], bool), dtype=bool),
        is_error=np.asarray(_joined([c.is_error for c in chunks], bool), dtype=bool),
        is_regeneration=np.asarray(_joined([c.is_regeneration for c in chunks], bool), dtype=bool),
        texts=texts,
        text=text,
    )


def parse_lines(data: bytes, tz: ZoneInfo) -> DayColumns:
    """The statistics columns of some complete log lines."""
    try:
        chunks, _ = decode_fast(data, sys.maxsize)
    except (*DECODE_ERRORS, Damaged):
        chunks = decode_careful(data)
    return _columns(chunks, tz)


def read_columns(path: Path, applied: int, tz: ZoneInfo) -> DayColumns:
    """The columns of the first ``applied`` lines of a day file."""
    try:
        chunks, lines = decode_fast(complete_bytes(path), applied)
    except (*DECODE_ERRORS, Damaged):
        day = read_day(path)
        chunks, lines = decode_careful(day.first(applied)), day.lines
    if applied > lines:
        log.warning("%s: %d lines applied but only %d readable; using those", path, applied, lines)
    return _columns(chunks, tz)
