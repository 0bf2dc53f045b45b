"""A stored log record with its day and encoded line: what the writer appends and the index folds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from shared.schemas import LogRecord


@dataclass(frozen=True, slots=True)
class EncodedRecord:
    """A stored record with its day and its encoded line (``\\n``-terminated)."""

    record: LogRecord
    day: date
    line: bytes
