"""The statistics tables, their columns, and the one way a row's values are derived.

Three tables hold the same metric columns at three grains:

- ``chat_statistics``: one row per (collection_name, date, hour) (guide §3.3);
- ``chat_statistics_overall``: one row per (date, hour) over all collections;
- ``chat_statistics_daily``: one row per (scope, date), scope = a collection name,
  or ``''`` for all collections.

Dates and hours are in CHATLOG_TIMEZONE. Sums are exact; ``latency_sketch`` is a
mergeable ``LatencySketch``; ``unique_sessions`` is the exact number of distinct
session_ids of the row. Three helper tables make everything mergeable:

- ``chat_statistics_queries``: exact user-query counts per (collection, date, hour, key);
- ``chat_statistics_sessions``: which (session, collection, date, hour) had events;
- ``chat_statistics_reach``: per (scope, date), sessions counted by the previous
  date they were active in that scope (``''`` = never). The distinct sessions of
  any date range [a, b] are then exactly ``sum(sessions) where date in [a, b] and
  prev_date < a``: a handful of rows per day instead of a distinct count over raw ids.

Live updates and the pandas rebuild both produce rows with ``row_values``, so the
derived columns (average, percentiles, top queries) cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chat_statistics.sketch import LatencySketch
from chat_statistics.table_names import ALL_SCOPE as ALL_SCOPE
from chat_statistics.table_names import DAILY as DAILY
from chat_statistics.table_names import HOURLY as HOURLY
from chat_statistics.table_names import OVERALL as OVERALL
from chat_statistics.table_names import QUERIES as QUERIES
from chat_statistics.table_names import REACH as REACH
from chat_statistics.table_names import SESSIONS as SESSIONS
from chat_statistics.top_queries import TopQuery, encode_top
from shared.statements import replace_row

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def epoch_us(instant: datetime) -> int:
    """Exact microseconds since the epoch (naive means UTC): how rows store first and last event times."""
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return (instant - _EPOCH) // _MICROSECOND



METRIC_COLUMNS = (
    "total_queries",
    "unique_sessions",
    "total_tokens",
    "response_time_sum_ms",
    "response_time_count",
    "error_count",
    "regeneration_count",
    "message_count",
    "first_at_us",
    "last_at_us",
    "avg_response_time_ms",
    "p50_response_time_ms",
    "p95_response_time_ms",
    "p99_response_time_ms",
    "latency_sketch",
    "top_queries",
)
KEY_COLUMNS: dict[str, tuple[str, ...]] = {
    HOURLY: ("collection_name", "date", "hour"),
    OVERALL: ("date", "hour"),
    DAILY: ("scope", "date"),
}
# The columns a merge reads back from an existing row: the additive ones and the sketch.
ADDITIVE_COLUMNS = (*METRIC_COLUMNS[:10], "latency_sketch")
# What a live merge reads back: the additive columns and the current top list.
MERGE_COLUMNS = (*ADDITIVE_COLUMNS, "top_queries")


def insert_sql(table: str) -> str:
    """The insert of one whole row of a metric table, replacing the row with its key."""
    return replace_row(table, KEY_COLUMNS[table] + METRIC_COLUMNS, KEY_COLUMNS[table])


def select_sql(table: str) -> str:
    """The ``MERGE_COLUMNS`` of one row of a metric table, by key."""
    where = " AND ".join(f"{c} = ?" for c in KEY_COLUMNS[table])
    return f"SELECT {', '.join(MERGE_COLUMNS)} FROM {table} WHERE {where}"


@dataclass(slots=True)
class BucketStats:
    """The additive state of one statistics row (any grain)."""

    total_queries: int = 0
    unique_sessions: int = 0
    total_tokens: int = 0
    response_time_sum_ms: int = 0
    response_time_count: int = 0
    error_count: int = 0
    regeneration_count: int = 0
    message_count: int = 0
    first_at_us: int = 2**63 - 1
    last_at_us: int = -(2**63)
    sketch: LatencySketch = field(default_factory=LatencySketch)

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> BucketStats:
        """Read the ``ADDITIVE_COLUMNS`` of an existing row."""
        stats = cls.from_counts(dict(zip(ADDITIVE_COLUMNS[:10], row[:10], strict=True)))
        blob = row[10]
        stats.sketch = LatencySketch.decode(blob if isinstance(blob, bytes) else None)
        return stats

    @classmethod
    def from_counts(cls, counts: Mapping[str, Any]) -> BucketStats:
        """A bucket from additive column values by name (the sketch stays empty)."""
        stats = cls()
        for name, value in counts.items():
            setattr(stats, name, int(value))
        return stats

    def merge(self, other: BucketStats) -> None:
        """Add another bucket's state (unique_sessions are added: callers pass exact deltas)."""
        self.total_queries += other.total_queries
        self.unique_sessions += other.unique_sessions
        self.total_tokens += other.total_tokens
        self.response_time_sum_ms += other.response_time_sum_ms
        self.response_time_count += other.response_time_count
        self.error_count += other.error_count
        self.regeneration_count += other.regeneration_count
        self.message_count += other.message_count
        self.first_at_us = min(self.first_at_us, other.first_at_us)
        self.last_at_us = max(self.last_at_us, other.last_at_us)
        self.sketch.merge(other.sketch)

    def row_values(self, top: list[TopQuery]) -> tuple[object, ...]:
        """The ``METRIC_COLUMNS`` values, derived columns included."""
        avg = self.response_time_sum_ms / self.response_time_count if self.response_time_count else None
        p50, p95, p99 = self.sketch.percentiles()
        return (
            self.total_queries,
            self.unique_sessions,
            self.total_tokens,
            self.response_time_sum_ms,
            self.response_time_count,
            self.error_count,
            self.regeneration_count,
            self.message_count,
            self.first_at_us,
            self.last_at_us,
            avg,
            p50,
            p95,
            p99,
            self.sketch.encode(),
            encode_top(top),
        )

