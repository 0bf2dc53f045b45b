"""Hostile day-file lines for the derived-state tests: built from real records, written past ingest validation."""

from __future__ import annotations

import contextlib
import json
import os
import random
import sqlite3
from datetime import date
from pathlib import Path
from typing import Any

import msgspec

from ingestor.records import RecordBuilder
from shared.layout import StorageLayout, Stream
from shared.privacy import UserHasher
from shared.settings import Settings
from shared.wire import LogEventIn
from tests.conftest import TEST_SECRET
from tests.support.events import COLLECTIONS, make_event


def record_line(config: Settings, rng: random.Random, **fields: Any) -> tuple[date, bytes]:
    """A stored record's line (no newline) with top-level fields replaced, and its day.

    ``json`` encodes what msgspec would refuse to (integers past 64 bits), as another
    writer might have.
    """
    layout = StorageLayout.from_settings(config)
    builder = RecordBuilder(layout, UserHasher(TEST_SECRET.encode()), config.log_retention_days)
    (record,) = builder.build([msgspec.convert(make_event(rng, message_type="assistant"), LogEventIn)])
    document = json.loads(record.line)
    document.update(fields)
    return record.day, json.dumps(document, ensure_ascii=False).encode()


def append_raw(config: Settings, day: date, data: bytes) -> None:
    """Append bytes to a log day file as they are (fsynced), as a foreign writer would."""
    path = StorageLayout.from_settings(config).day_path(Stream.LOGS, day)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def every_collection(rng: random.Random, per_collection: int = 2) -> list[dict[str, Any]]:
    """Events in every collection, users and assistants."""
    return [
        make_event(rng, collection_name=c, message_type=rng.choice(("user", "assistant")))
        for c in COLLECTIONS
        for _ in range(per_collection)
    ]


def counted(db_path: Path) -> dict[str, Any]:
    """What the derived state holds: lines applied, messages in chat_sessions and per collection's statistics."""
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        (lines,) = conn.execute("SELECT coalesce(sum(lines), 0) FROM ingest_offsets").fetchone()
        (sessions,) = conn.execute("SELECT coalesce(sum(message_count), 0) FROM chat_sessions").fetchone()
        per_collection = dict(conn.execute(
            "SELECT scope, sum(message_count) FROM chat_statistics_daily WHERE scope != '' GROUP BY scope"
        ).fetchall())
    return {"lines": lines, "sessions": sessions, "statistics": per_collection}


def quarantined(db_path: Path) -> list[tuple[str, int, str, bytes]]:
    """Every quarantined line: day, line number, reason, raw bytes."""
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        rows = conn.execute("SELECT day, line, reason, raw FROM quarantined_lines ORDER BY day, line").fetchall()
    return [(str(d), int(n), str(r), bytes(raw)) for d, n, r, raw in rows]
