"""Live retrieval quality and feedback: kept current in the applier's transaction.

``QualityObserver`` folds assistant answers like ``StatisticsObserver`` folds every
event. ``FeedbackFollower`` follows the feedback stream's day files the way the
applier follows the log files: the lines it read are counted in ``ingest_offsets``
(stream ``feedback``) in the same commit as the counts derived from them, so every
stored piece of feedback is counted once, whatever crashes in between.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from zoneinfo import ZoneInfo

import aiosqlite
import msgspec

from chat_statistics.quality import FeedbackCounts, QualityBatch, apply_feedback, apply_quality, fold_feedback
from chat_statistics.questions import FEEDBACK_UPSERT, feedback_params
from ingestor.derived.follower import LogFollower
from ingestor.records import EncodedRecord
from shared.layout import StorageLayout, Stream
from shared.wire import FeedbackRecord

log = logging.getLogger("chatlog.ingestor.derived.quality")

_decoder = msgspec.json.Decoder(FeedbackRecord)

_OFFSET_ADD = """
INSERT INTO ingest_offsets (stream, day, lines, size) VALUES (?, ?, ?, ?)
ON CONFLICT (stream, day) DO UPDATE SET
    lines = ingest_offsets.lines + excluded.lines, size = coalesce(excluded.size, ingest_offsets.size)
"""


class QualityObserver:
    """The ``LineObserver`` that keeps ``retrieval_statistics`` current."""

    def __init__(self, tz: ZoneInfo) -> None:
        self._tz = tz
        self._batch = QualityBatch(tz)

    def fold(self, records: Sequence[EncodedRecord]) -> None:
        """Aggregate answers into the pending hourly rows."""
        self._batch.add((item.record, item.day) for item in records)

    def take(self) -> QualityBatch:
        """The pending rows, replaced by empty ones."""
        batch, self._batch = self._batch, QualityBatch(self._tz)
        return batch

    def apply(self, conn: sqlite3.Connection, pending: object) -> None:
        """Add taken rows to the stored ones inside the caller's transaction."""
        assert isinstance(pending, QualityBatch)
        apply_quality(conn, pending.rows)


@dataclass
class FeedbackDelta:
    """Feedback read since the last commit: counts per hour, lines and covered bytes per day."""

    counts: FeedbackCounts = field(default_factory=dict)
    lines: dict[date, int] = field(default_factory=dict)
    sizes: dict[date, int | None] = field(default_factory=dict)
    answers: list[tuple[object, ...]] = field(default_factory=list)  # answer_feedback rows (the FAQ, the transcript)

    def __bool__(self) -> bool:
        return bool(self.lines)


class FeedbackFollower:
    """Reads the feedback day files on from the lines the database has applied."""

    def __init__(self, layout: StorageLayout) -> None:
        self._layout = layout
        self._follower = LogFollower(layout, {}, stream=Stream.FEEDBACK)
        self._delta = FeedbackDelta()
        self.skipped = 0  # lines that do not decode: counted as applied, derive nothing (they stay in the file)

    async def open(self, conn: aiosqlite.Connection) -> None:
        """Start from what the database has applied."""
        self._follower = LogFollower(self._layout, await self.applied(conn), stream=Stream.FEEDBACK)

    @staticmethod
    async def offsets(conn: aiosqlite.Connection) -> dict[date, tuple[int, int | None]]:
        """Per day: the feedback lines applied and the file size they were recorded with."""
        async with conn.execute(
            "SELECT day, lines, size FROM ingest_offsets WHERE stream = ?", (Stream.FEEDBACK.value,)
        ) as cursor:
            return {date.fromisoformat(day): (n, size) async for day, n, size in cursor}

    async def applied(self, conn: aiosqlite.Connection) -> dict[date, int]:
        return {day: n for day, (n, _) in (await self.offsets(conn)).items()}

    async def pull(self, day: date) -> tuple[int, bool]:
        """Read the day's new lines (in a thread) and fold them; return how many, and whether more wait.

        Folding happens on the event loop, so a commit taking the delta never sees half a fold.
        """
        followed = await asyncio.to_thread(self._follower.read_raw, day)
        if not followed.lines:
            return 0, followed.more
        delta = self._delta
        for line in followed.raw:
            try:
                record = _decoder.decode(line)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                self.skipped += 1
                log.error("feedback line of %s skipped (it stays in its file): %s", day, exc)
                continue
            fold_feedback(delta.counts, record, day, self._layout.tz)
            delta.answers.append(feedback_params(record, day))
        delta.lines[day] = delta.lines.get(day, 0) + followed.lines
        delta.sizes[day] = followed.size
        return followed.lines, followed.more

    def covered(self, day: date) -> int | None:
        """Bytes of the day's file read so far."""
        return self._follower.covered(day)

    def covered_days(self) -> dict[date, int]:
        """Bytes read so far of every day file read."""
        return self._follower.covered_days()

    def take(self) -> FeedbackDelta:
        """What was read since the last take."""
        delta, self._delta = self._delta, FeedbackDelta()
        return delta

    def reset(self, applied: dict[date, int]) -> None:
        """Go back to the database's offsets (after a failed commit)."""
        self._delta = FeedbackDelta()
        self._follower.reset(applied)

    @staticmethod
    def apply(conn: sqlite3.Connection, delta: FeedbackDelta) -> None:
        """Write counts and offsets inside the caller's transaction."""
        if not delta:
            return
        apply_feedback(conn, delta.counts)
        conn.executemany(FEEDBACK_UPSERT, delta.answers)
        conn.executemany(
            _OFFSET_ADD,
            [(Stream.FEEDBACK.value, d.isoformat(), n, delta.sizes.get(d)) for d, n in delta.lines.items()],
        )
