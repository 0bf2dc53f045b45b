"""Everything derived from the log day files, as one unit: sessions, statistics, conversations.

It follows the day files rather than receiving records from the writer, so it runs
in its own process (``ingestor.derived.process``) and the ingest path never pays for
it; tests run the same object in-process. On start it reopens the conversations that
were open, applies the lines the database has not seen, then follows the files:
woken by the writer's notices, and every FOLLOW_TICK_SECONDS regardless (the recent
days). Every ``derived_sweep_seconds`` it also wakes any older day whose file is not the
size it has read (``LineApplier.changed_days``): a late event to an old day whose notice
the ingestor dropped (its pipe backed up) is applied within that, not at the next start. Its status
goes to ``on_status`` after every commit and at least every HEARTBEAT_SECONDS, also
while it catches up at start and while nothing moves: the ingestor tells a stalled
derived state from an idle one by whether the applied lines move while lag remains.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from datetime import date, timedelta

import aiosqlite

from ingestor.alerts.delivery import WebhookDelivery
from ingestor.alerts.evaluator import AlertEvaluator
from ingestor.alerts.minutes import AlertMinutesObserver
from ingestor.conversations.service import ConversationService, conversation_service
from ingestor.dayfiles import DayFileWriter
from ingestor.derived.answers import AnswerObserver
from ingestor.derived.applier import RETRY_SECONDS, AnyLineObserver, LineApplier
from ingestor.derived.quality import QualityObserver
from ingestor.derived.quarantine import caused_by_environment
from ingestor.derived.questions import QuestionObserver
from ingestor.derived.statistics import StatisticsObserver
from ingestor.derived.status import DerivedStatus
from shared.db import open_store
from shared.layout import StorageLayout
from shared.locking import derived_lock
from shared.settings import Settings

log = logging.getLogger("chatlog.ingestor.derived")

FOLLOW_TICK_SECONDS = 1.0
PULL_INTERVAL_SECONDS = 0.1
HEARTBEAT_SECONDS = 1.0


def line_observers(settings: Settings) -> list[AnyLineObserver]:
    """What the derived state derives from every line, in order (``migrate-to-postgres`` applies the same)."""
    return [
        StatisticsObserver(settings.timezone), QualityObserver(settings.timezone),
        AlertMinutesObserver(settings.low_score_threshold), QuestionObserver(), AnswerObserver(),
    ]


class DerivedState:
    """The derived side of one data directory; one instance at a time writes it."""

    def __init__(
        self, settings: Settings, on_status: Callable[[DerivedStatus], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self.sweeps = 0  # sweeps for grown older days done since start
        self._clock = clock  # the alert rules' "now" (tests move it)
        self._on_status = on_status
        self._heartbeat: asyncio.Task[None] | None = None
        self._catching_up = True
        self._layout = StorageLayout.from_settings(settings)
        self._woken: set[date] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._conn: aiosqlite.Connection | None = None
        self._files = DayFileWriter(self._layout, settings.zstd_level)
        self._applier: LineApplier | None = None
        self._conversations: ConversationService | None = None
        self._alerts: AlertEvaluator | None = None
        self._delivery: WebhookDelivery | None = None
        self._minutes: AlertMinutesObserver | None = None
        self._down_since: float | None = None  # the database did not answer at start, since then
        self._storage_down_since: float | None = None

    @property
    def applier(self) -> LineApplier:
        """The line applier (after ``start``)."""
        assert self._applier is not None
        return self._applier

    @property
    def conversations(self) -> ConversationService:
        """The conversation assembler and store (after ``start``)."""
        assert self._conversations is not None
        return self._conversations

    @property
    def alerts(self) -> AlertEvaluator:
        """The alert rules' evaluator (after ``start``)."""
        assert self._alerts is not None
        return self._alerts

    @property
    def delivery(self) -> WebhookDelivery:
        """The webhook delivery of alert notifications (after ``start``)."""
        assert self._delivery is not None
        return self._delivery

    @property
    def waiting_for_database(self) -> bool:
        """True while the start waits for a database that does not answer (nothing read or applied yet)."""
        return self._conn is None and self._down_since is not None

    @property
    def storage_down_since(self) -> float | None:
        """Since when the ingestor has failed to store events (the ``storage_unavailable`` alert), or None."""
        return self._storage_down_since

    @storage_down_since.setter
    def storage_down_since(self, since: float | None) -> None:
        self._storage_down_since = since
        if self._alerts is not None:
            self._alerts.storage_down_since = since

    async def _open(self) -> aiosqlite.Connection:
        """The store's connection; while the database does not answer, retried (and reported) until it does.

        The lines written meanwhile wait in the files: the catch-up that follows applies them.
        """
        attempts = 0
        while True:
            try:
                conn = await open_store(self._settings)
            except Exception as exc:
                if not caused_by_environment(exc):
                    raise
                if self._down_since is None:
                    self._down_since = time.time()
                    log.error("the database does not answer (%s); the day files keep every event, and they "
                              "are applied when it does", type(exc).__name__)
                self.report()
                await asyncio.sleep(RETRY_SECONDS[min(attempts, len(RETRY_SECONDS) - 1)] * 2)
                attempts += 1
                continue
            if self._down_since is not None:
                log.warning("the database answers after %.1f s; catching up", time.time() - self._down_since)
                self._down_since = None
            return conn

    async def start(self) -> None:
        """Reopen conversations, apply what the database has not seen, and follow the files."""
        self._conn = conn = await self._open()
        lock = asyncio.Lock()
        conversations = conversation_service(self._settings, self._layout, self._files, conn, lock)
        self._conversations = conversations
        observers = line_observers(self._settings)
        self._minutes = next(o for o in observers if isinstance(o, AlertMinutesObserver))
        applier = LineApplier(
            conn, self._layout, observers=observers, consumers=[conversations.observe], lock=lock,
        )
        self._applier = applier
        applier.on_commit = self.report
        applied = await applier.open()
        self._heartbeat = asyncio.create_task(self._beat(), name="derived-heartbeat")
        await conversations.recover(applied)
        # The sweep runs during the catch-up too: it is what keeps open conversations within
        # their bounds, and a long backlog would otherwise hold every conversation of the day.
        conversations.start()
        await applier.catch_up()
        self._catching_up = False
        self.report()
        applier.start()
        self._delivery = delivery = WebhookDelivery(conn, lock)
        self._alerts = AlertEvaluator(self._settings, conn, lock, self._clock, on_outbox=delivery.wake)
        self._alerts.storage_down_since = self._storage_down_since
        delivery.start()
        self._alerts.start()
        self._task = asyncio.create_task(self._follow(), name="derived-follow")

    def wake(self, days: Iterable[date]) -> None:
        """New lines were written to these days' files."""
        self._woken.update(days)
        self._wake.set()

    def _recent(self) -> set[date]:
        today = self._layout.today()
        # Events may be dated up to a day ahead, and yesterday still gets stragglers.
        return {today - timedelta(days=1), today, today + timedelta(days=1)}

    async def pull(self) -> None:
        """Read and fold every new line of the woken and recent days.

        Commits are left to the applier's own task (every COALESCE_SECONDS): the folded
        state is per session and per hour, not per event, so it stays small however far
        behind this is, and fewer, larger commits write less to SQLite's WAL.
        """
        days, self._woken = sorted(self._woken | self._recent()), set()
        self._wake.clear()
        while await self.applier.pull(days):
            pass

    async def sweep(self) -> None:
        """Wake every day whose file is not the size read of it (older days grown unannounced)."""
        self.wake(await self.applier.changed_days())
        self.sweeps += 1

    async def _follow(self) -> None:
        next_sweep = time.monotonic() + self._settings.derived_sweep_seconds
        while not self._stopping:
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation
            # that comes as the event is set.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FOLLOW_TICK_SECONDS):
                    await self._wake.wait()
            if self._stopping:
                return
            started = time.monotonic()
            try:
                if started >= next_sweep:
                    next_sweep = started + self._settings.derived_sweep_seconds
                    await self.sweep()
                await self.pull()
            except Exception:
                log.exception("following the day files failed; retrying")
                await asyncio.sleep(FOLLOW_TICK_SECONDS)
            # Under load the writer wakes this loop hundreds of times a second: reading
            # in fewer, larger pieces costs less CPU for the same freshness.
            await asyncio.sleep(max(0.0, PULL_INTERVAL_SECONDS - (time.monotonic() - started)))

    def status(self) -> DerivedStatus:
        """Lag, progress, quarantine and conversation counts now."""
        if self._applier is None:  # not started: the database does not answer yet
            return DerivedStatus(0, 0, 0, 0, 0, catching_up=True, database_down_seconds=_down_seconds(self._down_since))
        conversations = self.conversations
        applier = self.applier
        down_since = applier.database_down_since
        return DerivedStatus(
            lag_bytes=applier.lag_bytes(sorted(self._recent() | self._woken)),
            applied_lines=applier.applied_lines,
            open_conversations=len(conversations.assembler),
            saved=conversations.saved,
            dropped=conversations.dropped,
            quarantined=applier.quarantined,
            commit_failures=applier.failures,
            catching_up=self._catching_up,
            alerts_firing=dict(self._alerts.firing) if self._alerts is not None else {},
            alert_deliveries=self._delivery.delivered if self._delivery is not None else 0,
            alert_delivery_failures=self._delivery.failures if self._delivery is not None else 0,
            collection_totals=self._minutes.totals.totals if self._minutes is not None else {},
            database_down_seconds=_down_seconds(down_since),
        )

    def report(self) -> None:
        """Hand the status now to ``on_status``."""
        if self._on_status is not None:
            self._on_status(self.status())

    async def _beat(self) -> None:
        while not self._stopping:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            self.report()

    async def stop(self) -> None:
        """Apply every line written so far, close every open conversation, release everything."""
        try:
            # Asked to stop, not cancelled: a cancelled commit would lose the lines it took.
            self._stopping = True
            self._wake.set()
            if self._alerts is not None:
                await self._alerts.stop()
            if self._delivery is not None:
                await self._delivery.stop()
            if self._task is not None:
                await self._task
            if self._heartbeat is not None:
                self._heartbeat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._heartbeat
            if self._applier is not None and self._applier.opened:  # else it would read from the first line
                await self.pull()
                await self._applier.drain()
            if self._conversations is not None:
                await self._conversations.stop()
        finally:
            if self._conn is not None:
                await self._conn.close()
            self._files.close()


def _down_seconds(since: float | None) -> float:
    """Seconds since ``since`` for the status: never 0 while down (0 means the database answers)."""
    return 0.0 if since is None else max(0.1, round(time.time() - since, 1))


async def _catch_up(settings: Settings) -> int:
    state = DerivedState(settings)
    try:
        await state.start()  # catches up before it returns
    finally:
        await state.stop()
    return state.applier.applied_lines


def catch_up_stopped(settings: Settings, layout: StorageLayout) -> int:
    """With no ingestor running: apply every day-file line the database has not seen, exactly
    as an ingestor start does (sessions, statistics, quality, FAQ rows, alert minutes,
    conversations), then stop; return how many lines were applied.

    Under the derived lock: it waits for the derived process of an ingestor that died, if
    that is still finishing, rather than applying beside it.
    """
    with derived_lock(layout):
        return asyncio.run(_catch_up(settings))
