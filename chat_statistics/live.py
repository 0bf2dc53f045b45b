"""The live path: fold a batch of stored records into the statistics rows it touches.

Runs inside the derived-state process's line-applier transaction (the same one that advances the day
files' line offsets), so every stored event is counted exactly once, even across a
crash and the replay that follows it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date
from typing import TypeVar
from zoneinfo import ZoneInfo

from chat_statistics.live_top import updated_top
from chat_statistics.sessions import Place, PlaceCache, apply_sessions
from chat_statistics.sketch import LatencySketch
from chat_statistics.tables import (
    ALL_SCOPE,
    DAILY,
    HOURLY,
    OVERALL,
    QUERIES,
    BucketStats,
    epoch_us,
    insert_sql,
    select_sql,
)
from chat_statistics.top_queries import TOP_PER_DAY, TOP_PER_HOUR, decode_top, display_text, query_key
from shared.wire import LogRecord

_INT64 = (-(2**63), 2**63 - 1)

K = TypeVar("K")
HourKey = tuple[str, str, int]  # collection_name, date, hour
QueryKey = tuple[str, str, int, str]  # ... and the query key



@dataclass
class _Hour:
    stats: BucketStats = field(default_factory=BucketStats)
    latencies: list[int] = field(default_factory=list)


@dataclass
class LiveBatch:
    """A batch of records aggregated per hourly bucket, query group and session place."""

    tz: ZoneInfo
    hours: dict[HourKey, _Hour] = field(default_factory=dict)
    query_counts: dict[QueryKey, int] = field(default_factory=dict)
    query_texts: dict[QueryKey, str] = field(default_factory=dict)
    activity: dict[str, set[Place]] = field(default_factory=dict)

    def add(self, records: Iterable[tuple[LogRecord, date]]) -> None:
        """Fold records (each with the day of the file it is stored in)."""
        tz = self.tz
        for record, day in records:
            at = record.created_at
            hour = (at if at.tzinfo is not None else at.replace(tzinfo=UTC)).astimezone(tz).hour
            key = (record.collection_name, day.isoformat(), hour)
            bucket = self.hours.get(key)
            if bucket is None:
                bucket = self.hours[key] = _Hour()
            stats = bucket.stats
            stats.message_count += 1
            us = epoch_us(at)
            stats.first_at_us = min(stats.first_at_us, us)
            stats.last_at_us = max(stats.last_at_us, us)
            if record.message_type == "user":
                stats.total_queries += 1
                self._add_query(key, record.message_content)
            elif record.performance is not None:
                perf = record.performance
                stats.total_tokens += perf.token_count or 0
                if perf.response_time_ms is not None:
                    stats.response_time_sum_ms += perf.response_time_ms
                    stats.response_time_count += 1
                    bucket.latencies.append(perf.response_time_ms)
            if record.status == "error":
                stats.error_count += 1
            if record.is_regeneration:
                stats.regeneration_count += 1
            places = self.activity.get(record.session_id)
            if places is None:
                self.activity[record.session_id] = {key}
            else:
                places.add(key)

    def _add_query(self, key: HourKey, content: str) -> None:
        normalised = query_key(content)
        if not normalised:
            return
        text = display_text(content)
        group = (*key, normalised)
        count = self.query_counts.get(group)
        if count is None:
            self.query_counts[group] = 1
            self.query_texts[group] = text
            return
        self.query_counts[group] = count + 1
        if text < self.query_texts[group]:
            self.query_texts[group] = text

    def hourly_stats(self) -> dict[HourKey, BucketStats]:
        """The additive state of each touched hourly bucket, sketches filled in."""
        out = {}
        for key, bucket in self.hours.items():
            if bucket.latencies:
                bucket.stats.sketch = LatencySketch.of(bucket.latencies)
            out[key] = bucket.stats
        return out


_QUERY_UPSERT = (
    f"INSERT INTO {QUERIES} (collection_name, date, hour, query_key, sample_text, count) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (collection_name, date, hour, query_key) DO UPDATE SET "
    "sample_text = min(chat_statistics_queries.sample_text, excluded.sample_text), "
    "count = chat_statistics_queries.count + excluded.count"
)


def _merge_row(
    conn: sqlite3.Connection,
    table: str,
    key: tuple[object, ...],
    delta: BucketStats,
    touched: set[str],
) -> None:
    row = conn.execute(select_sql(table), key).fetchone()
    if row is None:
        stats, current = BucketStats(), []
    else:
        stats, current = BucketStats.from_row(tuple(row)), decode_top(row[-1])
    stats.merge(delta)
    limit = TOP_PER_DAY if table == DAILY else TOP_PER_HOUR
    top = updated_top(conn, table, key, current, touched, limit)
    conn.execute(insert_sql(table), (*key, *_storable(stats.row_values(top))))


def _storable(values: tuple[object, ...]) -> tuple[object, ...]:
    """Sums saturate at SQLite's 64-bit bounds instead of failing the commit.

    Each value is bounded per line (``chat_statistics.admission``), so only an absurd
    number of absurd values reaches a bound; the row then stays at it.
    """
    low, high = _INT64
    return tuple(
        min(max(v, low), high) if isinstance(v, int) and not isinstance(v, bool) else v for v in values
    )


def _add(target: dict[K, BucketStats], key: K, stats: BucketStats) -> None:
    existing = target.get(key)
    if existing is None:
        existing = target[key] = BucketStats()
    existing.merge(stats)


def apply_batch(conn: sqlite3.Connection, batch: LiveBatch, places: PlaceCache | None = None) -> int:
    """Write a folded batch into every statistics table inside the caller's transaction (on its thread)."""
    if not batch.hours:
        return 0
    uniques = apply_sessions(conn, batch.activity, places)
    conn.executemany(
        _QUERY_UPSERT,
        [(*group, batch.query_texts[group], n) for group, n in batch.query_counts.items()],
    )
    hourly = batch.hourly_stats()
    overall: dict[tuple[str, int], BucketStats] = {}
    daily: dict[tuple[str, str], BucketStats] = {}
    for (collection, day, hour), stats in hourly.items():
        _add(overall, (day, hour), stats)
        _add(daily, (collection, day), stats)
        _add(daily, (ALL_SCOPE, day), stats)
    touched: dict[tuple[str, tuple[object, ...]], set[str]] = {}
    for collection, day, hour, query in batch.query_counts:
        for row in (
            (HOURLY, (collection, day, hour)),
            (OVERALL, (day, hour)),
            (DAILY, (collection, day)),
            (DAILY, (ALL_SCOPE, day)),
        ):
            touched.setdefault(row, set()).add(query)
    # Distinct counts never add up across buckets: each grain gets its own exact increment.
    for key, stats in hourly.items():
        stats.unique_sessions = uniques.hourly.get(key, 0)
        _merge_row(conn, HOURLY, key, stats, touched.get((HOURLY, key), set()))
    for hour_key, stats in overall.items():
        stats.unique_sessions = uniques.overall.get(hour_key, 0)
        _merge_row(conn, OVERALL, hour_key, stats, touched.get((OVERALL, hour_key), set()))
    for day_key, stats in daily.items():
        stats.unique_sessions = uniques.daily.get(day_key, 0)
        _merge_row(conn, DAILY, day_key, stats, touched.get((DAILY, day_key), set()))
    return len(hourly) + len(overall) + len(daily)
