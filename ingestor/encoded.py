"""A stored log record with its day and encoded line: what the writer appends and the index folds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from shared.wire import LogRecord


@dataclass(frozen=True, slots=True)
class EncodedRecord:
    """A stored record with its day and its encoded line (``\\n``-terminated)."""

    record: LogRecord
    day: date
    line: bytes
    # Where the line sits in its plain day file, when it was read from one (-1: unknown).
    number: int = -1
    offset: int = -1
    length: int = 0
