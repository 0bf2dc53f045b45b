"""The SQLite index: a failed commit is recovered from the day files, without deadlock."""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
from collections.abc import Sequence

import aiosqlite
import msgspec

from ingestor.dayfiles import DayFileWriter
from ingestor.index import LogIndex
from ingestor.records import EncodedRecord, RecordBuilder
from shared.db import open_writer
from shared.layout import StorageLayout, Stream
from shared.privacy import UserHasher
from shared.schemas import LogEventIn
from shared.settings import Settings
from tests.conftest import TEST_SECRET
from tests.events import make_event


class FailsOnce:
    """An observer whose first commit fails, as a bug or a full disk would make it."""

    def __init__(self) -> None:
        self.calls = 0

    def fold(self, records: Sequence[EncodedRecord]) -> None:
        pass

    def take(self) -> object:
        return None

    async def apply(self, conn: aiosqlite.Connection, pending: object) -> None:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("observer failed")


async def test_failed_flush_recovers_from_files(config: Settings) -> None:
    """After a failed commit the index re-reads the files and every event is applied once."""
    layout = StorageLayout.from_settings(config)
    layout.ensure_dirs()
    builder = RecordBuilder(layout, UserHasher(TEST_SECRET.encode()), 30)
    rng = random.Random(1)
    records = builder.build([msgspec.convert(make_event(rng, session_id="s1"), LogEventIn) for _ in range(5)])
    files = DayFileWriter(layout)
    files.append({(Stream.LOGS, records[0].day): [r.line for r in records]})
    conn = await open_writer(config.db_path)
    observer = FailsOnce()
    index = LogIndex(conn, layout, observers=[observer])
    index.start()
    try:
        index.enqueue(records)
        await asyncio.wait_for(index.drain(), timeout=10)
    finally:
        await conn.close()
        files.close()
    assert observer.calls >= 2
    with contextlib.closing(sqlite3.connect(config.db_path)) as db:
        assert db.execute("SELECT message_count FROM chat_sessions").fetchall() == [(5,)]
        assert db.execute("SELECT sum(lines) FROM ingest_offsets").fetchone() == (5,)
