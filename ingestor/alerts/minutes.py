"""Per-minute counts for the alert rules, kept for 8 days (``alert_minutes``).

The statistics tables are hourly, too coarse for a 15-minute window; recomputing a
window from the day files every minute would read them over and over. So the live
path folds each record into a small row per (scope, UTC minute) as well, written in
the line applier's transaction like every statistic (counted once, also after a
crash). Scope is the collection, and ``''`` for all collections. A week of minutes
is at most 10,080 rows per scope; older ones are pruned by the evaluator.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC

from chat_statistics.sketch import LatencySketch, encode_values
from ingestor.alerts.totals import CollectionTotals
from ingestor.records import EncodedRecord
from shared.wire import LogRecord

ALL = ""
KEEP_MINUTES = 8 * 24 * 60


@dataclass(slots=True)
class MinuteCounts:
    """What one scope did in one minute."""

    queries: int = 0
    answers: int = 0
    errors: int = 0
    scored: int = 0
    low_scores: int = 0
    latencies: list[int] = field(default_factory=list)

    def add(self, other: MinuteCounts) -> None:
        """Add another minute's counts."""
        self.queries += other.queries
        self.answers += other.answers
        self.errors += other.errors
        self.scored += other.scored
        self.low_scores += other.low_scores
        self.latencies.extend(other.latencies)


MinuteKey = tuple[str, int]

_SELECT = "SELECT scope, minute, latency_sketch FROM alert_minutes WHERE minute IN ({marks})"
_CHUNK = 900  # bound parameters per statement, under SQLite's limit


def _stored_sketches(conn: sqlite3.Connection, minutes: list[int]) -> dict[MinuteKey, bytes]:
    """The stored latency sketches of these minutes, every scope, in a statement per 900 minutes."""
    found: dict[MinuteKey, bytes] = {}
    for start in range(0, len(minutes), _CHUNK):
        chunk = minutes[start : start + _CHUNK]
        for scope, minute, blob in conn.execute(_SELECT.format(marks=", ".join("?" * len(chunk))), chunk):
            if blob:
                found[(scope, minute)] = blob
    return found
_UPSERT = (
    "INSERT INTO alert_minutes (scope, minute, queries, answers, errors, scored, low_scores, latency_sketch) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (scope, minute) DO UPDATE SET "
    "queries = alert_minutes.queries + excluded.queries, answers = alert_minutes.answers + excluded.answers, "
    "errors = alert_minutes.errors + excluded.errors, scored = alert_minutes.scored + excluded.scored, "
    "low_scores = alert_minutes.low_scores + excluded.low_scores, "
    "latency_sketch = coalesce(excluded.latency_sketch, alert_minutes.latency_sketch)"
)


class AlertMinutesObserver:
    """The ``LineObserver`` that keeps ``alert_minutes`` current.

    An answer is an assistant message; its error is ``status == "error"``; its latency
    is ``performance.response_time_ms``; it is scored when it has retrieval scores, and
    low-score when the best of them is under ``low_score_threshold``. A query is a user
    message.
    """

    def __init__(self, low_score_threshold: float) -> None:
        self._threshold = low_score_threshold
        self._pending: dict[MinuteKey, MinuteCounts] = {}
        self.totals = CollectionTotals()  # for Prometheus, counted as folded

    def fold(self, records: Sequence[EncodedRecord]) -> None:
        """Count records into their minutes."""
        pending = self._pending
        for item in records:
            record = item.record
            self._count(record)
            at = record.created_at
            at = at.replace(tzinfo=UTC) if at.tzinfo is None else at
            minute = int(at.timestamp()) // 60
            for scope in (record.collection_name, ALL):
                counts = pending.get((scope, minute))
                if counts is None:
                    counts = pending[(scope, minute)] = MinuteCounts()
                if record.message_type == "user":
                    counts.queries += 1
                    continue
                if record.message_type != "assistant":
                    continue
                counts.answers += 1
                if record.status == "error":
                    counts.errors += 1
                perf = record.performance
                if perf is not None and perf.response_time_ms is not None:
                    counts.latencies.append(perf.response_time_ms)
                retrieval = record.retrieval_info
                if retrieval is not None and retrieval.top_scores:
                    counts.scored += 1
                    if max(retrieval.top_scores) < self._threshold:
                        counts.low_scores += 1

    def _count(self, record: LogRecord) -> None:
        row = self.totals.row(record.collection_name)
        if row is None:
            return
        if record.message_type == "user":
            row[0] += 1
            return
        row[1] += 1
        if record.status == "error":
            row[2] += 1
        perf = record.performance
        if perf is not None and perf.response_time_ms is not None:
            CollectionTotals.add_latency(row, perf.response_time_ms)
        retrieval = record.retrieval_info
        if retrieval is not None and retrieval.top_scores:
            row[3] += 1
            if max(retrieval.top_scores) < self._threshold:
                row[4] += 1

    def take(self) -> dict[MinuteKey, MinuteCounts]:
        """The pending minutes, replaced by none."""
        pending, self._pending = self._pending, {}
        return pending

    def apply(self, conn: sqlite3.Connection, pending: object) -> None:
        """Add the taken minutes to their rows inside the caller's transaction."""
        assert isinstance(pending, dict)
        stored = _stored_sketches(conn, sorted({minute for (_, minute), c in pending.items() if c.latencies}))
        rows = []
        for (scope, minute), counts in pending.items():
            sketch = None
            if counts.latencies:
                blob = stored.get((scope, minute))
                if not blob:
                    sketch = encode_values(counts.latencies)  # most minutes: new, and few answers
                else:
                    merged = LatencySketch.decode(blob)
                    merged.merge(LatencySketch.of(counts.latencies))
                    sketch = merged.encode()
            elif not (counts.queries or counts.answers):
                continue
            rows.append((scope, minute, counts.queries, counts.answers, counts.errors, counts.scored,
                         counts.low_scores, sketch))
        conn.executemany(_UPSERT, rows)
