"""Delivering queued notifications (``alert_outbox``) to the webhooks, retried with backoff for an hour.

Its own task with its own HTTP timeouts: a webhook that hangs or fails holds up only
its own deliveries, never ingest (another process) nor the evaluation (another task).
A row leaves the outbox when its webhook answers 2xx, or when it is an hour old and
still failing (logged and counted). The outbox is in SQLite, so a restart keeps what
was pending. Delivery is at least once: a crash between a 2xx and the row's deletion
sends that one notification again (each carries its ``alert.id`` and ``alert.state``).

Many nodes on one PostgreSQL share the outbox: a node claims the rows it sends (their
``next_at`` moved past its HTTP timeout, in one transaction under the write lock)
before sending them, so two nodes never send the same row; a node that dies holding a
claim leaves the row to be sent by any node once the claim runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import aiosqlite

log = logging.getLogger("chatlog.ingestor.alerts")

GIVE_UP_SECONDS = 3600.0
MAX_DELAY_SECONDS = 300.0
TIMEOUT_SECONDS = 10.0
IDLE_SECONDS = 5.0
BATCH = 20
# How long a claimed row is left to the node that claimed it: its POST's timeout, and some.
CLAIM_MARGIN_SECONDS = 5.0


def _host(url: str) -> str:
    """Only the host: a webhook URL's path is often its secret (Slack's are)."""
    return urlsplit(url).netloc


class WebhookDelivery:
    """Sends due outbox rows, deletes the delivered, reschedules the failed."""

    def __init__(self, conn: aiosqlite.Connection, lock: asyncio.Lock) -> None:
        self._conn = conn
        self._lock = lock
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self.base_delay = 5.0  # the first retry's delay; each next one doubles, up to MAX_DELAY_SECONDS
        self.timeout = TIMEOUT_SECONDS
        self.delivered = 0
        self.failures = 0
        self.abandoned = 0

    def wake(self) -> None:
        """New rows are queued."""
        self._wake.set()

    def start(self) -> None:
        """Start the delivery task."""
        self._session = aiohttp.ClientSession()
        self._task = asyncio.create_task(self._run(), name="alert-delivery")

    async def stop(self) -> None:
        """Ask the task to stop and wait; POSTs under way are abandoned and their rows stay queued."""
        self._stopping.set()
        self._wake.set()
        if self._task is not None:
            await self._task
        if self._session is not None:
            await self._session.close()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                delay = await self.deliver_due()
            except Exception:
                log.exception("delivering alert notifications failed; trying again")
                delay = IDLE_SECONDS
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            self._wake.clear()

    async def deliver_due(self) -> float:
        """Send the rows that are due; return how long until the next one is."""
        rows = await self._claim()
        if rows:
            posts = {asyncio.ensure_future(self._post(url, body)): row for row in rows for url, body in [row[1:3]]}
            pending: set[asyncio.Future[Any]] = set(posts)
            while pending and not self._stopping.is_set():
                stopper: asyncio.Future[Any] = asyncio.ensure_future(self._stopping.wait())
                _, still = await asyncio.wait({*pending, stopper}, return_when=asyncio.FIRST_COMPLETED)
                stopper.cancel()
                pending = {p for p in still if p is not stopper}
            for post in pending:  # stopping: what has not answered is sent again after the restart
                post.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            await self._record([(posts[p], p.result()) for p in posts if p not in pending])
        async with self._lock, self._conn.execute("SELECT min(next_at) FROM alert_outbox") as cursor:
            row = await cursor.fetchone()
        next_at = row[0] if row is not None else None
        if next_at is None:
            return IDLE_SECONDS * 12
        return max(0.05, min(IDLE_SECONDS * 12, float(next_at) - time.time()))

    async def _claim(self) -> list[tuple[int, str, str, float, int]]:
        """The due rows, claimed for this node (no other node sends them until the claim runs out)."""
        now = time.time()
        async with self._lock:
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
                due = await self._conn.execute_fetchall(
                    "SELECT id, url, payload, created_at, attempts FROM alert_outbox WHERE next_at <= ? "
                    "ORDER BY id LIMIT ?", (now, BATCH))
                rows = [(int(r[0]), str(r[1]), str(r[2]), float(r[3]), int(r[4])) for r in due]
                if rows:
                    await self._conn.executemany(
                        "UPDATE alert_outbox SET next_at = ? WHERE id = ?",
                        [(now + self.timeout + CLAIM_MARGIN_SECONDS, row[0]) for row in rows])
                await self._conn.commit()
            except BaseException:
                await self._conn.rollback()
                raise
        return rows

    async def _post(self, url: str, body: str) -> str | None:
        """None when delivered, else why not."""
        assert self._session is not None
        try:
            async with self._session.post(
                url, data=body.encode(), headers={"Content-Type": "application/json"},
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as response:
                if 200 <= response.status < 300:
                    return None
                return f"HTTP {response.status}"
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            return f"{type(exc).__name__}: {exc}"[:200]

    async def _record(self, outcomes: list[tuple[tuple[int, str, str, float, int], str | None]]) -> None:
        now = time.time()
        async with self._lock:
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
                for (row_id, url, _, created_at, attempts), error in outcomes:
                    if error is None:
                        self.delivered += 1
                        await self._conn.execute("DELETE FROM alert_outbox WHERE id = ?", (row_id,))
                        continue
                    self.failures += 1
                    delay = min(MAX_DELAY_SECONDS, self.base_delay * 2**attempts)
                    if now + delay - created_at > GIVE_UP_SECONDS:
                        self.abandoned += 1
                        log.error("gave up delivering an alert notification to %s after an hour: %s", _host(url), error)
                        await self._conn.execute("DELETE FROM alert_outbox WHERE id = ?", (row_id,))
                        continue
                    log.warning("alert notification to %s failed (%s); retrying in %.1f s", _host(url), error, delay)
                    await self._conn.execute(
                        "UPDATE alert_outbox SET attempts = ?, next_at = ?, last_error = ? WHERE id = ?",
                        (attempts + 1, now + delay, error, row_id))
                await self._conn.commit()
            except BaseException:
                await self._conn.rollback()
                raise
