"""Evaluating the alert rules every ``alert_eval_seconds`` and recording what starts and resolves.

Runs in the derived-state process on its writer connection, under the applier's lock
for the short reads and the one transaction that records the changes. A change of
state and the webhook deliveries it calls for (``alert_outbox``) commit together, so
a restart neither forgets a firing alert nor notifies it again: a firing alert is a
row, and the next evaluation after a restart finds it firing.

Nodes sharing one PostgreSQL share the alerts too: the transaction runs under the
write lock every node takes, so the node that comes second finds the alert already
firing (and ``alerts_one_firing`` would refuse a second row). An evaluation is also
skipped when another node evaluated less than EVALUATED_ELSEWHERE of an interval ago
(``meta.alerts_evaluated``): the rules count evaluations (an alert resolves after
``alert_resolve_evaluations`` quiet ones), and N nodes must not resolve N times faster.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiosqlite

from chat_statistics.sketch import LatencySketch
from ingestor.alerts.minutes import ALL, KEEP_MINUTES
from ingestor.alerts.notices import describe, payload
from ingestor.alerts.rules import RULES, Finding, Measures, evaluate_scope, storage_finding
from shared.settings import Settings

log = logging.getLogger("chatlog.ingestor.alerts")

_DAY = 24 * 60
EVALUATED_KEY = "alerts_evaluated"
# Another node's evaluation this recent (a share of the interval) stands for this node's.
EVALUATED_ELSEWHERE = 0.9
BASELINE_DAYS = 7
_SUMS = (
    "SELECT scope, sum(queries), sum(answers), sum(errors), sum(scored), sum(low_scores) FROM alert_minutes "
    "WHERE minute >= ? AND minute < ? GROUP BY scope"
)
_SKETCHES = "SELECT scope, latency_sketch FROM alert_minutes WHERE minute >= ? AND minute < ? " \
    "AND latency_sketch IS NOT NULL"


def iso(instant: float) -> str:
    """An instant as ISO 8601 UTC, to the second."""
    return datetime.fromtimestamp(instant, UTC).isoformat(timespec="seconds")


async def _measures(conn: aiosqlite.Connection, start: int, end: int) -> dict[str, Measures]:
    """Each scope's sums over minutes [start, end), p95 from the merged sketches."""
    sums = {row[0]: row[1:] for row in await conn.execute_fetchall(_SUMS, (start, end))}
    blobs: dict[str, list[bytes]] = {}
    for scope, blob in await conn.execute_fetchall(_SKETCHES, (start, end)):
        blobs.setdefault(scope, []).append(blob)
    sketches = await asyncio.to_thread(lambda: {s: LatencySketch.merged(b) for s, b in blobs.items()})
    out = {}
    for scope, (queries, answers, errors, scored, low) in sums.items():
        sketch = sketches.get(scope)
        out[scope] = Measures(
            int(queries), int(answers), int(errors), int(scored), int(low),
            sketch.count if sketch else 0, sketch.quantile(0.95) if sketch else None,
        )
    return out


class AlertEvaluator:
    """The rules over ``alert_minutes``, the ``alerts`` rows, and the outbox they feed."""

    def __init__(self, settings: Settings, conn: aiosqlite.Connection, lock: asyncio.Lock,
                 clock: Callable[[], float] = time.time, on_outbox: Callable[[], None] | None = None) -> None:
        self._settings = settings
        self._conn = conn
        self._lock = lock
        self._clock = clock
        self._on_outbox = on_outbox
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.storage_down_since: float | None = None
        # Storing is each node's own: on a shared PostgreSQL its alert is the node's, and a
        # healthy node's evaluation must neither clear it nor stand in for it.
        self.storage_scope = f"node:{settings.node}" if settings.database_url else ALL
        self.firing: dict[str, int] = dict.fromkeys(RULES, 0)
        self.evaluations = 0

    def start(self) -> None:
        """Evaluate every ``alert_eval_seconds``, the first time that long after the start."""
        self._task = asyncio.create_task(self._run(), name="alert-evaluator")

    async def stop(self) -> None:
        """Ask the loop to stop and wait for it (an evaluation in progress finishes)."""
        self._stopping.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings.alert_eval_seconds):
                    await self._stopping.wait()
            if self._stopping.is_set():
                return
            try:
                await self.evaluate()
            except Exception:
                log.exception("evaluating the alert rules failed; trying again next time")

    async def _findings(self, now: float) -> dict[str, list[Finding]]:
        window = self._settings.alert_window_minutes
        end = int(now) // 60 + 1  # the current minute counts
        start = end - window
        conn = self._conn
        async with self._lock:
            current = await _measures(conn, start, end)
            base = await _measures(conn, start - BASELINE_DAYS * _DAY, start)
            first: dict[str, int] = {str(scope): int(minute) for scope, minute in await conn.execute_fetchall(
                "SELECT scope, min(minute) FROM alert_minutes GROUP BY scope")}
            same_windows: dict[str, int] = {}
            for day in range(1, BASELINE_DAYS + 1):
                for scope, queries in await conn.execute_fetchall(
                    "SELECT scope, sum(queries) FROM alert_minutes WHERE minute >= ? AND minute < ? GROUP BY scope",
                    (start - day * _DAY, end - day * _DAY),
                ):
                    same_windows[scope] = same_windows.get(scope, 0) + int(queries)
            firing_scopes = {row[0] for row in await conn.execute_fetchall(
                "SELECT scope FROM alerts WHERE state = 'firing'")}
        findings: dict[str, list[Finding]] = {}
        for scope in set(current) | set(base) | firing_scopes | {ALL}:
            # "Or as many days as exist": only the days since the scope's first data count.
            days = sum(1 for d in range(1, BASELINE_DAYS + 1) if first.get(scope, end) <= start - d * _DAY)
            volume = same_windows.get(scope, 0) / days if days else None
            findings[scope] = evaluate_scope(self._settings, current.get(scope, Measures()),
                                             base.get(scope, Measures()), volume)
        findings.setdefault(self.storage_scope, []).append(
            storage_finding(self._settings, self.storage_down_since, now)
        )
        return findings

    async def evaluate(self) -> list[dict[str, Any]]:
        """Evaluate every rule now; record and queue what starts or resolves; return those alerts."""
        now = self._clock()
        findings = await self._findings(now)
        changes: list[dict[str, Any]] = []
        conn = self._conn
        async with self._lock:
            try:
                await conn.execute("BEGIN IMMEDIATE")
                if await self._evaluated_elsewhere():
                    # Another node judged the shared rules just now; this node's storage is its own.
                    findings = {self.storage_scope: [
                        f for f in findings.get(self.storage_scope, []) if f.rule == "storage_unavailable"
                    ]}
                rows = await conn.execute_fetchall(
                    "SELECT id, rule, scope, started_at, value, threshold, baseline, message, quiet FROM alerts "
                    "WHERE state = 'firing'")
                firing = {(r[1], r[2]): r for r in rows}
                for scope, scope_findings in findings.items():
                    for finding in scope_findings:
                        changed = await self._apply(now, scope, finding, firing.get((finding.rule, scope)))
                        if changed is not None:
                            changes.append(changed)
                await conn.execute("DELETE FROM alert_minutes WHERE minute < ?", (int(now) // 60 - KEEP_MINUTES,))
                counts = await self._firing_counts()
                await conn.commit()
            except BaseException:
                await conn.rollback()
                raise
        self.firing = counts
        self.evaluations += 1
        for change in changes:
            log.warning("alert %s: %s", change["state"], change["message"])
        if changes and self._on_outbox is not None:
            self._on_outbox()
        return changes

    async def _firing_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(RULES, 0)
        for (rule,) in await self._conn.execute_fetchall("SELECT rule FROM alerts WHERE state = 'firing'"):
            counts[rule] = counts.get(rule, 0) + 1
        return counts

    async def _evaluated_elsewhere(self) -> bool:
        """Inside the transaction: True when another node evaluated just now; else record this evaluation."""
        node, now = self._settings.node, time.time()  # the real clock: how often, not the rules' "now"
        rows = list(await self._conn.execute_fetchall("SELECT value FROM meta WHERE key = ?", (EVALUATED_KEY,)))
        if rows:
            by, _, at = str(rows[0][0]).rpartition(" ")
            with contextlib.suppress(ValueError):
                if by != node and now - float(at) < EVALUATED_ELSEWHERE * self._settings.alert_eval_seconds:
                    return True
        await self._conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (EVALUATED_KEY, f"{node} {now!r}"),
        )
        return False

    async def _apply(self, now: float, scope: str, finding: Finding, row: Any) -> dict[str, Any] | None:
        conn = self._conn
        collection = scope or None
        if row is None:
            if not finding.met:
                return None
            message = describe(finding.rule, collection, finding.value, finding.threshold, finding.baseline,
                               self._settings.alert_window_minutes)
            cursor = await conn.execute(
                "INSERT INTO alerts (rule, scope, state, started_at, value, threshold, baseline, message) "
                "VALUES (?, ?, 'firing', ?, ?, ?, ?, ?) RETURNING id",
                (finding.rule, scope, iso(now), finding.value, finding.threshold, finding.baseline, message),
            )
            (alert_id,) = await cursor.fetchone() or (None,)
            await cursor.close()
            alert = {"id": alert_id, "rule": finding.rule, "collection_name": collection, "state": "firing",
                     "value": finding.value, "threshold": finding.threshold, "baseline": finding.baseline,
                     "started_at": iso(now), "resolved_at": None, "message": message}
            await self._queue(alert)
            return alert
        alert_id, _, _, started_at, value, threshold, baseline, message, quiet = row
        quiet = quiet + 1 if finding.clear else 0
        if quiet < self._settings.alert_resolve_evaluations:
            await conn.execute("UPDATE alerts SET quiet = ? WHERE id = ?", (quiet, alert_id))
            return None
        await conn.execute("UPDATE alerts SET state = 'resolved', resolved_at = ?, quiet = ? WHERE id = ?",
                           (iso(now), quiet, alert_id))
        alert = {"id": alert_id, "rule": finding.rule, "collection_name": collection, "state": "resolved",
                 "value": value, "threshold": threshold, "baseline": baseline, "started_at": started_at,
                 "resolved_at": iso(now), "message": message}
        await self._queue(alert)
        return alert

    async def _queue(self, alert: dict[str, Any]) -> None:
        # Deliveries are scheduled on the real clock, whatever the rules' clock says.
        now = time.time()
        for url in self._settings.alert_webhook_url:
            await self._conn.execute(
                "INSERT INTO alert_outbox (alert_id, url, payload, created_at, next_at) VALUES (?, ?, ?, ?, ?)",
                (alert["id"], url, json.dumps(payload(self._settings, alert), ensure_ascii=False), now, now),
            )
