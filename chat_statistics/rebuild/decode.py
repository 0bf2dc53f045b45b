"""Log lines to per-chunk arrays with msgspec: the fast path for whole days, and the careful one.

The fast path decodes about a megabyte of lines per msgspec call into small structs
of just the fields statistics need, typed as in ``LogRecord``, and turns each chunk
into numpy and Arrow arrays right away: the chunk's objects are freed while still
in the CPU caches and the next chunk reuses their memory. (A whole day of objects
at once made every later pass slower and page-faulted some 50 MB a day.) Any line
that is not exactly one JSON object whose statistics fields are valid as in
``LogRecord`` makes it raise, and the day is decoded again line by line as
``LogRecord`` (what the ingestor's replay does). Like the pyarrow reader before it,
the fast path does not check fields statistics never read (``retrieved_docs``,
``metadata``, ...), which the ingestor validated before writing the line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import msgspec
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from chat_statistics.tables import epoch_us
from shared.wire import LogRecord, MessageType, Performance, Status

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
_UTC_US = pa.timestamp("us", tz="UTC")
# Bytes decoded per call (about 3,500 lines): small enough to stay in the CPU caches.
CHUNK_BYTES = 1 << 20


class _Event(msgspec.Struct, gc=False):
    """The fields statistics need, typed as in ``LogRecord``; the rest of a line is skipped.

    ``created_at`` stays text so that pyarrow parses a chunk's instants in one call.
    """

    log_id: str
    session_id: str
    conversation_id: str
    collection_name: str
    message_type: MessageType
    message_content: str
    created_at: str
    performance: Performance | None = None
    status: Status = "ok"
    is_regeneration: bool = False


class _Record(Protocol):
    """What a chunk is built from: an ``_Event`` or a ``LogRecord``."""

    @property
    def session_id(self) -> str: ...
    @property
    def collection_name(self) -> str: ...
    @property
    def message_type(self) -> MessageType: ...
    @property
    def message_content(self) -> str: ...
    @property
    def performance(self) -> Performance | None: ...
    @property
    def status(self) -> Status: ...
    @property
    def is_regeneration(self) -> bool: ...


_EVENTS = msgspec.json.Decoder(_Event)
_RECORD = msgspec.json.Decoder(LogRecord)
DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, pa.ArrowInvalid)


class Damaged(ValueError):
    """The fast path met a line it cannot vouch for."""


@dataclass
class Chunk:
    """One chunk's columns; strings stay Arrow arrays until the whole day is coded."""

    at_us: IntArray
    session: pa.Array
    collection: pa.Array
    texts: pa.Array  # of the user events, in order
    is_user: BoolArray
    tokens: IntArray  # assistant token counts, 0 otherwise
    response_time_ms: IntArray  # 0 where has_response_time is false
    has_response_time: BoolArray
    is_error: BoolArray
    is_regeneration: BoolArray


def _chunk(records: Sequence[_Record], at_us: IntArray) -> Chunk:
    n = len(records)
    is_user = np.asarray([r.message_type for r in records], dtype=object) == "user"
    assistants = np.flatnonzero(~is_user)
    perf = [records[i].performance for i in assistants.tolist()]
    response = np.zeros(n, dtype=np.int64)
    has_response = np.zeros(n, dtype=bool)
    tokens = np.zeros(n, dtype=np.int64)
    if perf:
        times = np.asarray([-1 if p is None or p.response_time_ms is None else p.response_time_ms for p in perf])
        has_response[assistants] = times >= 0
        response[assistants] = np.maximum(times, 0)
        tokens[assistants] = [0 if p is None or p.token_count is None else p.token_count for p in perf]
    return Chunk(
        at_us=at_us,
        session=pa.array([r.session_id for r in records], pa.string()),
        collection=pa.array([r.collection_name for r in records], pa.string()),
        texts=pa.array([records[i].message_content for i in np.flatnonzero(is_user).tolist()], pa.string()),
        is_user=is_user,
        tokens=tokens,
        response_time_ms=response,
        has_response_time=has_response,
        is_error=np.asarray([r.status for r in records], dtype=object) == "error",
        is_regeneration=np.asarray([r.is_regeneration for r in records], dtype=bool),
    )


def _one_object_per_line(array: npt.NDArray[np.uint8], ends: IntArray) -> bool:
    """Whether every line of a chunk (``ends``: its line ends) starts with "{" and ends with "}".

    Then no JSON value can run from one line into the next: a "}" that is not the end of
    the top-level value must be followed by ",", "}" or "]", never by a line starting
    with "{", and strings cannot hold a raw line end. So every line holds one value or
    more, and ``decode_lines`` returning one value per line means exactly one on each.
    Blank lines and lines padded with whitespace fail the test and take the careful path.
    """
    if not len(ends):
        return True
    return bool(array[0] == 123 and (array[ends - 1] == 125).all() and (array[ends[:-1] + 1] == 123).all())


def decode_fast(data: bytes, limit: int) -> tuple[list[Chunk], int]:
    """The first ``limit`` lines of complete-lines ``data``, and how many there were.

    Raises ``Damaged`` (or a decode error) unless every line is exactly one valid event.
    """
    view = memoryview(data)
    array = np.frombuffer(data, dtype=np.uint8)
    chunks: list[Chunk] = []
    start = lines = 0
    while start < len(data) and lines < limit:
        # Chunks end at the first line end past CHUNK_BYTES (found with memchr).
        found = data.find(b"\n", start + CHUNK_BYTES - 1)
        stop = found + 1 if found >= 0 else len(data)
        ends = np.flatnonzero(array[start:stop] == 10)
        if lines + len(ends) > limit:
            ends = ends[: limit - lines]
            stop = start + int(ends[-1]) + 1
        # decode_lines reads a stream of JSON values separated by any whitespace: only
        # with one object per line is that the reader's line-by-line decode.
        if not _one_object_per_line(array[start:stop], ends):
            raise Damaged("line bounds")
        events = _EVENTS.decode_lines(view[start:stop])
        if len(events) != len(ends):
            raise Damaged("lines")
        utc = pc.cast(pa.array([e.created_at for e in events], pa.string()), _UTC_US).cast(pa.int64())
        chunks.append(_chunk(events, np.asarray(utc.to_numpy(zero_copy_only=False), dtype=np.int64)))
        lines += len(ends)
        start = stop
    return chunks, lines


def decode_careful(data: bytes) -> list[Chunk]:
    """The lines of ``data`` that decode as ``LogRecord``, as one chunk (damaged days only)."""
    records: list[LogRecord] = []
    for line in data.split(b"\n"):
        if not line:
            continue
        try:
            records.append(_RECORD.decode(line))
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
    return [_chunk(records, np.asarray([epoch_us(r.created_at) for r in records], dtype=np.int64))]
