"""The SQLite index: a failed commit is recovered from the day files, without deadlock."""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import aiosqlite
import msgspec
import pytest

from ingestor.dayfiles import DayFileWriter
from ingestor.derived.applier import LineApplier
from ingestor.derived.follower import LogFollower
from ingestor.records import EncodedRecord, RecordBuilder
from shared.db import open_writer
from shared.layout import StorageLayout, Stream
from shared.privacy import UserHasher
from shared.settings import Settings
from shared.wire import LogEventIn
from tests.conftest import TEST_SECRET
from tests.support.derived import derived_state
from tests.support.events import make_event


class FailsOnce:
    """An observer whose first commit fails, as a bug or a full disk would make it."""

    def __init__(self, error: Exception | None = None) -> None:
        self.calls = 0
        self.error = error or RuntimeError("observer failed")

    def fold(self, records: Sequence[EncodedRecord]) -> None:
        pass

    def take(self) -> object:
        return None

    def apply(self, conn: sqlite3.Connection, pending: object) -> None:
        self.calls += 1
        if self.calls == 1:
            raise self.error


def written(config: Settings, n: int, seed: int) -> tuple[StorageLayout, list[EncodedRecord], DayFileWriter]:
    """``n`` events of one session appended (fsynced) to today's log file, and the open writer."""
    layout = StorageLayout.from_settings(config)
    layout.ensure_dirs()
    builder = RecordBuilder(layout, UserHasher(TEST_SECRET.encode()), 30)
    rng = random.Random(seed)
    records = builder.build([msgspec.convert(make_event(rng, session_id="s1"), LogEventIn) for _ in range(n)])
    files = DayFileWriter(layout)
    files.append({(Stream.LOGS, records[0].day): [r.line for r in records]})
    return layout, records, files


class HoldsCommit:
    """An observer that holds the commit's transaction open until released (a slow disk would)."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    def fold(self, records: Sequence[EncodedRecord]) -> None:
        pass

    def take(self) -> object:
        return None

    async def apply(self, conn: aiosqlite.Connection, pending: object) -> None:
        self.entered.set()
        await self.release.wait()


async def test_drain_during_a_commit_waits_for_it(config: Settings) -> None:
    """Stopping while a commit is in flight lets it finish: its lines are neither lost nor applied twice."""
    layout, records, files = written(config, 50, seed=12)
    conn = await open_writer(config.db_path)
    observer = HoldsCommit()
    index = LineApplier(conn, layout, observers=[observer])
    try:
        await index.open()
        index.start()
        await index.pull([records[0].day])
        await observer.entered.wait()  # the commit task is inside its transaction
        draining = asyncio.create_task(index.drain())
        await asyncio.sleep(0.05)
        observer.release.set()
        await draining
    finally:
        await conn.close()
        files.close()
    with contextlib.closing(sqlite3.connect(config.db_path)) as db:
        assert db.execute("SELECT sum(lines) FROM ingest_offsets").fetchone() == (50,)
        assert db.execute("SELECT message_count FROM chat_sessions").fetchall() == [(50,)]


@pytest.mark.parametrize(
    ("error", "commits"),
    [
        # The disk: the same lines are committed again as a whole, from the files.
        (sqlite3.OperationalError("database or disk is full"), 2),
        # Anything else might be a line's fault: they are applied one per transaction at once.
        (RuntimeError("observer failed"), 1 + 5),
    ],
)
async def test_failed_flush_recovers_from_files(config: Settings, error: Exception, commits: int) -> None:
    """After a failed commit the index re-reads the files: every event applied once, consumers fed once."""
    layout, records, files = written(config, 5, seed=1)
    conn = await open_writer(config.db_path)
    observer = FailsOnce(error)
    fed: list[str] = []
    index = LineApplier(
        conn, layout, observers=[observer], consumers=[lambda rs: fed.extend(r.record.log_id for r in rs)]
    )
    try:
        await index.open()
        await index.pull([records[0].day])
        await index.flush()  # fails, rolls back, goes back to the database's offsets
        assert index.failures == 1
        await index.pull([records[0].day])
        await index.flush()
    finally:
        await conn.close()
        files.close()
    assert observer.calls == commits
    assert fed == [r.record.log_id for r in records]
    with contextlib.closing(sqlite3.connect(config.db_path)) as db:
        assert db.execute("SELECT message_count FROM chat_sessions").fetchall() == [(5,)]
        assert db.execute("SELECT sum(lines) FROM ingest_offsets").fetchone() == (5,)
        assert db.execute("SELECT count(*) FROM quarantined_lines").fetchone() == (0,)


class FailsOn:
    """An observer that cannot apply one record (as an unforeseen value would), whatever else is in the commit."""

    def __init__(self, log_id: str, when: str) -> None:
        self.log_id = log_id
        self.when = when
        self.batch: list[str] = []

    def fold(self, records: Sequence[EncodedRecord]) -> None:
        self.batch.extend(r.record.log_id for r in records)
        if self.when == "fold" and self.log_id in self.batch:
            raise ValueError("cannot store this one")

    def take(self) -> object:
        batch, self.batch = self.batch, []
        return batch

    def apply(self, conn: sqlite3.Connection, pending: object) -> None:
        assert isinstance(pending, list)
        if self.when == "apply" and self.log_id in pending:
            raise ValueError("cannot store this one")


@pytest.mark.parametrize("when", ["fold", "apply"])
async def test_a_line_whose_commit_fails_alone_is_quarantined_and_the_rest_applied(config: Settings, when: str) -> None:
    """A commit failing on its data is narrowed to the one line: it is quarantined, every other line applied once."""
    layout, records, files = written(config, 9, seed=4)
    conn = await open_writer(config.db_path)
    poison = records[4]
    fed: list[str] = []
    index = LineApplier(
        conn, layout, observers=[FailsOn(poison.record.log_id, when)],
        consumers=[lambda rs: fed.extend(r.record.log_id for r in rs)],
    )
    try:
        await index.open()
        await index.pull([records[0].day])
        await index.flush()
        assert (index.failures, index.quarantined) == (1, 1)
        # Later lines come on as usual.
        written(config, 3, seed=5)[2].close()
        await index.pull([records[0].day])
        await index.flush()
        assert index.failures == 1
    finally:
        await conn.close()
        files.close()
    with contextlib.closing(sqlite3.connect(config.db_path)) as db:
        assert db.execute("SELECT sum(lines) FROM ingest_offsets").fetchone() == (12,)
        assert db.execute("SELECT message_count FROM chat_sessions").fetchall() == [(11,)]
        ((line, offset, reason, raw),) = db.execute("SELECT line, byte_offset, reason, raw FROM quarantined_lines")
    assert (line, raw + b"\n") == (5, poison.line)
    assert offset == sum(len(r.line) for r in records[:4])
    assert reason == "applying failed: ValueError: cannot store this one"
    assert len(fed) == len(set(fed)) == 12


async def test_follower_reads_only_new_complete_lines(config: Settings) -> None:
    """A torn tail waits for its end; blank and undecodable lines advance the offset and derive nothing."""
    layout = StorageLayout.from_settings(config)
    layout.ensure_dirs()
    builder = RecordBuilder(layout, UserHasher(TEST_SECRET.encode()), 30)
    rng = random.Random(2)
    records = builder.build([msgspec.convert(make_event(rng), LogEventIn) for _ in range(3)])
    day = records[0].day
    path = layout.day_path(Stream.LOGS, day)
    path.write_bytes(records[0].line + b"\n" + b"{not json}\n" + records[1].line + records[2].line[:10])
    follower = LogFollower(layout, {})
    first = follower.read(day)
    assert [r.record.log_id for r in first.records] == [records[0].record.log_id, records[1].record.log_id]
    assert first.lines == 3  # the blank line is not a line; the bad one is
    with path.open("ab") as f:
        f.write(records[2].line[10:])
    second = follower.read(day)
    assert [r.record.log_id for r in second.records] == [records[2].record.log_id]
    assert second.lines == 1
    resumed = LogFollower(layout, {day: 3})  # a restart resumes after the applied lines
    assert [r.record.log_id for r in resumed.read(day).records] == [records[2].record.log_id]


async def test_late_event_written_while_derived_state_was_down_is_applied(config: Settings) -> None:
    """An old day's file that grew while nothing followed it is read at the next start (exactly once)."""
    rng = random.Random(3)
    old = datetime.now(UTC) - timedelta(days=5)
    async with derived_state(config) as derived:
        await derived.post([make_event(rng, created_at=old), make_event(rng)])
    async with derived_state(config) as derived:
        derived.write([make_event(rng, created_at=old)])  # written while nothing followed the files
    async with derived_state(config):
        pass
    layout = StorageLayout.from_settings(config)
    with contextlib.closing(sqlite3.connect(config.db_path)) as db:
        assert db.execute("SELECT sum(lines) FROM ingest_offsets").fetchone() == (3,)
        assert db.execute("SELECT sum(message_count) FROM chat_sessions").fetchone() == (3,)
        # Each day's size is recorded with its lines: an unchanged old day is not read at the next start.
        sizes = dict(db.execute("SELECT day, size FROM ingest_offsets").fetchall())
    assert sizes == {
        d.isoformat(): f.readable.stat().st_size for d, f in layout.days(Stream.LOGS).items() if f.readable
    }


async def test_stopping_mid_commit_keeps_every_line_counted_once(config: Settings) -> None:
    """Stopping while the follower is committing a large backlog neither loses nor double-counts a line."""
    rng = random.Random(11)
    written = 0
    for attempt in range(4):
        async with derived_state(config) as derived:
            records = derived.write([make_event(rng, session_id=f"s{attempt}") for _ in range(3000)])
            written += len(records)
            derived.state.wake({records[0].day})
            await asyncio.sleep(0.01 * attempt)  # stop lands at a different point of the catch-up
    async with derived_state(config):
        pass
    with contextlib.closing(sqlite3.connect(config.db_path)) as db:
        assert db.execute("SELECT sum(lines) FROM ingest_offsets").fetchone() == (written,)
        assert db.execute("SELECT sum(message_count) FROM chat_sessions").fetchone() == (written,)


class FailsLastCommitOnce:
    """Fails, once, the commit holding a given record: a full disk at the end of a backlog."""

    def __init__(self, log_id: str) -> None:
        self.log_id = log_id
        self.failed = False
        self.commits = 0
        self.batch: list[str] = []

    def fold(self, records: Sequence[EncodedRecord]) -> None:
        self.batch.extend(r.record.log_id for r in records)

    def take(self) -> object:
        batch, self.batch = self.batch, []
        return batch

    def apply(self, conn: sqlite3.Connection, pending: object) -> None:
        assert isinstance(pending, list)
        self.commits += 1
        if self.log_id in pending and not self.failed:
            self.failed = True
            raise sqlite3.OperationalError("database or disk is full")


async def test_catch_up_of_a_backlog_reads_on_after_its_last_commit_failed(config: Settings) -> None:
    """A backlog whose last commit failed is read and applied again by the same catch-up, each line once."""
    layout, records, files = written(config, 8000, seed=21)
    files.close()
    conn = await open_writer(config.db_path)
    observer = FailsLastCommitOnce(records[-1].record.log_id)
    index = LineApplier(conn, layout, observers=[observer])
    try:
        applied = await index.catch_up()
    finally:
        await conn.close()
    assert observer.failed and index.failures == 1
    assert applied == 8000
    with contextlib.closing(sqlite3.connect(config.db_path)) as db:
        assert db.execute("SELECT sum(lines) FROM ingest_offsets").fetchone() == (8000,)
        assert db.execute("SELECT message_count FROM chat_sessions").fetchall() == [(8000,)]
