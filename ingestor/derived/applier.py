"""Applying the log day files' new lines to the derived tables: chat_sessions, statistics, offsets.

The applier follows the log day files (``LogFollower``): it reads the lines written
since the last pull, folds them into an in-memory delta, and commits the delta every
COALESCE_SECONDS in one transaction together with the new line count of each day.
Because offsets and derived rows commit together and the files are the source,
every stored event is applied exactly once, whatever crashes in between.

No line can stop the others: a line that does not decode or cannot be stored is
quarantined as it is read (``ingestor.derived.quarantine``), and when a commit still fails
on its data, its lines are applied again one per transaction and the one that
fails alone is quarantined. Only a failure of the database or the disk is retried
as a whole (the same lines, re-read from the files).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import partial
from typing import Protocol, cast

import aiosqlite

from chat_statistics.admission import inadmissible
from ingestor.derived import quarantine
from ingestor.derived.follower import CATCH_UP_PULL_BYTES, FollowedLines, LogFollower, RecordCheck, RejectedLine
from ingestor.derived.quality import FeedbackDelta, FeedbackFollower
from ingestor.records import EncodedRecord
from shared.layout import StorageLayout, Stream
from shared.sqlite_thread import run_sync

log = logging.getLogger("chatlog.ingestor.derived.applier")

# A session's row does not depend on the order its events are applied in (nodes sharing
# PostgreSQL apply theirs in any interleaving): its collection is its earliest event's,
# its conversation and user its latest event's (ties: the larger text), and the rest are
# sums and bounds.
_SESSION_UPSERT = """
INSERT INTO chat_sessions (session_id, conversation_id, collection_name, user_hash,
                           started_at, last_seen_at, message_count, last_day)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (session_id) DO UPDATE SET
    conversation_id = CASE WHEN excluded.last_seen_at > chat_sessions.last_seen_at
        OR (excluded.last_seen_at = chat_sessions.last_seen_at
            AND excluded.conversation_id > chat_sessions.conversation_id)
        THEN excluded.conversation_id ELSE chat_sessions.conversation_id END,
    collection_name = CASE WHEN excluded.started_at < chat_sessions.started_at
        OR (excluded.started_at = chat_sessions.started_at
            AND excluded.collection_name < chat_sessions.collection_name)
        THEN excluded.collection_name ELSE chat_sessions.collection_name END,
    user_hash = CASE WHEN excluded.user_hash IS NOT NULL AND (chat_sessions.user_hash IS NULL
        OR excluded.last_seen_at > chat_sessions.last_seen_at
        OR (excluded.last_seen_at = chat_sessions.last_seen_at AND excluded.user_hash > chat_sessions.user_hash))
        THEN excluded.user_hash ELSE chat_sessions.user_hash END,
    started_at = min(chat_sessions.started_at, excluded.started_at),
    last_seen_at = max(chat_sessions.last_seen_at, excluded.last_seen_at),
    message_count = chat_sessions.message_count + excluded.message_count,
    last_day = max(chat_sessions.last_day, excluded.last_day)
"""

_OFFSET_ADD = """
INSERT INTO ingest_offsets (stream, day, lines, size) VALUES (?, ?, ?, ?)
ON CONFLICT (stream, day) DO UPDATE SET
    lines = ingest_offsets.lines + excluded.lines, size = coalesce(excluded.size, ingest_offsets.size)
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
# While the database cannot be reached, how long to wait between attempts (doubling up to the last).
RETRY_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)
# How many times catch-up reads a day again after commits failed (the follower went back).
_CATCH_UP_ROUNDS = 3


class LineObserver(Protocol):
    """Something else derived from log records in the same transaction (e.g. statistics).

    Like the session delta, it folds each written batch into pending state as it comes
    (``fold``), hands that state over when a commit starts (``take``), and writes it
    inside the commit's transaction (``apply``): no records are held between commits.

    ``apply`` is plain ``sqlite3`` code: the whole commit (sessions, offsets, every
    observer, COMMIT) runs on the SQLite connection's thread in one round trip
    (``shared.sqlite_thread``), so it must not block on anything but SQLite, and must
    neither commit nor roll back.
    """

    def fold(self, records: Sequence[EncodedRecord]) -> None:
        """Aggregate records into the pending state."""

    def take(self) -> object:
        """The pending state, replaced by an empty one."""

    def apply(self, conn: sqlite3.Connection, pending: object) -> None:
        """Write taken state inside the caller's open transaction (on the connection's thread)."""


class AsyncLineObserver(Protocol):
    """A ``LineObserver`` whose ``apply`` awaits aiosqlite (the older form, still accepted).

    It runs after the plain observers, on the event loop, in the same transaction: each
    of its statements is a round trip to the SQLite thread, so the plain form is faster.
    """

    def fold(self, records: Sequence[EncodedRecord]) -> None:
        """Aggregate records into the pending state."""

    def take(self) -> object:
        """The pending state, replaced by an empty one."""

    async def apply(self, conn: aiosqlite.Connection, pending: object) -> None:
        """Write taken state inside the caller's open transaction."""


AnyLineObserver = LineObserver | AsyncLineObserver


class SessionDelta:
    """chat_sessions changes aggregated in memory, one row per session, until written."""

    def __init__(self) -> None:
        self.rows: dict[str, _SessionRow] = {}
        self.lines: dict[date, int] = {}
        self.sizes: dict[date, int | None] = {}  # file bytes the day's lines cover, after this delta
        self.observed: list[object] = []  # each observer's taken state, in observer order
        self.quarantined: list[RejectedLine] = []
        self.feedback: FeedbackDelta | None = None  # the feedback stream's lines, committed alongside

    def add(self, records: Sequence[EncodedRecord]) -> None:
        """Fold a batch of records in (the lines they advance are counted by the caller)."""
        rows = self.rows
        for item in records:
            record = item.record
            at = record.created_at
            if at.tzinfo is not UTC:  # another writer's line: naive means UTC, as everywhere
                at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
            day = item.day
            row = rows.get(record.session_id)
            if row is None:
                rows[record.session_id] = _SessionRow(
                    record.session_id, record.conversation_id, record.collection_name,
                    record.user_hash, at, at, 1, day,
                )
                continue
            # The same rules as _SESSION_UPSERT: the result does not depend on the order.
            if at > row.last_seen_at or (at == row.last_seen_at and record.conversation_id > row.conversation_id):
                row.conversation_id = record.conversation_id
            if record.user_hash is not None and (
                row.user_hash is None or at > row.last_seen_at
                or (at == row.last_seen_at and record.user_hash > row.user_hash)
            ):
                row.user_hash = record.user_hash
            if at < row.started_at or (at == row.started_at and record.collection_name < row.collection_name):
                row.collection_name = record.collection_name
            if at < row.started_at:
                row.started_at = at
            if at > row.last_seen_at:
                row.last_seen_at = at
            row.message_count += 1
            if day > row.last_day:
                row.last_day = day


def _write(
    delta: SessionDelta, observers: Sequence[tuple[LineObserver, object]], commit: bool, conn: sqlite3.Connection
) -> None:
    """BEGIN and write a delta, on the connection's thread; COMMIT too when ``commit``.

    On any failure the transaction is rolled back before the exception leaves.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(_SESSION_UPSERT, [r.as_params() for r in delta.rows.values()])
        conn.executemany(
            _OFFSET_ADD,
            [(Stream.LOGS.value, d.isoformat(), n, delta.sizes.get(d)) for d, n in delta.lines.items()],
        )
        quarantine.record(conn, delta.quarantined)
        if delta.feedback is not None:
            FeedbackFollower.apply(conn, delta.feedback)
        for observer, pending in observers:
            observer.apply(conn, pending)
        if commit:
            conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class LineApplier:
    """Applies the day files' new lines to SQLite, coalesced, in a task of its own.

    ``pull`` reads and folds (cheap, spread over the load); the commit task writes
    every COALESCE_SECONDS. ``consumers`` see each record once, as it is first read
    (the conversation assembler); a commit that fails is rolled back and its lines
    re-read from the files without being handed to consumers again. ``check`` says
    why a record cannot be applied (its line is then quarantined), or None; by default
    ``chat_statistics.admission.inadmissible`` in the layout's time zone.
    """

    def __init__(
        self,
        conn: aiosqlite.Connection,
        layout: StorageLayout,
        observers: Sequence[AnyLineObserver] = (),
        consumers: Sequence[Callable[[Sequence[EncodedRecord]], None]] = (),
        lock: asyncio.Lock | None = None,
        check: RecordCheck | None = None,
    ) -> None:
        self._conn = conn
        self._layout = layout
        self._check = check or partial(inadmissible, tz=layout.tz)
        self._observers = list(observers)
        self._consumers = list(consumers)
        self._delta = SessionDelta()
        self._pending = 0
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._follower = LogFollower(layout, {})
        self._feedback = FeedbackFollower(layout)
        self._opened = False
        self._stopping = False
        # Shared by everything that runs transactions on the one writer connection.
        self.lock = lock or asyncio.Lock()
        # Held while reading and folding, so that recovering from a failed commit sees no fold half done.
        self._read_lock = asyncio.Lock()
        self._stale = False  # the follower must go back to the database's offsets before reading on
        self._fold_error: Exception | None = None  # folding the pending lines failed: narrow it down
        self.failures = 0
        self.applied_lines = 0  # committed since this applier opened (quarantined lines included)
        self.quarantined = 0  # lines held in quarantined_lines
        self.on_commit: Callable[[], None] | None = None
        # When the database stopped answering (commits and reads fail on the connection, not the
        # lines), or None: nothing is quarantined then, and the lines wait in the files.
        self.database_down_since: float | None = None
        self._attempts = 0  # failed attempts to reach the database in a row
        self._retry_at = 0.0  # monotonic time of the next attempt while it is down

    @property
    def opened(self) -> bool:
        """True once ``open`` has put the follower at the database's offsets."""
        return self._opened

    @property
    def compressed_reads(self) -> int:
        """Compressed log days read whole since this applier opened (see ``changed_days``)."""
        return self._follower.compressed_reads

    async def changed_days(self) -> list[date]:
        """Days whose log or feedback file is not the size of what has been read of it.

        What has been read is the follower's position when it has read the day since this
        applier opened, else the size recorded with the day's applied lines: so a day
        compressed while running (recorded with its plain size) is read once and then
        matches, and an unchanged day costs one stat. Waking these days reads them on from
        their applied lines like any notice: nothing is applied twice.
        """
        async with self._read_lock:  # no read is moving the positions while they are taken
            logs = {day: size for day, (_, size) in (await self._offsets()).items()}
            feedback = {day: size for day, (_, size) in (await self._feedback.offsets(self._conn)).items()}
            logs.update(self._follower.covered_days())
            feedback.update(self._feedback.covered_days())

        def stat_all() -> list[date]:
            grown = set(self._changed_days(Stream.LOGS, logs)) | set(self._changed_days(Stream.FEEDBACK, feedback))
            return sorted(grown)

        return await asyncio.to_thread(stat_all)

    def lag_bytes(self, days: Sequence[date]) -> int:
        """Bytes of the given days' plain files not read yet."""
        return self._follower.lag_bytes(list(days))

    async def open(self) -> dict[date, int]:
        """Start following from what the database has applied; return those line counts."""
        applied = await self._applied()
        self.quarantined = await quarantine.count(self._conn)
        self._follower = LogFollower(self._layout, applied, self._check)
        await self._feedback.open(self._conn)
        self._opened = True
        return applied

    def start(self) -> None:
        """Start the commit task."""
        self._task = asyncio.create_task(self._run(), name="line-applier")

    async def pull(self, days: Sequence[date]) -> bool:
        """Read and fold the new lines of ``days``; True when some day has more to read."""
        more = False
        async with self._read_lock:
            if self._fold_error is not None:
                return False
            if self._stale and (time.monotonic() < self._retry_at or not await self._resync()):
                return False
            for day in days:
                followed = await asyncio.to_thread(self._follower.read, day)
                more = more or followed.more
                if not followed.lines:
                    continue
                self._pending += followed.lines
                self._dirty.set()
                try:
                    self._fold(self._delta, followed)
                except Exception as exc:
                    # Like a commit failing on its data: the next flush narrows it down.
                    self._fold_error = exc
                    return False
            for day in days:
                lines, later = await self._feedback.pull(day)
                more = more or later
                if lines:
                    self._pending += lines
                    self._dirty.set()
        return more

    def _fold(self, delta: SessionDelta, followed: FollowedLines) -> None:
        records = followed.records
        # Consumers first: the follower counts these records as handed over, whatever fails below.
        fresh = records[followed.fresh_from :] if followed.fresh_from else records
        if fresh:
            for consumer in self._consumers:
                consumer(fresh)
        delta.lines[followed.day] = delta.lines.get(followed.day, 0) + followed.lines
        delta.sizes[followed.day] = followed.size
        delta.quarantined.extend(followed.rejected)
        delta.add(records)
        for observer in self._observers:
            observer.fold(records)

    async def drain(self) -> None:
        """Commit everything read, then stop the task.

        The task is asked to stop, not cancelled: a cancelled commit would drop the
        delta it had taken while the follower's positions stay advanced.
        """
        self._stopping = True
        self._dirty.set()
        if self._task is not None:
            await self._task
        await self.flush()

    async def _run(self) -> None:
        while not self._stopping:
            await self._dirty.wait()
            if self._stopping:
                return
            await asyncio.sleep(COALESCE_SECONDS)
            await self.flush()

    async def flush(self) -> None:
        """Commit what has been read; after a failure, go back to the database's offsets.

        A failure caused by the lines themselves (not the database or the disk) is
        then narrowed down at once: the lines are applied one per transaction.
        """
        async with self.lock:
            self._dirty.clear()
            delta, pending = self._delta, self._pending
            if not pending:
                return
            self._delta, self._pending = SessionDelta(), 0
            delta.observed = [observer.take() for observer in self._observers]
            delta.feedback = self._feedback.take()
            try:
                if self._fold_error is not None:
                    raise self._fold_error
                await self._commit(delta)
            except Exception as exc:
                self.failures += 1
                async with self._read_lock:
                    self._fold_error = None
                    await self._recover(exc, pending)
            else:
                self._committed(delta, pending)
        if self.on_commit is not None:
            self.on_commit()

    def _committed(self, delta: SessionDelta, lines: int) -> None:
        self._reachable()
        self.applied_lines += lines
        if delta.quarantined:
            self.quarantined += len(delta.quarantined)
            for line in delta.quarantined:
                log.error("quarantined line %d of the %s log file: %s", line.number, line.day, line.reason)

    async def _recover(self, exc: Exception, pending: int) -> None:
        """After a failed commit: drop everything folded, go back to the database's offsets, narrow it down."""
        environmental = quarantine.caused_by_environment(exc)
        if environmental:
            if self._unreachable():
                log.error("committing %d lines failed (%s); they stay in the files and are applied when the "
                          "database answers again", pending, exc)
        else:
            log.exception("committing %d lines failed on their data; applying them one at a time", pending)
        # Lines folded while the commit ran came after the failed ones: they are read again too.
        self._delta, self._pending = SessionDelta(), 0
        for observer in self._observers:
            observer.take()
        with contextlib.suppress(Exception):
            await self._conn.rollback()
        if not await self._resync() or environmental:
            return
        try:
            await self._apply_singly()
        except Exception:
            log.exception("applying lines one at a time failed; re-reading them from the files")
            with contextlib.suppress(Exception):
                await self._conn.rollback()
            await self._resync()

    async def _resync(self) -> bool:
        """Put the follower back at the database's offsets (consumers are not fed again)."""
        try:
            applied = await self._applied()
            feedback = await self._feedback.applied(self._conn)
        except Exception as exc:
            if not quarantine.caused_by_environment(exc) or self._unreachable():
                log.exception("reading the applied offsets failed; retrying before the next read")
            self._stale = True
            return False
        self._follower.reset(applied)
        self._feedback.reset(feedback)
        self._stale = False
        self._reachable()
        return True

    def _unreachable(self) -> bool:
        """Note a failed attempt to reach the database and when to try again; True for the outage's first."""
        delay = RETRY_SECONDS[min(self._attempts, len(RETRY_SECONDS) - 1)]
        self._attempts += 1
        self._retry_at = time.monotonic() + delay
        first = self.database_down_since is None
        if first:
            self.database_down_since = time.time()
        return first

    def _reachable(self) -> None:
        """The database answered: note the end of an outage."""
        self._attempts = 0
        self._retry_at = 0.0
        if self.database_down_since is not None:
            log.warning("the database answers again after %.1f s; applying the lines written meanwhile",
                        time.time() - self.database_down_since)
            self.database_down_since = None

    async def _apply_singly(self) -> None:
        """Apply the lines read before a failed commit one per transaction; quarantine each that fails alone.

        The caller holds both locks. A failure of the database or the disk stops this
        (it is raised, and the caller goes back to the database's offsets).
        """
        for day, until in sorted(self._follower.unapplied().items()):
            while self._follower.applied(day) < until:
                followed = await asyncio.to_thread(self._follower.read, day)
                if not followed.lines:
                    if followed.more:
                        continue  # only blank lines before a line longer than one read: read on
                    break  # the file changed meanwhile: the next pull reads what it holds
                for one in followed.singles():
                    await self._apply_one(one)

    async def _apply_one(self, followed: FollowedLines) -> None:
        delta = SessionDelta()
        try:
            self._fold(delta, followed)
            delta.observed = [observer.take() for observer in self._observers]
            await self._commit(delta)
        except Exception as exc:
            if quarantine.caused_by_environment(exc):
                raise
            # Only the line's count and the line itself, kept with why it failed.
            delta = SessionDelta()
            delta.lines[followed.day], delta.sizes[followed.day] = 1, followed.size
            delta.observed = [observer.take() for observer in self._observers]
            offset = followed.records[0].offset if followed.records else -1
            delta.quarantined.append(RejectedLine(
                followed.day, followed.first + 1, offset if offset >= 0 else None,
                quarantine.failure_reason(exc), followed.raw[0],
            ))
            await self._commit(delta)
        self._committed(delta, 1)

    async def apply(self, records: Sequence[EncodedRecord], lines: dict[date, int] | None = None) -> None:
        """Apply records at once, in one transaction, without reading files (tests).

        ``lines`` is how far each day file advances; by default one line per record.
        """
        async with self.lock:
            delta = SessionDelta()
            delta.add(records)
            for item in records:
                delta.lines[item.day] = delta.lines.get(item.day, 0) + 1
            for observer in self._observers:
                observer.fold(records)
            delta.observed = [observer.take() for observer in self._observers]
            if lines is not None:
                delta.lines = lines
            await self._commit(delta)

    async def _offsets(self) -> dict[date, tuple[int, int | None]]:
        """Per day: the lines applied, and the file size they were recorded with."""
        async with self._conn.execute(
            "SELECT day, lines, size FROM ingest_offsets WHERE stream = ?", (Stream.LOGS.value,)
        ) as cursor:
            return {date.fromisoformat(day): (n, size) async for day, n, size in cursor}

    async def _applied(self) -> dict[date, int]:
        return {day: lines for day, (lines, _) in (await self._offsets()).items()}

    async def _commit(self, delta: SessionDelta) -> None:
        """One transaction: offsets and everything derived from the lines they cover.

        Without older (async) observers the whole transaction, COMMIT included, is one
        call on the SQLite thread; with them, the plain part is one call, then each
        of them, then COMMIT.
        """
        plain: list[tuple[LineObserver, object]] = []
        later: list[tuple[AsyncLineObserver, object]] = []
        for observer, pending in zip(self._observers, delta.observed, strict=True):
            if inspect.iscoroutinefunction(observer.apply):
                later.append((cast(AsyncLineObserver, observer), pending))
            else:
                plain.append((cast(LineObserver, observer), pending))
        if not later:
            await run_sync(self._conn, partial(_write, delta, plain, True))
            return
        try:
            # Inside the try: a failure (or cancellation) after BEGIN ran must still roll back.
            await run_sync(self._conn, partial(_write, delta, plain, False))
            for observer, pending in later:
                await observer.apply(self._conn, pending)
            await self._conn.commit()
        except BaseException:
            await self._conn.rollback()
            raise

    async def catch_up(self) -> int:
        """Apply every day file's lines the database has not seen, committing as it goes; return how many.

        A day whose file still has the size recorded with its applied lines has nothing
        new and is not read, so a start does not read every old day. Any other day
        (recent, never applied, grown by a late event, compressed, rewritten) is read on
        from its applied lines, and its size recorded.
        """
        if not self._opened:
            await self.open()
        sizes = {day: size for day, (_, size) in (await self._offsets()).items()}
        before = self.applied_lines
        for day in self._changed_days(Stream.LOGS, sizes):
            recorded = sizes.get(day)
            await self._catch_up_day(day)
            covered = self._follower.covered(day)
            if covered is not None and covered != recorded:
                async with self.lock:
                    await self._conn.execute(
                        "UPDATE ingest_offsets SET size = ? WHERE stream = ? AND day = ?",
                        (covered, Stream.LOGS.value, day.isoformat()),
                    )
        total = self.applied_lines - before + await self._catch_up_feedback()
        if total:
            log.info("applied %d day-file lines the database had not seen", total)
        return total

    async def _catch_up_day(self, day: date) -> None:
        """Read and commit the day's unapplied lines, reading each piece while the one before commits.

        The commit runs on the SQLite thread, the read and the fold here: on two cores
        they overlap. A failed commit puts the follower back at the database's offsets
        (dropping what was folded meanwhile), so the day is read on from there again,
        a few times at most (a failing disk is left to the next start).
        """
        live_pull, self._follower.pull_bytes = self._follower.pull_bytes, CATCH_UP_PULL_BYTES
        try:
            for _ in range(_CATCH_UP_ROUNDS):
                failures = self.failures
                flushing: asyncio.Task[None] | None = None
                try:
                    while True:
                        more = await self.pull([day])
                        if flushing is not None:
                            await flushing
                        flushing = asyncio.create_task(self.flush())
                        if not more:
                            break
                finally:
                    if flushing is not None:
                        await flushing
                if self.failures == failures:
                    return
        finally:
            self._follower.pull_bytes = live_pull

    def _changed_days(self, stream: Stream, sizes: dict[date, int | None]) -> list[date]:
        """Days of ``stream`` with a file whose size is not the one recorded with its applied lines."""
        changed = []
        for day, files in sorted(self._layout.days(stream).items()):
            path = files.readable
            if path is None:
                continue
            recorded = sizes.get(day)
            if recorded is not None:
                with contextlib.suppress(OSError):
                    if path.stat().st_size == recorded:
                        continue
            changed.append(day)
        return changed

    async def _catch_up_feedback(self) -> int:
        """``catch_up`` for the feedback stream: every day whose file is not the size last applied."""
        sizes = {day: size for day, (_, size) in (await self._feedback.offsets(self._conn)).items()}
        total = 0
        for day in self._changed_days(Stream.FEEDBACK, sizes):
            recorded = sizes.get(day)
            while True:
                async with self._read_lock:
                    lines, more = await self._feedback.pull(day)
                self._pending += lines
                total += lines
                await self.flush()
                if not more:
                    break
            covered = self._feedback.covered(day)
            if covered is not None and covered != recorded:
                async with self.lock:
                    await self._conn.execute(
                        "UPDATE ingest_offsets SET size = ? WHERE stream = ? AND day = ?",
                        (covered, Stream.FEEDBACK.value, day.isoformat()),
                    )
        return total
