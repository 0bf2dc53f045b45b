"""Day files to columns, fast: the first N lines of a day file as the arrays statistics need.

The fast path hands the whole (decompressed, complete-lines) day to pyarrow's
multi-threaded JSON reader with an explicit schema of just the needed fields, and
dictionary-encodes the strings there, so no per-row Python object is ever made. A
day with a damaged line falls back to decoding line by line as ``LogRecord`` (what
the ingestor's replay does), so both paths skip exactly the same lines.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from shared.reader import ReadCounts, read_bytes
from shared.schemas import LogRecord
from shared.stats.live import epoch_us

_SCHEMA = pa.schema(
    [
        ("log_id", pa.string()),
        ("session_id", pa.string()),
        ("conversation_id", pa.string()),
        ("collection_name", pa.string()),
        ("message_type", pa.string()),
        ("message_content", pa.string()),
        ("created_at", pa.string()),
        ("performance", pa.struct([("response_time_ms", pa.int64()), ("token_count", pa.int64())])),
        ("status", pa.string()),
        ("is_regeneration", pa.bool_()),
    ]
)
_PARSE = pj.ParseOptions(explicit_schema=_SCHEMA, unexpected_field_behavior="ignore")
_READ = pj.ReadOptions(block_size=8 << 20)
_REQUIRED = ("log_id", "session_id", "conversation_id", "collection_name", "message_content", "created_at")

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class _Invalid(ValueError):
    """The fast path met a line it cannot vouch for."""


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
        newlines = np.flatnonzero(np.frombuffer(self.data, dtype=np.uint8) == 10)
        return self.data[: int(newlines[n - 1]) + 1]


@dataclass
class DayColumns:
    """One day's events as arrays; strings are codes into small tables of names."""

    collections: list[str]
    collection: IntArray
    sessions: list[str]
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


def read_day(path: Path) -> DayLines:
    """The complete, non-empty lines of a plain or compressed day file (a torn tail is left out)."""
    if path.name.endswith(".jsonl"):
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            data = b""
        data = data[: data.rfind(b"\n") + 1]
        if b"\n\n" in data or data.startswith(b"\n"):
            # Blank lines are not lines to the reader; normalise so counts agree with it.
            data = read_bytes(path)
    else:
        data = read_bytes(path, ReadCounts())
    return DayLines(data, data.count(b"\n"))


def _fast(data: bytes) -> pa.Table:
    table = pj.read_json(io.BytesIO(data), read_options=_READ, parse_options=_PARSE)
    for name in _REQUIRED:
        if table.column(name).null_count:
            raise _Invalid(name)
    kinds = pc.is_in(table.column("message_type"), value_set=pa.array(["user", "assistant"]))
    if not pc.all(kinds).as_py():
        raise _Invalid("message_type")
    status = pc.fill_null(table.column("status"), "ok")
    if not pc.all(pc.is_in(status, value_set=pa.array(["ok", "error"]))).as_py():
        raise _Invalid("status")
    return table


def _slow(data: bytes) -> pa.Table:
    """The same table from the lines that decode as ``LogRecord`` (damaged days only)."""
    decoder = msgspec.json.Decoder(LogRecord)
    rows: list[dict[str, object]] = []
    for line in data.split(b"\n"):
        if not line:
            continue
        try:
            r = decoder.decode(line)
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
        perf = r.performance
        rows.append(
            {
                "log_id": r.log_id,
                "session_id": r.session_id,
                "conversation_id": r.conversation_id,
                "collection_name": r.collection_name,
                "message_type": r.message_type,
                "message_content": r.message_content,
                "created_at": epoch_us(r.created_at),
                "performance": None
                if perf is None
                else {
                    "response_time_ms": perf.response_time_ms,
                    "token_count": perf.token_count,
                },
                "status": r.status,
                "is_regeneration": r.is_regeneration,
            }
        )
    schema = _SCHEMA.set(_SCHEMA.get_field_index("created_at"), pa.field("created_at", pa.int64()))
    return pa.Table.from_pylist(rows, schema=schema)


def _codes(column: pa.ChunkedArray | pa.Array) -> tuple[IntArray, list[str]]:
    """Dense codes and the distinct names they index (in first-seen order)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks else pa.array([], pa.string())
    encoded = pc.dictionary_encode(column)
    names = encoded.dictionary.to_pylist()
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), names


def _filled(array: pa.ChunkedArray | pa.Array, value: object) -> npt.NDArray[np.generic]:
    return np.asarray(pc.fill_null(array, value).to_numpy(zero_copy_only=False))


def parse_lines(data: bytes, tz: ZoneInfo) -> DayColumns:
    """The statistics columns of some complete log lines."""
    table: pa.Table | None = None
    if data:
        try:
            table = _fast(data)
        except (pa.ArrowInvalid, _Invalid):
            table = None
    if table is None:
        table = _slow(data)
        at = table.column("created_at").to_numpy().astype(np.int64)
    else:
        at = pc.cast(pc.cast(table.column("created_at"), pa.timestamp("us", tz="UTC")), pa.int64()).to_numpy()
        at = np.asarray(at, dtype=np.int64)
    is_user = np.asarray(_filled(pc.equal(table.column("message_type"), "user"), False), dtype=bool)
    perf = table.column("performance")
    response = np.asarray(_filled(pc.struct_field(perf, "response_time_ms"), -1), dtype=np.int64)
    tokens = np.asarray(_filled(pc.struct_field(perf, "token_count"), -1), dtype=np.int64)
    has_response = ~is_user & (response >= 0)
    collection, collections = _codes(table.column("collection_name"))
    session, sessions = _codes(table.column("session_id"))
    users = np.flatnonzero(is_user)
    text = np.full(len(at), -1, dtype=np.int64)
    user_text, texts = _codes(pc.take(table.column("message_content"), pa.array(users)))
    text[users] = user_text
    local = pd.to_datetime(at, unit="us", utc=True).tz_convert(tz)
    return DayColumns(
        collections=collections,
        collection=collection,
        sessions=sessions,
        session=session,
        hour=np.asarray(local.hour, dtype=np.int64),
        at_us=at,
        is_user=is_user,
        tokens=np.where(~is_user & (tokens >= 0), tokens, 0),
        response_time_ms=np.where(has_response, response, 0),
        has_response_time=has_response,
        is_error=np.asarray(_filled(pc.equal(table.column("status"), "error"), False), dtype=bool),
        is_regeneration=np.asarray(_filled(table.column("is_regeneration"), False), dtype=bool),
        texts=texts,
        text=text,
    )
