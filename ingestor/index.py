"""The SQLite side of ingest: chat_sessions, statistics and line offsets, kept current.

Batches arrive here after their lines are fsynced, in the order they were written,
and are applied in one transaction together with the new line count of each day
file. On start, ``catch_up`` applies whatever lines of the day files the database
has not seen (a crash between the fsync and the commit), so every stored event is
applied exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import astuple, dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Protocol

import aiosqlite
import msgspec

from ingestor.records import EncodedRecord
from shared.layout import StorageLayout, Stream
from shared.reader import ReadCounts, iter_lines
from shared.schemas import LogRecord

log = logging.getLogger("chatlog.ingestor.index")

_SESSION_UPSERT = """
INSERT INTO chat_sessions (session_id, conversation_id, collection_name, user_hash,
                           started_at, last_seen_at, message_count, last_day)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (session_id) DO UPDATE SET
    conversation_id = excluded.conversation_id,
    user_hash = coalesce(excluded.user_hash, chat_sessions.user_hash),
    started_at = min(chat_sessions.started_at, excluded.started_at),
    last_seen_at = max(chat_sessions.last_seen_at, excluded.last_seen_at),
    message_count = chat_sessions.message_count + excluded.message_count,
    last_day = max(chat_sessions.last_day, excluded.last_day)
"""

_OFFSET_ADD = """
INSERT INTO ingest_offsets (stream, day, lines) VALUES (?, ?, ?)
ON CONFLICT (stream, day) DO UPDATE SET lines = ingest_offsets.lines + excluded.lines
"""


def iso_utc(record: LogRecord) -> str:
    """A fixed-width UTC timestamp that sorts as text."""
    return record.created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class _SessionRow:
    session_id: str
    conversation_id: str
    collection_name: str
    user_hash: str | None
    started_at: str
    last_seen_at: str
    message_count: int
    last_day: str


class IndexObserver(Protocol):
    """Something else derived from log records in the same transaction (e.g. statistics)."""

    async def apply(self, conn: aiosqlite.Connection, records: Sequence[EncodedRecord]) -> None:
        """Apply records inside the caller's open transaction."""


class LogIndex:
    """Applies written batches to SQLite in order, in a task of its own."""

    def __init__(
        self,
        conn: aiosqlite.Connection,
        layout: StorageLayout,
        observers: Sequence[IndexObserver] = (),
    ) -> None:
        self._conn = conn
        self._layout = layout
        self._observers = list(observers)
        self._queue: asyncio.Queue[Sequence[EncodedRecord]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.lag_events = 0
        self.failures = 0

    def start(self) -> None:
        """Start the apply task."""
        self._task = asyncio.create_task(self._run(), name="log-index")

    def enqueue(self, records: Sequence[EncodedRecord]) -> None:
        """Hand over a batch whose lines are already on disk."""
        self.lag_events += len(records)
        self._queue.put_nowait(records)

    async def drain(self) -> None:
        """Apply everything queued, then stop the task."""
        await self._queue.join()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            records = await self._queue.get()
            try:
                # Merge whatever else is waiting: fewer, larger transactions under load.
                merged = list(records)
                extra = 0
                while not self._queue.empty():
                    merged.extend(self._queue.get_nowait())
                    extra += 1
                try:
                    await self.apply(merged)
                except Exception:
                    self.failures += 1
                    log.exception("applying %d records to SQLite failed; re-reading the files", len(merged))
                    await self._recover()
                self.lag_events -= len(merged)
                for _ in range(extra):
                    self._queue.task_done()
            finally:
                self._queue.task_done()

    async def _recover(self) -> None:
        with contextlib.suppress(Exception):
            await self._conn.rollback()
        try:
            await self.catch_up()
        except Exception:
            log.exception("catching up from the day files failed; will retry on next start")

    async def apply(
        self, records: Sequence[EncodedRecord], lines: dict[date, int] | None = None
    ) -> None:
        """Apply records and advance the line offsets, in one transaction.

        ``lines`` is how far each day file advances; by default one line per record.
        """
        if lines is None:
            lines = {}
            for item in records:
                lines[item.day] = lines.get(item.day, 0) + 1
        sessions: dict[str, _SessionRow] = {}
        for item in records:
            record = item.record
            at = iso_utc(record)
            day = item.day.isoformat()
            row = sessions.get(record.session_id)
            if row is None:
                sessions[record.session_id] = _SessionRow(
                    record.session_id, record.conversation_id, record.collection_name,
                    record.user_hash, at, at, 1, day,
                )
            else:
                row.conversation_id = record.conversation_id
                row.user_hash = record.user_hash or row.user_hash
                row.started_at = min(row.started_at, at)
                row.last_seen_at = max(row.last_seen_at, at)
                row.message_count += 1
                row.last_day = max(row.last_day, day)
        await self._conn.execute("BEGIN IMMEDIATE")
        try:
            await self._conn.executemany(_SESSION_UPSERT, [astuple(r) for r in sessions.values()])
            await self._conn.executemany(
                _OFFSET_ADD, [(Stream.LOGS.value, d.isoformat(), n) for d, n in lines.items()]
            )
            for observer in self._observers:
                await observer.apply(self._conn, records)
            await self._conn.commit()
        except BaseException:
            await self._conn.rollback()
            raise

    async def catch_up(self) -> int:
        """Apply the lines of day files the database has not seen; return how many."""
        async with self._conn.execute(
            "SELECT day, lines FROM ingest_offsets WHERE stream = ?", (Stream.LOGS.value,)
        ) as cursor:
            applied = {date.fromisoformat(day): n async for day, n in cursor}
        newest = max(applied, default=None)
        total = 0
        for day, files in self._layout.days(Stream.LOGS).items():
            path = files.readable
            if path is None:
                continue
            # Days before the newest applied one were complete long ago; only recent
            # days and days never applied can have a tail to apply.
            if day in applied and newest is not None and day < newest - timedelta(days=1):
                continue
            records, lines = await asyncio.to_thread(_decode_after, path, applied.get(day, 0), day)
            for start in range(0, max(len(records), 1), 5000):
                chunk = records[start : start + 5000]
                # Corrupt lines derive nothing but still advance the offset (first chunk).
                advance = {day: len(chunk) + (lines - len(records) if start == 0 else 0)}
                if advance[day]:
                    await self.apply(chunk, advance)
            total += lines
        if total:
            log.info("applied %d day-file lines the database had not seen", total)
        return total


def _decode_after(path: Path, skip: int, day: date) -> tuple[list[EncodedRecord], int]:
    """The records after the first ``skip`` lines of a day file, and how many lines that is."""
    decoder = msgspec.json.Decoder(LogRecord)
    out: list[EncodedRecord] = []
    lines = 0
    for number, line in enumerate(iter_lines(path, ReadCounts())):
        if number < skip:
            continue
        lines += 1
        try:
            out.append(EncodedRecord(decoder.decode(line), day, b""))
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
    return out, lines
