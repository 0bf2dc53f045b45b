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
from dataclasses import dataclass
from datetime import date, datetime, timedelta
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


def iso_utc(instant: datetime) -> str:
    """A fixed-width UTC timestamp that sorts as text."""
    return instant.isoformat(timespec="microseconds")


@dataclass(slots=True)
class _SessionRow:
    session_id: str
    conversation_id: str
    collection_name: str
    user_hash: str | None
    started_at: datetime
    last_seen_at: datetime
    message_count: int
    last_day: date

    def as_params(self) -> tuple[object, ...]:
        return (
            self.session_id, self.conversation_id, self.collection_name, self.user_hash,
            iso_utc(self.started_at), iso_utc(self.last_seen_at), self.message_count,
            self.last_day.isoformat(),
        )


COALESCE_SECONDS = 0.2


class IndexObserver(Protocol):
    """Something else derived from log records in the same transaction (e.g. statistics).

    Like the session delta, it folds each written batch into pending state as it comes
    (``fold``), hands that state over when a commit starts (``take``), and writes it
    inside the commit's transaction (``apply``): no records are held between commits.
    """

    def fold(self, records: Sequence[EncodedRecord]) -> None:
        """Aggregate records into the pending state."""

    def take(self) -> object:
        """The pending state, replaced by an empty one."""

    async def apply(self, conn: aiosqlite.Connection, pending: object) -> None:
        """Write taken state inside the caller's open transaction."""


class SessionDelta:
    """chat_sessions changes aggregated in memory, one row per session, until written."""

    def __init__(self) -> None:
        self.rows: dict[str, _SessionRow] = {}
        self.lines: dict[date, int] = {}
        self.observed: list[object] = []  # each observer's taken state, in observer order

    def add(self, records: Sequence[EncodedRecord]) -> None:
        """Fold a batch in."""
        rows = self.rows
        lines = self.lines
        for item in records:
            record = item.record
            at = record.created_at
            day = item.day
            lines[day] = lines.get(day, 0) + 1
            row = rows.get(record.session_id)
            if row is None:
                rows[record.session_id] = _SessionRow(
                    record.session_id, record.conversation_id, record.collection_name,
                    record.user_hash, at, at, 1, day,
                )
                continue
            row.conversation_id = record.conversation_id
            row.user_hash = record.user_hash or row.user_hash
            if at < row.started_at:
                row.started_at = at
            if at > row.last_seen_at:
                row.last_seen_at = at
            row.message_count += 1
            if day > row.last_day:
                row.last_day = day


class LogIndex:
    """Applies written batches to SQLite, coalesced, in a task of its own.

    Batches are folded into an in-memory delta as they are written (cheap, spread
    over the load) and the delta is committed every COALESCE_SECONDS in one
    transaction, so SQLite stays off the ingest path.
    """

    def __init__(
        self,
        conn: aiosqlite.Connection,
        layout: StorageLayout,
        observers: Sequence[IndexObserver] = (),
        lock: asyncio.Lock | None = None,
    ) -> None:
        self._conn = conn
        self._layout = layout
        self._observers = list(observers)
        self._delta = SessionDelta()
        self._pending = 0
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # Shared by everything that runs transactions on the one writer connection.
        self.lock = lock or asyncio.Lock()
        self.failures = 0

    @property
    def lag_events(self) -> int:
        """Events written to the files and not yet committed to SQLite."""
        return self._pending

    def start(self) -> None:
        """Start the apply task."""
        self._task = asyncio.create_task(self._run(), name="log-index")

    def enqueue(self, records: Sequence[EncodedRecord]) -> None:
        """Hand over a batch whose lines are already on disk."""
        self._delta.add(records)
        for observer in self._observers:
            observer.fold(records)
        self._pending += len(records)
        self._dirty.set()

    async def drain(self) -> None:
        """Commit everything handed over, then stop the task."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._flush()

    async def _run(self) -> None:
        while True:
            await self._dirty.wait()
            await asyncio.sleep(COALESCE_SECONDS)
            await self._flush()

    async def _flush(self) -> None:
        async with self.lock:
            self._dirty.clear()
            delta, pending = self._delta, self._pending
            if not pending:
                return
            self._delta, self._pending = SessionDelta(), 0
            delta.observed = [observer.take() for observer in self._observers]
            try:
                await self._commit(delta)
            except Exception:
                self.failures += 1
                log.exception("committing %d events to SQLite failed; re-reading the files", pending)
                await self._recover()

    async def _recover(self) -> None:
        with contextlib.suppress(Exception):
            await self._conn.rollback()
        # Everything pending is in the day files already: catch-up applies it from there.
        self._delta, self._pending = SessionDelta(), 0
        for observer in self._observers:
            observer.take()
        try:
            await self.catch_up()
        except Exception:
            log.exception("catching up from the day files failed; will retry on next start")

    async def apply(
        self, records: Sequence[EncodedRecord], lines: dict[date, int] | None = None
    ) -> None:
        """Apply records at once, in one transaction (start-up catch-up and tests).

        ``lines`` is how far each day file advances; by default one line per record.
        """
        async with self.lock:
            await self._apply_unlocked(records, lines)

    async def _apply_unlocked(self, records: Sequence[EncodedRecord], lines: dict[date, int] | None) -> None:
        delta = SessionDelta()
        delta.add(records)
        for observer in self._observers:
            observer.fold(records)
        delta.observed = [observer.take() for observer in self._observers]
        if lines is not None:
            delta.lines = lines
        await self._commit(delta)

    async def _commit(self, delta: SessionDelta) -> None:
        await self._conn.execute("BEGIN IMMEDIATE")
        try:
            await self._conn.executemany(_SESSION_UPSERT, [r.as_params() for r in delta.rows.values()])
            await self._conn.executemany(
                _OFFSET_ADD, [(Stream.LOGS.value, d.isoformat(), n) for d, n in delta.lines.items()]
            )
            for observer, pending in zip(self._observers, delta.observed, strict=True):
                await observer.apply(self._conn, pending)
            await self._conn.commit()
        except BaseException:
            await self._conn.rollback()
            raise

    async def catch_up(self) -> int:
        """Apply the lines of day files the database has not seen; return how many.

        Runs at start (nothing else writes yet) or from a failed flush, which holds
        the lock already: it does not take the lock itself.
        """
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
                    await self._apply_unlocked(chunk, advance)
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
