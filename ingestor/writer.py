"""Group commit: many concurrent requests share one write and one fsync.

Handlers ``submit`` their records and await the returned future; it resolves only
after the records are written and fsynced. A single writer task takes everything
pending (up to ``batch_max_events``), drops log_ids already stored, appends each day's
lines in a worker thread, fsyncs, resolves the futures, and tells the derived-state
process which days grew (it reads the new lines from the files). While one fsync is
in flight the next batch gathers, so the batch size grows with the load by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date

from ingestor.dayfiles import DayFileWriter, DayKey
from ingestor.feedback import EncodedFeedback
from ingestor.idempotency import RecentIdWindow
from ingestor.metrics import IngestMetrics
from ingestor.records import EncodedRecord
from shared.errors import Unavailable
from shared.layout import StorageLayout, Stream

log = logging.getLogger("chatlog.ingestor.writer")


@dataclass
class _Submission:
    records: Sequence[EncodedRecord | EncodedFeedback]
    future: asyncio.Future[None]
    submitted: float = field(default_factory=time.perf_counter)


class GroupCommitWriter:
    """The one writer of log day files of a running ingestor."""

    def __init__(
        self,
        layout: StorageLayout,
        files: DayFileWriter,
        window: RecentIdWindow,
        metrics: IngestMetrics,
        batch_max_events: int,
        flush_interval_ms: int,
        queue_max_events: int,
        after_commit: Sequence[Callable[[Sequence[EncodedRecord]], None]] = (),
        behind: Callable[[], bool] = lambda: False,
        after_feedback: Sequence[Callable[[set[date]], None]] = (),
    ) -> None:
        self._layout = layout
        self._files = files
        self._window = window
        self._metrics = metrics
        self._batch_max = batch_max_events
        self._interval = flush_interval_ms / 1000
        self._queue_max = queue_max_events
        self._after_commit = list(after_commit)
        self._after_feedback = list(after_feedback)  # told the days whose feedback files grew
        self._behind = behind
        self._pending: deque[_Submission] = deque()
        self._pending_events = 0
        self._wakeup = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._probe: asyncio.Task[None] | None = None
        self.storage_error: str | None = None

    @property
    def healthy(self) -> bool:
        """True while the last write succeeded (or none failed since recovery)."""
        return self.storage_error is None

    @property
    def pending_events(self) -> int:
        """Events accepted for writing and not yet fsynced."""
        return self._pending_events

    def start(self) -> None:
        """Start the writer task."""
        self._task = asyncio.create_task(self._run(), name="group-commit-writer")

    async def stop(self) -> None:
        """Write everything already submitted, then stop; new submissions get 503."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe

    def submit(self, records: Sequence[EncodedRecord | EncodedFeedback]) -> asyncio.Future[None]:
        """Queue records for the next group commit; raise Unavailable when that cannot be."""
        if self._closing:
            raise Unavailable("shutting down", retry_after=2, code="shutting_down")
        if self.storage_error is not None:
            raise Unavailable(
                f"storage is failing: {self.storage_error}", retry_after=5, code="storage_unavailable"
            )
        # An empty queue always admits one request (bounded by the body limit), so a request
        # larger than the bound is slow, not refused forever.
        if self._pending_events and self._pending_events + len(records) > self._queue_max:
            self._metrics.rejected.labels(reason="overloaded").inc(len(records))
            raise Unavailable("ingest queue is full", retry_after=1, code="overloaded")
        if self._behind():
            # Statistics and conversations would fall ever further behind: let them catch up.
            self._metrics.rejected.labels(reason="overloaded").inc(len(records))
            raise Unavailable("derived state is catching up", retry_after=1, code="overloaded")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(_Submission(records, future))
        self._pending_events += len(records)
        self._metrics.queue_depth.set(self._pending_events)
        self._wakeup.set()
        return future

    async def _run(self) -> None:
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if self._interval and self._pending_events < self._batch_max and not self._closing:
                # Give concurrent requests a moment to join this commit.
                await asyncio.sleep(self._interval)
            batch = self._take_batch()
            await self._commit(batch)

    def _take_batch(self) -> list[_Submission]:
        batch: list[_Submission] = []
        count = 0
        while self._pending and (not batch or count + len(self._pending[0].records) <= self._batch_max):
            submission = self._pending.popleft()
            batch.append(submission)
            count += len(submission.records)
        self._pending_events -= count
        self._metrics.queue_depth.set(self._pending_events)
        return batch

    async def _commit(self, batch: list[_Submission]) -> None:
        groups: dict[DayKey, list[bytes]] = {}
        fresh: list[EncodedRecord] = []
        in_batch: set[str] = set()
        duplicates = 0
        window = self._window
        day: date | None = None
        lines: list[bytes] = []
        for submission in batch:
            for item in submission.records:
                if isinstance(item, EncodedFeedback):
                    # Feedback shares the window under its own key prefix, in a stream of its own.
                    if item.key in in_batch or item.key in window:
                        duplicates += 1
                        continue
                    in_batch.add(item.key)
                    groups.setdefault((Stream.FEEDBACK, item.day), []).append(item.line)
                    continue
                log_id = item.record.log_id
                if log_id in in_batch or log_id in window:
                    duplicates += 1
                    continue
                in_batch.add(log_id)
                fresh.append(item)
                if item.day != day:  # nearly every event of a batch is today's: one look-up per run of days
                    day = item.day
                    lines = groups.setdefault((Stream.LOGS, day), [])
                lines.append(item.line)
        started = time.perf_counter()
        try:
            written = (await asyncio.to_thread(self._files.append, groups)).bytes_written if groups else 0
        except OSError as exc:
            self._fail(batch, exc)
            return
        self._metrics.flush_seconds.observe(time.perf_counter() - started)
        window.add_all(in_batch)
        now = time.perf_counter()
        accepted = 0
        for submission in batch:
            accepted += len(submission.records)
            self._metrics.ack_seconds.observe(now - submission.submitted)
            if not submission.future.done():
                submission.future.set_result(None)
        self._metrics.accepted.inc(accepted)
        self._metrics.duplicates.inc(duplicates)
        self._metrics.batches.inc()
        self._metrics.bytes_written.inc(written)
        if fresh:
            for consumer in self._after_commit:
                consumer(fresh)
        feedback_days = {day for stream, day in groups if stream is Stream.FEEDBACK}
        if feedback_days:
            for tell in self._after_feedback:
                tell(feedback_days)

    def _fail(self, batch: list[_Submission], exc: OSError) -> None:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        log.error("storage write failed, batch not stored (%s); answering 503 until it recovers", reason)
        self.storage_error = reason
        self._metrics.storage_errors.inc()
        self._metrics.healthy.set(0)
        error = Unavailable(f"storage is failing: {reason}", retry_after=5, code="storage_unavailable")
        for submission in batch:
            self._metrics.rejected.labels(reason="storage").inc(len(submission.records))
            if not submission.future.done():
                submission.future.set_exception(error)
        if self._probe is None or self._probe.done():
            self._probe = asyncio.create_task(self._probe_storage(), name="storage-probe")

    async def _probe_storage(self) -> None:
        """Until a test write with fsync succeeds again, keep answering 503; then recover."""
        probe = self._layout.root / ".write-probe"
        while self.storage_error is not None:
            await asyncio.sleep(1.0)
            try:
                await asyncio.to_thread(_probe_write, probe)
            except OSError as exc:
                self.storage_error = os.strerror(exc.errno) if exc.errno else str(exc)
                continue
            log.info("storage writable again; accepting events")
            self.storage_error = None
            self._metrics.healthy.set(1)


def _probe_write(path: os.PathLike[str]) -> None:
    # 64 KiB: a batch is usually larger than a few bytes, so probe with a real block.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, b"\0" * 65536)
        os.fsync(fd)
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)
