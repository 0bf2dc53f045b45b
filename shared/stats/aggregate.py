"""One day's statistics rows from its event columns (the rebuild's core), vectorised.

Everything is grouped on integer codes with pandas and numpy: hourly groups are
``collection * 24 + hour`` and every coarser grain is summed from them. Rows are built
with ``BucketStats.row_values`` like the live path's, and top lists are ranked in the
same total order (count, then key), so a rebuilt day equals the live one row for row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from shared.stats.frames import DayColumns, IntArray
from shared.stats.queries import (
    QUERY_ROWS_PER_HOUR,
    TOP_PER_DAY,
    TOP_PER_HOUR,
    TopQuery,
    display_text,
    query_key,
)
from shared.stats.schema import ALL_SCOPE, BucketStats
from shared.stats.sketch import BUCKETS, LatencySketch, bucket_of

Row = tuple[object, ...]
HOURS = 24


@dataclass
class DayRows:
    """Every statistics row of one day, ready for ``executemany``."""

    hourly: list[Row] = field(default_factory=list)
    overall: list[Row] = field(default_factory=list)
    daily: list[Row] = field(default_factory=list)
    queries: list[Row] = field(default_factory=list)
    sessions: list[Row] = field(default_factory=list)
    events: int = 0


def _sums(cols: DayColumns, group: IntArray) -> pd.DataFrame:
    """Additive columns per hourly group."""
    frame = pd.DataFrame(
        {
            "group": group,
            "total_queries": cols.is_user,
            "total_tokens": cols.tokens,
            "response_time_sum_ms": cols.response_time_ms,
            "response_time_count": cols.has_response_time,
            "error_count": cols.is_error,
            "regeneration_count": cols.is_regeneration,
            "at": cols.at_us,
        }
    )
    return frame.groupby("group", sort=True).agg(
        total_queries=("total_queries", "sum"),
        total_tokens=("total_tokens", "sum"),
        response_time_sum_ms=("response_time_sum_ms", "sum"),
        response_time_count=("response_time_count", "sum"),
        error_count=("error_count", "sum"),
        regeneration_count=("regeneration_count", "sum"),
        message_count=("at", "size"),
        first_at_us=("at", "min"),
        last_at_us=("at", "max"),
    )


def _distinct(keys: IntArray, sessions: IntArray, size: int, groups: int) -> tuple[IntArray, IntArray]:
    """Distinct sessions per key (a bincount) and the distinct (key, session) pairs."""
    pairs = np.unique(keys * size + sessions)
    return np.bincount(pairs // size, minlength=groups), pairs


def _sketches(cols: DayColumns, group: IntArray) -> dict[int, LatencySketch]:
    """The latency sketch of every hourly group that has response times."""
    timed = cols.has_response_time
    cells, counts = np.unique(
        group[timed] * BUCKETS + bucket_of(cols.response_time_ms[timed]), return_counts=True
    )
    owners = cells // BUCKETS
    out: dict[int, LatencySketch] = {}
    if not len(owners):
        return out
    starts = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]])
    for start, end in zip(starts, [*starts[1:], len(owners)], strict=True):
        sketch = LatencySketch()
        sketch.counts[cells[start:end] % BUCKETS] = counts[start:end]
        out[int(owners[start])] = sketch
    return out


@dataclass
class _Queries:
    """Exact query counts per hourly group and key code, with key and shown-text tables."""

    group: IntArray
    key: IntArray
    count: IntArray
    text: IntArray  # index into shown (the smallest shown text of the group)
    keys: list[str]
    key_rank: IntArray  # position of each key in sorted order: the tie-break
    shown: list[str]


def _queries(cols: DayColumns, group: IntArray) -> _Queries:
    keys_of = [query_key(t) for t in cols.texts]
    shown_of = [display_text(t) for t in cols.texts]
    key_code, keys = pd.factorize(np.asarray(keys_of, dtype=object))
    shown = sorted(set(shown_of))
    shown_rank = {text: i for i, text in enumerate(shown)}
    text_rank = np.asarray([shown_rank[t] for t in shown_of], dtype=np.int64)
    users = np.flatnonzero(cols.text >= 0)
    raw = cols.text[users]
    frame = pd.DataFrame(
        {
            "group": group[users],
            "key": key_code[raw] if len(raw) else raw,
            "text": text_rank[raw] if len(raw) else raw,
        }
    )
    empty = [i for i, k in enumerate(keys) if k == ""]
    if empty:
        frame = frame[frame["key"] != empty[0]]
    counted = frame.groupby(["group", "key"], sort=True).agg(count=("text", "size"), text=("text", "min"))
    order = np.argsort(np.asarray(keys, dtype=object)) if len(keys) else np.zeros(0, np.int64)
    key_rank = np.empty(len(keys), dtype=np.int64)
    key_rank[order] = np.arange(len(keys))
    index = counted.index
    return _Queries(
        group=np.asarray(index.get_level_values("group"), dtype=np.int64),
        key=np.asarray(index.get_level_values("key"), dtype=np.int64),
        count=counted["count"].to_numpy(np.int64),
        text=counted["text"].to_numpy(np.int64),
        keys=[str(k) for k in keys],
        key_rank=key_rank,
        shown=shown,
    )


def _ranks(owner: IntArray, order: IntArray) -> IntArray:
    """Each row's position within its owner, given an order that sorts by owner first."""
    rank = np.empty(len(order), dtype=np.int64)
    if len(order):
        sorted_owner = owner[order]
        starts = np.r_[0, np.flatnonzero(np.diff(sorted_owner)) + 1]
        lengths = np.diff(np.r_[starts, len(order)])
        rank[order] = np.arange(len(order)) - np.repeat(starts, lengths)
    return rank


def _top(q: _Queries, owner: IntArray, limit: int) -> dict[int, list[TopQuery]]:
    """Top ``limit`` keys per owner (a coarser group), counts summed and smallest text kept."""
    frame = pd.DataFrame({"owner": owner, "key": q.key, "count": q.count, "text": q.text})
    summed = frame.groupby(["owner", "key"], sort=False).agg(count=("count", "sum"), text=("text", "min"))
    owners = np.asarray(summed.index.get_level_values("owner"), dtype=np.int64)
    keys = np.asarray(summed.index.get_level_values("key"), dtype=np.int64)
    counts = summed["count"].to_numpy(np.int64)
    texts = summed["text"].to_numpy(np.int64)
    order = np.lexsort((q.key_rank[keys], -counts, owners))
    chosen = order[_ranks(owners, order)[order] < limit]
    out: dict[int, list[TopQuery]] = {}
    for o, k, n, t in zip(
        owners[chosen].tolist(),
        keys[chosen].tolist(),
        counts[chosen].tolist(),
        texts[chosen].tolist(),
        strict=True,
    ):
        out.setdefault(o, []).append(TopQuery(q.shown[t], n, q.keys[k]))
    return out


def _stats(
    sums: pd.DataFrame, by: IntArray, unique: IntArray, sketches: dict[int, LatencySketch]
) -> dict[int, BucketStats]:
    """BucketStats per coarser group ``by`` (one value per hourly group) with exact uniques."""
    rolled = sums.groupby(by, sort=True).agg(
        {
            "total_queries": "sum",
            "total_tokens": "sum",
            "response_time_sum_ms": "sum",
            "response_time_count": "sum",
            "error_count": "sum",
            "regeneration_count": "sum",
            "message_count": "sum",
            "first_at_us": "min",
            "last_at_us": "max",
        }
    )
    out: dict[int, BucketStats] = {}
    for owner, values in zip(rolled.index.tolist(), rolled.to_dict("records"), strict=True):
        stats = BucketStats.from_counts({**values, "unique_sessions": int(unique[owner])})
        out[int(owner)] = stats
    for group, sketch in sketches.items():
        out[int(by[np.searchsorted(sums.index.to_numpy(), group)])].sketch.merge(sketch)
    return out


def aggregate_day(cols: DayColumns, day: date, finalise: bool) -> DayRows:
    """Every statistics row of one day; ``finalise`` bounds the kept query rows."""
    rows = DayRows(events=len(cols))
    if not len(cols):
        return rows
    iso = day.isoformat()
    names = cols.collections
    sessions = len(cols.sessions)
    group = cols.collection * HOURS + cols.hour
    sums = _sums(cols, group)
    groups = sums.index.to_numpy(np.int64)
    sketches = _sketches(cols, group)
    hourly_unique, places = _distinct(group, cols.session, sessions, len(names) * HOURS)
    overall_unique, _ = _distinct(cols.hour, cols.session, sessions, HOURS)
    daily_unique, _ = _distinct(cols.collection, cols.session, sessions, len(names))
    everyone = np.asarray([len(np.unique(cols.session))], dtype=np.int64)
    hourly = _stats(sums, groups, hourly_unique, sketches)
    overall = _stats(sums, groups % HOURS, overall_unique, sketches)
    daily = _stats(sums, groups // HOURS, daily_unique, sketches)
    total = _stats(sums, np.zeros(len(groups), np.int64), everyone, sketches)[0]

    q = _queries(cols, group)
    top_hourly = _top(q, q.group, TOP_PER_HOUR)
    top_overall = _top(q, q.group % HOURS, TOP_PER_HOUR)
    top_daily = _top(q, q.group // HOURS, TOP_PER_DAY)
    top_all = _top(q, np.zeros(len(q.group), np.int64), TOP_PER_DAY).get(0, [])
    for g, stats in hourly.items():
        rows.hourly.append((names[g // HOURS], iso, g % HOURS, *stats.row_values(top_hourly.get(g, []))))
    for h, stats in overall.items():
        rows.overall.append((iso, h, *stats.row_values(top_overall.get(h, []))))
    for c, stats in daily.items():
        rows.daily.append((names[c], iso, *stats.row_values(top_daily.get(c, []))))
    rows.daily.append((ALL_SCOPE, iso, *total.row_values(top_all)))

    keep = np.ones(len(q.group), dtype=bool)
    if finalise and len(q.group):
        keep = _ranks(q.group, np.lexsort((q.key_rank[q.key], -q.count, q.group))) < QUERY_ROWS_PER_HOUR
        day_top = {(c, e.key) for c, entries in top_daily.items() for e in entries}
        everyone_top = {e.key for e in top_all}
        for i in np.flatnonzero(~keep).tolist():
            key = q.keys[q.key[i]]
            keep[i] = key in everyone_top or (int(q.group[i]) // HOURS, key) in day_top
    rows.queries = [
        (names[g // HOURS], iso, g % HOURS, q.keys[k], q.shown[t], n)
        for g, k, t, n in zip(
            q.group[keep].tolist(),
            q.key[keep].tolist(),
            q.text[keep].tolist(),
            q.count[keep].tolist(),
            strict=True,
        )
    ]
    place_group, place_session = np.divmod(places, sessions)
    rows.sessions = [
        (cols.sessions[s], names[g // HOURS], iso, g % HOURS)
        for g, s in zip(place_group.tolist(), place_session.tolist(), strict=True)
    ]
    return rows
