"""The ingestor's side of the derived-state process: start it, tell it what grew, bound its lag.

The process is restarted if it dies (it resumes from the database's offsets, so
nothing is lost or counted twice) and stopped in order at shutdown: stdin closes, it
applies every written line, closes open conversations and exits. If it falls more
than DERIVED_LAG_LIMIT_BYTES behind, the ingestor answers 503 until it catches up,
which keeps statistics fresh (seconds, not minutes) under a sustained overload.

It is *stalled* when for DERIVED_STALL_SECONDS it has neither applied a line nor
reported being caught up (it reports every second): stuck behind, hung, or dying at
every start. /healthz says so and /metrics has it. A stalled derived state does not
hold ingest back: refusing events cannot help it catch up, and storing them is the
ingestor's first duty. Nor does one whose database cannot be reached (a shared
PostgreSQL down, or its connection lost): the events wait in the files, and the
pacing only comes back once the derived state has caught up from the outage (its lag
under the limit again), so that a long outage is not followed by minutes of 503s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from typing import Any

import msgspec

from ingestor.alerts.rules import RULES as ALERT_RULES
from ingestor.derived.status import DerivedStatus
from ingestor.metrics import IngestMetrics
from ingestor.records import EncodedRecord
from shared.settings import Settings

log = logging.getLogger("chatlog.ingestor.derived")

# About two seconds of the derived process's work on this class of machine.
DERIVED_LAG_LIMIT_BYTES = 64 << 20
# Tens of heartbeats without progress: far beyond any single commit of a healthy process.
DERIVED_STALL_SECONDS = 30.0
# How long a stop lets the process apply its backlog and close its conversations. The
# deployments give the whole ingestor 30 s (TimeoutStopSec, stop_grace_period); whatever
# is left after this is in the files, and the next start applies it and reopens the
# conversations, so a long backlog never turns a clean stop into a SIGKILL.
STOP_TIMEOUT_SECONDS = 15.0
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
        self._quarantined_counted = 0
        self.stall_seconds = DERIVED_STALL_SECONDS
        self._progress_at = time.monotonic()
        self.storage_error: Callable[[], str | None] = lambda: None  # the writer's, once it exists
        self._storage_sent: str | None = None  # the last storage notice written to this process
        self._storage_down_since: float | None = None
        self._alerts_counted = (0, 0)  # deliveries, failures already added to the metrics
        self._after_outage = False  # the database was unreachable and the backlog is not applied yet
        for rule in ALERT_RULES:
            metrics.alerts_firing.labels(rule=rule).set(0)
        metrics.derived_stalled.set_function(lambda: 1.0 if self.stalled else 0.0)
        metrics.derived_seconds_without_progress.set_function(self.seconds_without_progress)
        metrics.derived_database_up.set_function(lambda: 0.0 if self.database_down_seconds else 1.0)

    @property
    def running(self) -> bool:
        """True while the process runs and has caught up once since it started."""
        status = self.status
        return self._proc is not None and self._proc.returncode is None and status is not None and (
            not status.catching_up
        )

    @property
    def lag_bytes(self) -> int:
        """How far behind the files the derived state last said it was (0 while it catches up at start)."""
        status = self.status
        return status.lag_bytes if status is not None and not status.catching_up else 0

    def seconds_without_progress(self) -> float:
        """Seconds since the derived state last applied a line or said it was caught up (about 1 while idle).

        It reports every second, so this also grows while it is dead, hung or crashing at start.
        """
        return time.monotonic() - self._progress_at

    @property
    def stalled(self) -> bool:
        """True when the derived state has not moved (nor been caught up) for DERIVED_STALL_SECONDS."""
        return self.seconds_without_progress() > self.stall_seconds

    @property
    def database_down_seconds(self) -> float:
        """How long the derived state has not reached its database, as it last said (0: it does)."""
        status = self.status
        return status.database_down_seconds if status is not None else 0.0

    def behind(self) -> bool:
        """True when the ingestor should refuse new events until the derived state catches up.

        Never while its database is unreachable or it catches up from such an outage.
        """
        return self.lag_bytes > DERIVED_LAG_LIMIT_BYTES and not self.stalled and not self._after_outage

    def health(self) -> dict[str, Any]:
        """The ``derived`` part of the ingestor's /healthz."""
        status = self.status
        return {
            "running": self.running,
            "catching_up": status is not None and status.catching_up,
            "lag_bytes": self.lag_bytes,
            "restarts": self.restarts,
            "stalled": self.stalled,
            "seconds_without_progress": round(self.seconds_without_progress(), 1),
            "quarantined": status.quarantined if status is not None else self._quarantined_counted,
            "commit_failures": status.commit_failures if status is not None else 0,
            "database_reachable": not self.database_down_seconds,
            "database_down_seconds": self.database_down_seconds,
        }

    async def start(self) -> None:
        """Start the process and its supervisor."""
        await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise(), name="derived-supervisor")

    async def wait_ready(self) -> None:
        """Wait until the process has caught up once and reported (tests and the benchmark)."""
        await self._ready.wait()

    def notify(self, records: Sequence[EncodedRecord]) -> None:
        """Tell the process which days just grew (never blocks the writer)."""
        self.notify_days({item.day for item in records})

    def notify_days(self, grown: Iterable[date]) -> None:
        """Tell the process which days' files (of any stream) just grew."""
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdin.is_closing():
            return
        if proc.stdin.transport.get_write_buffer_size() > _PIPE_BACKLOG_BYTES:
            return  # it is not reading: its follow tick still finds the new lines
        days = sorted(set(grown))
        proc.stdin.write(",".join(d.isoformat() for d in days).encode() + b"\n")

    def _tell_storage(self) -> None:
        """Tell the process when storing starts or stops failing (it raises ``storage_unavailable``)."""
        failing = self.storage_error() is not None
        if failing and self._storage_down_since is None:
            self._storage_down_since = time.time()
        elif not failing:
            self._storage_down_since = None
        notice = "-" if self._storage_down_since is None else repr(self._storage_down_since)
        proc = self._proc
        if notice == self._storage_sent or proc is None or proc.stdin is None or proc.stdin.is_closing():
            return
        proc.stdin.write(f"storage {notice}\n".encode())
        self._storage_sent = notice

    async def _spawn(self) -> None:
        self.status = None
        self._storage_sent = "-"  # a new process starts with storage working
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
        previous, self.status = self.status, status
        if status.database_down_seconds:
            self._after_outage = True
        elif self._after_outage and status.lag_bytes <= DERIVED_LAG_LIMIT_BYTES and not status.catching_up:
            self._after_outage = False
        # A new process counts its lines from 0 (the previous status is cleared when it starts).
        if status.lag_bytes == 0 or status.applied_lines > (previous.applied_lines if previous else 0):
            self._progress_at = time.monotonic()
        if not status.catching_up:
            self._ready.set()
        # The process reports the lines held in quarantine: the counter follows their number.
        if status.quarantined > self._quarantined_counted:
            self._metrics.derived_quarantined.inc(status.quarantined - self._quarantined_counted)
        self._quarantined_counted = status.quarantined
        self._metrics.derived_lag.set(status.lag_bytes)
        self._metrics.open_conversations.set(status.open_conversations)
        saved, dropped = self._counted
        # Counts restart at zero with a new process.
        saved = saved if status.saved >= saved else 0
        dropped = dropped if status.dropped >= dropped else 0
        self._metrics.conversations_closed.labels(outcome="saved").inc(status.saved - saved)
        self._metrics.conversations_closed.labels(outcome="dropped").inc(status.dropped - dropped)
        self._counted = (status.saved, status.dropped)
        for rule in ALERT_RULES:
            self._metrics.alerts_firing.labels(rule=rule).set(status.alerts_firing.get(rule, 0))
        delivered, failed = self._alerts_counted
        delivered = delivered if status.alert_deliveries >= delivered else 0
        failed = failed if status.alert_delivery_failures >= failed else 0
        self._metrics.alert_deliveries.inc(status.alert_deliveries - delivered)
        self._metrics.alert_delivery_failures.inc(status.alert_delivery_failures - failed)
        self._alerts_counted = (status.alert_deliveries, status.alert_delivery_failures)
        self._metrics.collection_totals.observe(status.collection_totals)
        # Its heartbeat (every second) is when the ingestor's storage health is passed on.
        self._tell_storage()

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
