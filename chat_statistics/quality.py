"""Retrieval quality and feedback, aggregated per (collection, date, hour) like the usage statistics.

An answer's *best score* is the largest of its ``retrieval_info.top_scores``. Each
hourly row keeps counts (answers, errors, regenerations, answers with retrieval_info,
those without results, those that used reranking) and three histograms of best
scores in BINS bins of 0.01 (all scored answers, the regenerated ones, the reranked
ones), packed as little-endian int32. Every rate of the quality answer follows from
summing rows: the low-score count is the histogram below the threshold (exact for a
threshold that is a multiple of 0.01), percentiles come from the merged histogram
(within 0.01), the 10 buckets of 0.1 are sums of 10 bins. So the threshold is a read
parameter, not baked into stored counts.

Scores outside [0, 1] (an unnormalised reranker's) are clamped into the first or last bin.

Every hourly row is also summed into its day's row of ``retrieval_statistics_daily``
(DAILY_TABLE), in the same transaction, by the live path and by ``rebuild-stats`` alike:
a range read sums one row per collection and day instead of 24. Both tables are keyed
by the same file day, so a read of either answers the same (tests compare them).
"""

from __future__ import annotations

import bisect
import math
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

import numpy as np

from shared.wire import FeedbackRecord, LogRecord, RetrievalInfo

BINS = 100
HISTOGRAMS = 3  # all scored answers, regenerations among them, reranked among them
# Bin i holds scores in [i/100, (i+1)/100): found by bisecting the very floats a
# threshold such as 0.57 parses to, so "score < threshold" and "bin < 57" always agree.
_EDGES = [i / BINS for i in range(1, BINS)]
_DTYPE = np.dtype("<i4")

HourKey = tuple[str, str, int]  # collection_name, date, hour
DayKey = tuple[str, str]  # collection_name, date

HOURLY_TABLE = "retrieval_statistics"
DAILY_TABLE = "retrieval_statistics_daily"


def score_bin(score: float) -> int:
    """The bin of a best score (NaN cannot be stored: msgspec refuses it)."""
    return bisect.bisect_right(_EDGES, score)


def best_score(scores: Sequence[float] | None) -> float | None:
    """The largest finite score, or None when there is none."""
    if not scores:
        return None
    finite = [s for s in scores if math.isfinite(s)]
    return max(finite) if finite else None


@dataclass
class QualityRow:
    """One hourly row's additive state."""

    answers: int = 0
    errors: int = 0
    regenerations: int = 0
    with_retrieval: int = 0
    no_result: int = 0
    reranked: int = 0  # answers with retrieval_info whose reranking_used is true
    histograms: np.ndarray = field(default_factory=lambda: np.zeros((HISTOGRAMS, BINS), dtype=np.int64))

    def counts(self) -> tuple[int, int, int, int, int, int]:
        return (self.answers, self.errors, self.regenerations, self.with_retrieval, self.no_result, self.reranked)

    def add(self, other: QualityRow) -> None:
        """Add another row's counts and histograms to this one."""
        self.answers += other.answers
        self.errors += other.errors
        self.regenerations += other.regenerations
        self.with_retrieval += other.with_retrieval
        self.no_result += other.no_result
        self.reranked += other.reranked
        self.histograms = self.histograms + other.histograms


def hour_of(instant: datetime, tz: ZoneInfo) -> int:
    """The hour of the day in CHATLOG_TIMEZONE (naive means UTC, as everywhere)."""
    at = instant if instant.tzinfo is not None else instant.replace(tzinfo=UTC)
    return at.astimezone(tz).hour


@dataclass
class QualityBatch:
    """Assistant answers folded per hourly bucket (user messages carry no retrieval quality)."""

    tz: ZoneInfo
    rows: dict[HourKey, QualityRow] = field(default_factory=dict)

    def add(self, records: Iterable[tuple[LogRecord, date]]) -> None:
        """Fold records, each with the day of the file it is stored in."""
        for record, day in records:
            if record.message_type != "assistant":
                continue
            key = (record.collection_name, day.isoformat(), hour_of(record.created_at, self.tz))
            row = self.rows.get(key)
            if row is None:
                row = self.rows[key] = QualityRow()
            fold_answer(row, record)


class Answer(Protocol):
    """What folding an answer reads: a ``LogRecord``, or the rebuild's narrower decode of one."""

    @property
    def status(self) -> str: ...
    @property
    def is_regeneration(self) -> bool: ...
    @property
    def retrieval_info(self) -> RetrievalInfo | None: ...


def fold_answer(row: QualityRow, record: Answer) -> None:
    """Add one assistant answer to a row."""
    row.answers += 1
    row.errors += record.status == "error"
    row.regenerations += record.is_regeneration
    info = record.retrieval_info
    if info is None:
        return
    row.with_retrieval += 1
    reranked = info.reranking_used is True
    row.reranked += reranked
    best = best_score(info.top_scores)
    if info.retrieved_count == 0 or best is None:
        row.no_result += 1  # no best score: in the denominators only, no histogram
        return
    i = score_bin(best)
    row.histograms[0, i] += 1
    if record.is_regeneration:
        row.histograms[1, i] += 1
    if reranked:
        row.histograms[2, i] += 1


def pack(histograms: np.ndarray) -> bytes:
    """The stored form of a row's histograms."""
    return histograms.astype(_DTYPE).tobytes()


def unpack(blob: bytes) -> np.ndarray:
    """A row's histograms from their stored form."""
    return np.frombuffer(blob, dtype=_DTYPE).astype(np.int64).reshape(HISTOGRAMS, BINS)


_COUNTS = "answers, errors, regenerations, with_retrieval, no_result, reranked"
_HOURLY_UPSERT = f"""
INSERT INTO {HOURLY_TABLE} (date, collection_name, hour, {_COUNTS}, histograms)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (date, collection_name, hour) DO UPDATE SET
    answers = excluded.answers, errors = excluded.errors, regenerations = excluded.regenerations,
    with_retrieval = excluded.with_retrieval, no_result = excluded.no_result,
    reranked = excluded.reranked, histograms = excluded.histograms
"""
_DAILY_UPSERT = f"""
INSERT INTO {DAILY_TABLE} (date, collection_name, {_COUNTS}, histograms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (date, collection_name) DO UPDATE SET
    answers = excluded.answers, errors = excluded.errors, regenerations = excluded.regenerations,
    with_retrieval = excluded.with_retrieval, no_result = excluded.no_result,
    reranked = excluded.reranked, histograms = excluded.histograms
"""


def by_day(rows: dict[HourKey, QualityRow]) -> dict[DayKey, QualityRow]:
    """Hourly rows summed per (collection, day)."""
    days: dict[DayKey, QualityRow] = {}
    for (collection, day, _), row in rows.items():
        total = days.get((collection, day))
        if total is None:
            total = days[(collection, day)] = QualityRow()
        total.add(row)
    return days


def _added(
    conn: sqlite3.Connection, table: str, key: tuple[str | int, ...], where: str, delta: QualityRow
) -> tuple[list[int], bytes]:
    """A delta added to the stored row of ``key`` (zeros when there is none)."""
    stored = conn.execute(f"SELECT {_COUNTS}, histograms FROM {table} WHERE {where}", key).fetchone()
    counts = list(delta.counts())
    histograms = delta.histograms
    if stored is not None:
        counts = [a + int(b) for a, b in zip(counts, stored[:6], strict=True)]
        histograms = histograms + unpack(stored[6])
    return counts, pack(histograms)


def apply_quality(conn: sqlite3.Connection, rows: dict[HourKey, QualityRow]) -> None:
    """Add hourly deltas to the stored hourly and daily rows, inside the caller's transaction.

    Histograms cannot be added in SQL: each touched row is read, summed and written
    back (a commit touches the current hour of a few collections, and their day).
    """
    hourly = []
    for (collection, day, hour), delta in rows.items():
        counts, blob = _added(conn, HOURLY_TABLE, (day, collection, hour),
                              "date = ? AND collection_name = ? AND hour = ?", delta)
        hourly.append((day, collection, hour, *counts, blob))
    daily = []
    for (collection, day), delta in by_day(rows).items():
        counts, blob = _added(conn, DAILY_TABLE, (day, collection), "date = ? AND collection_name = ?", delta)
        daily.append((day, collection, *counts, blob))
    conn.executemany(_HOURLY_UPSERT, hourly)
    conn.executemany(_DAILY_UPSERT, daily)


FeedbackCounts = dict[HourKey, list[int]]  # positive, negative

_FEEDBACK_UPSERT = """
INSERT INTO feedback_statistics (date, collection_name, hour, positive, negative) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (date, collection_name, hour) DO UPDATE SET
    positive = feedback_statistics.positive + excluded.positive,
    negative = feedback_statistics.negative + excluded.negative
"""


def fold_feedback(counts: FeedbackCounts, record: FeedbackRecord, day: date, tz: ZoneInfo) -> None:
    """Count one piece of feedback in its hourly bucket (score 1 good, -1 bad)."""
    key = (record.collection_name, day.isoformat(), hour_of(record.created_at, tz))
    pair = counts.setdefault(key, [0, 0])
    pair[0 if record.score > 0 else 1] += 1


def apply_feedback(conn: sqlite3.Connection, counts: FeedbackCounts) -> None:
    """Add feedback counts to the stored rows, inside the caller's transaction."""
    conn.executemany(
        _FEEDBACK_UPSERT, [(day, c, hour, pos, neg) for (c, day, hour), (pos, neg) in counts.items()]
    )
