"""The ingestor's side of the derived-state process: start it, tell it what grew, bound its lag.

The process is restarted if it dies (it resumes from the database's offsets, so
nothing is lost or counted twice) and stopped in order at shutdown: stdin closes, it
applies every written line, closes open conversations and exits. If it falls more
than DERIVED_LAG_LIMIT_BYTES behind, the ingestor answers 503 until it catches up,
which keeps statistics fresh (seconds, not minutes) under a sustained overload.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import sys
from collections.abc import Sequence

import msgspec

from ingestor.derived.status import DerivedStatus
from ingestor.metrics import IngestMetrics
from ingestor.records import EncodedRecord
from shared.settings import Settings

log = logging.getLogger("chatlog.ingestor.derived")

# About two seconds of the derived process's work on this class of machine.
DERIVED_LAG_LIMIT_BYTES = 64 << 20
STOP_TIMEOUT_SECONDS = 120.0
RESTART_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
_PIPE_BACKLOG_BYTES = 1 << 20


class DerivedStateProcess:
    """Runs ``python -m ingestor.derived`` beside the ingestor."""

    def __init__(self, settings: Settings, metrics: IngestMetrics) -> None:
        self._settings = settings
        self._metrics = metrics
        self._proc: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False
        self._ready = asyncio.Event()
        self.status: DerivedStatus | None = None
        self.restarts = 0
        self._counted = (0, 0)  # saved, dropped already added to the metrics

    @property
    def running(self) -> bool:
        """True while the process runs and has reported at least once."""
        return self._proc is not None and self._proc.returncode is None and self.status is not None

    @property
    def lag_bytes(self) -> int:
        """How far behind the files the derived state last said it was."""
        return self.status.lag_bytes if self.status is not None else 0

    def behind(self) -> bool:
        """True when the ingestor should refuse new events until the derived state catches up."""
        return self.lag_bytes > DERIVED_LAG_LIMIT_BYTES

    async def start(self) -> None:
        """Start the process and its supervisor."""
        await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise(), name="derived-supervisor")

    async def wait_ready(self) -> None:
        """Wait until the process has caught up once and reported (tests and the benchmark)."""
        await self._ready.wait()

    def notify(self, records: Sequence[EncodedRecord]) -> None:
        """Tell the process which days just grew (never blocks the writer)."""
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdin.is_closing():
            return
        if proc.stdin.transport.get_write_buffer_size() > _PIPE_BACKLOG_BYTES:
            return  # it is not reading: its follow tick still finds the new lines
        days = sorted({item.day for item in records})
        proc.stdin.write(",".join(d.isoformat() for d in days).encode() + b"\n")

    async def _spawn(self) -> None:
        self.status = None
        self._ready.clear()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ingestor.derived",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )
        assert proc.stdin is not None
        payload = pickle.dumps(self._settings)
        proc.stdin.write(len(payload).to_bytes(8, "big") + payload)
        await proc.stdin.drain()
        self._proc = proc

    async def _supervise(self) -> None:
        failures = 0
        while True:
            proc = self._proc
            assert proc is not None and proc.stdout is not None
            while line := await proc.stdout.readline():
                with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
                    self._observe(msgspec.json.decode(line, type=DerivedStatus))
                    failures = 0
            code = await proc.wait()
            if self._stopping:
                return
            delay = RESTART_DELAYS[min(failures, len(RESTART_DELAYS) - 1)]
            failures += 1
            self.restarts += 1
            self._metrics.derived_restarts.inc()
            log.error("the derived-state process exited (code %s); restarting it in %.1f s", code, delay)
            await asyncio.sleep(delay)
            if self._stopping:
                return
            await self._spawn()

    def _observe(self, status: DerivedStatus) -> None:
        self.status = status
        self._ready.set()
        self._metrics.derived_lag.set(status.lag_bytes)
        self._metrics.open_conversations.set(status.open_conversations)
        saved, dropped = self._counted
        # Counts restart at zero with a new process.
        saved = saved if status.saved >= saved else 0
        dropped = dropped if status.dropped >= dropped else 0
        self._metrics.conversations_closed.labels(outcome="saved").inc(status.saved - saved)
        self._metrics.conversations_closed.labels(outcome="dropped").inc(status.dropped - dropped)
        self._counted = (status.saved, status.dropped)

    async def pause(self) -> None:
        """Stop the process in order and keep it stopped until ``resume`` (an erasure rewrites its input)."""
        await self.stop()

    async def resume(self) -> None:
        """Start the process again after ``pause``; it resumes from the database's offsets."""
        self._stopping = False
        await self.start()

    async def stop(self) -> None:
        """Let the process apply everything written and close its conversations, then wait for it."""
        self._stopping = True
        proc = self._proc
        if proc is not None and proc.returncode is None and proc.stdin is not None:
            proc.stdin.close()
            try:
                await asyncio.wait_for(asyncio.shield(proc.wait()), STOP_TIMEOUT_SECONDS)
            except TimeoutError:
                # Everything it had not applied is in the files: the next start applies it.
                log.error("the derived-state process did not stop in %.0f s; killing it", STOP_TIMEOUT_SECONDS)
                proc.kill()
                await proc.wait()
        if self._supervisor is not None:
            # It reads the last status line, or is waiting to restart a dead process: not for long.
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._supervisor, 5.0)
