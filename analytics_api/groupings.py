"""The analytics process's question groupings: warmed at start, served stale while revalidated.

Grouping a month of distinct questions takes seconds (tens of seconds the first time,
when Kiwi's model loads and every text is analysed), so the FAQ and the knowledge gaps
read their groups from here rather than grouping in the request:

- *Warm-up*: at start a background task loads Kiwi and groups the dashboard's default
  ranges (the last 7 and the last 30 days, all collections), so the first dashboard
  request is answered from the cache (``faq_warmup``; it costs the model's memory).
- *Stale while revalidate*: a range whose data version (``insights.faq.data_version``)
  changed since its groups were computed is answered at once from those groups while
  ONE background regrouping per range refreshes them. Regroupings run one at a time on
  one thread of their own, at most ``MAX_PENDING`` waiting, so they never take the read
  pool's threads; the rows are read in one short read transaction and grouped outside
  it. An answer is therefore stale by at most the time a regrouping takes once started
  (about 2 s for 30 days of 45,000 distinct questions, the per-text analysis cached), plus
  any regrouping queued before it: under the ~10 s events-visible bound in practice.
  A range whose last grouping took under ``SYNC_BELOW`` (a small deployment) is simply
  regrouped in the request: exact at no noticeable cost.
- *Cold ranges* (never grouped in this process): the FAQ groups synchronously (on the same
  grouping thread; a request for a range already being grouped waits for that one);
  the quality answer never waits and says ``knowledge_gaps_pending`` instead.

Loading Kiwi's model holds the GIL for about 3 s (its constructor and first analysis),
which stalls this process's event loop once; the warm-up therefore waits until the
database holds questions to group (an empty one never loads the model), and then pays
it at start instead of in the first dashboard request.

Shutdown asks every task to stop (the analysis checks between chunks of 500 texts) and
awaits it before the database closes.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
import threading
import time
from collections import Counter, OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta

from analytics_api.read_pool import ReadPool
from insights import faq
from insights.faq import Group, Grouped, Questions, Stopped
from shared.errors import Unavailable

log = logging.getLogger(__name__)

WARM_RANGES = (7, 30)  # days ending today: the dashboard's default range and the month
CACHED_RANGES = 32
# A range whose last grouping took less than this is regrouped in the request when its data
# changed: exact answers at a cost no reader notices (small deployments, tests).
SYNC_BELOW = 0.05
# Groups whose shown answer a warm-up or refresh looks up ahead (the FAQ's default limit):
# the first FAQ read of those groups then finds the answers memoised.
ANSWERS_AHEAD = 20
MAX_PENDING = 8  # background groupings waiting at once (each for a different range)
_DATABASE_POLL = 2.0  # seconds between looks for the database before the warm-up starts

RangeKey = tuple[str | None, date, date]


@dataclass
class _Entry:
    version: tuple[object, ...]
    grouped: Grouped
    cost: float  # seconds its grouping took


class Groupings:
    """Cached question groups per (collection, first day, last day) of one database."""

    def __init__(self, database: ReadPool, min_count: int = 1) -> None:
        self._database = database
        self._min_count = min_count
        self._cache: OrderedDict[RangeKey, _Entry] = OrderedDict()
        self._running: dict[RangeKey, asyncio.Task[Grouped | None]] = {}
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="analytics-grouping")
        self._one_at_a_time = asyncio.Semaphore(1)
        self._stop = threading.Event()
        self._stopping = asyncio.Event()
        self._warm_up: asyncio.Task[None] | None = None
        # How reads were answered: fresh, stale (refresh started), quick (regrouped in the
        # request), cold (grouped in the request), pending (quality without groups); and
        # groupings finished, by why they started: done:warmup, done:refresh, done:cold, ...
        self.counts: Counter[str] = Counter()
        self.sync_below = SYNC_BELOW
        self._closed = False
        self._waiting_told = False

    def cached(self, collection: str | None, first: date, last: date) -> bool:
        """True when the range has groups in the cache (current or stale)."""
        return (collection, first, last) in self._cache

    async def groups(self, collection: str | None, first: date, last: date, *, wait: bool) -> Grouped | None:
        """The range's groups: cached (refreshed in the background when the data changed),
        else grouped now when ``wait``, else None with a grouping started in the background.

        None also when the database does not exist yet.
        """
        key = (collection, first, last)
        version = await self._database.read(faq.data_version, None)
        if version is None:
            return None
        entry = self._cache.get(key)
        if entry is not None:
            self._cache.move_to_end(key)
            if entry.version == version:
                self.counts["fresh"] += 1
                return entry.grouped
            if entry.cost < self.sync_below:
                self.counts["quick"] += 1
                task = self._start(key, "refresh", bounded=False)
                if task is not None:
                    return await asyncio.shield(task) or entry.grouped
                return entry.grouped
            self.counts["stale"] += 1
            self._start(key, "refresh")
            return entry.grouped
        if not wait:
            self.counts["pending"] += 1
            self._start(key, "pending")
            return None
        self.counts["cold"] += 1
        task = self._start(key, "cold", bounded=False)
        assert task is not None
        # Shielded: a client that goes away does not cancel a grouping others may await.
        return await asyncio.shield(task)

    def _start(self, key: RangeKey, reason: str, bounded: bool = True) -> asyncio.Task[Grouped | None] | None:
        running = self._running.get(key)
        if running is not None:
            return running
        if self._stop.is_set() or (bounded and len(self._running) >= MAX_PENDING):
            return None  # the next read asks again
        task = asyncio.get_running_loop().create_task(self._compute(key, reason))
        self._running[key] = task
        task.add_done_callback(lambda done: self._finished(key, done))
        return task

    def _finished(self, key: RangeKey, task: asyncio.Task[Grouped | None]) -> None:
        self._running.pop(key, None)
        if not task.cancelled() and (exc := task.exception()) is not None:
            # Awaiting readers get it too; a background one would otherwise be lost.
            log.warning("grouping the questions of %s failed: %s", key, exc)

    async def _compute(self, key: RangeKey, reason: str) -> Grouped | None:
        collection, first, last = key
        async with self._one_at_a_time:
            if self._stop.is_set():
                return None

            def read(conn: sqlite3.Connection) -> tuple[tuple[object, ...], Questions]:
                # Version and rows from one snapshot: the groups say exactly what they reflect.
                return faq.data_version(conn), faq.load_questions(conn, collection, first, last)

            loaded = await self._database.read(read, None)
            if loaded is None:
                return None
            version, questions = loaded
            loop = asyncio.get_running_loop()
            started = time.monotonic()
            try:
                result = await loop.run_in_executor(self._executor, faq.group_questions, questions, self._stop)
            except Stopped:
                return None
            cost = time.monotonic() - started
        self._cache[key] = _Entry(version, result, cost)
        self._cache.move_to_end(key)
        while len(self._cache) > CACHED_RANGES:
            self._cache.popitem(last=False)
        self.counts[f"done:{reason}"] += 1
        if reason in ("warmup", "refresh"):
            await self._answers_ahead(key, result)
        return result

    async def _answers_ahead(self, key: RangeKey, result: Grouped) -> None:
        for group in result.groups[:ANSWERS_AHEAD]:
            if group.count < self._min_count or self._stop.is_set():
                break
            # One short read per group: never a long hold on a read connection.
            await self._database.read(functools.partial(_answer, group=group, key=key), None)

    def start_warm_up(self, today: date) -> None:
        """Load Kiwi and group the default ranges in the background."""
        self._warm_up = asyncio.get_running_loop().create_task(self._warm(today))

    async def _warm(self, today: date) -> None:
        try:
            # Nothing to group yet (no database, or no question stored): no model to load.
            while not await self._questions_stored():
                try:
                    await asyncio.wait_for(self._stopping.wait(), _DATABASE_POLL)
                    return
                except TimeoutError:
                    pass
            if self._stop.is_set():
                return
            async with self._one_at_a_time:  # not inside a timed grouping
                await asyncio.get_running_loop().run_in_executor(self._executor, faq.load_model)
            for days in WARM_RANGES:
                task = self._start((None, today - timedelta(days=days - 1), today), "warmup", bounded=False)
                if task is not None:
                    await task
        except Unavailable as exc:  # a damaged database: requests will say so; the warm-up just ends
            log.warning("FAQ warm-up skipped: %s", exc)

    async def _questions_stored(self) -> bool:
        """True once a question is stored; False (asked again later) while the store cannot be read."""
        try:
            return await self._database.read(_has_questions, False)
        except Unavailable as exc:
            # A PostgreSQL not reachable yet, or a damaged file a restore will replace: keep waiting.
            if not self._waiting_told:
                log.warning("FAQ warm-up waits for the database: %s", exc)
                self._waiting_told = True
            return False

    def busy(self) -> bool:
        """True while the warm-up or a grouping is running or waiting."""
        warming = self._warm_up is not None and not self._warm_up.done()
        return warming or bool(self._running)

    @property
    def closed(self) -> bool:
        """True once ``close`` has stopped every task and the grouping thread."""
        return self._closed

    async def close(self) -> None:
        """Ask every task to stop, await them, then stop the grouping thread."""
        self._stop.set()
        self._stopping.set()
        tasks = [t for t in (self._warm_up, *self._running.values()) if t is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
        self._executor.shutdown(wait=True)
        self._closed = True



def _answer(conn: sqlite3.Connection, group: Group, key: RangeKey) -> None:
    faq.best_answer(conn, group, *key)


def _has_questions(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM faq_questions LIMIT 1").fetchone() is not None
