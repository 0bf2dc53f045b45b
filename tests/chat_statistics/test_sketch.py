"""The mergeable pieces: latency sketch accuracy, query grouping, and exact distinct sessions over ranges."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest

from chat_statistics.sessions import unique_deltas
from chat_statistics.sketch import ALPHA, EDGES, LatencySketch, encode_values
from chat_statistics.top_queries import TopQuery, decode_top, display_text, encode_top, merge_top, query_key


@pytest.mark.parametrize("size", [1, 7, 100, 5000, 100_000])
def test_percentiles_within_half_a_percent(size: int) -> None:
    """p50/p95/p99 of a sketch are within 0.5% of the exact nearest-rank percentiles."""
    rng = np.random.default_rng(size)
    values = np.concatenate([rng.lognormal(7, 1.0, size).astype(np.int64), [0]])
    sketch = LatencySketch.of(values)
    for q, got in zip((0.5, 0.95, 0.99), sketch.percentiles(), strict=True):
        exact = float(np.quantile(values, q, method="inverted_cdf"))
        assert got is not None
        assert abs(got - exact) <= ALPHA * exact + 0.005, (q, got, exact)


def test_small_values_are_exact_and_edges_are_integers() -> None:
    """Below 100 ms every bucket is one integer wide, so small latencies come back exactly."""
    assert EDGES.dtype == np.int64 and list(EDGES[:101]) == list(range(101))
    sketch = LatencySketch.of([3, 3, 7, 42, 99])
    assert sketch.percentiles() == (7.0, 99.0, 99.0)
    assert LatencySketch().percentiles() == (None, None, None)


def test_merging_equals_sketching_the_union() -> None:
    """The merge of encoded sketches equals the sketch of all values; equal sketches encode equally."""
    rng = random.Random(3)
    parts = [[rng.randrange(0, 60_000) for _ in range(rng.randrange(0, 300))] for _ in range(20)]
    merged = LatencySketch.merged(LatencySketch.of(p).encode() for p in parts)
    union = LatencySketch.of([v for p in parts for v in p])
    assert merged.encode() == union.encode()
    assert LatencySketch.decode(union.encode()).percentiles() == union.percentiles()
    assert LatencySketch().encode() is None
    huge = LatencySketch.of([10**12])  # clamped into the last bucket, never an error
    assert huge.count == 1


def test_query_grouping_follows_the_contract() -> None:
    """Queries group after NFKC, case folding and whitespace collapsing; shown text keeps its case."""
    assert query_key("  How do I\tRESET  my password? ") == "how do i reset my password?"
    assert query_key("ＶＰＮ 접속") == query_key("vpn 접속") == "vpn 접속"
    assert query_key("Straße") == query_key("STRASSE")
    assert display_text("  How do I\tRESET  my password? ") == "How do I RESET my password?"
    assert query_key("   ") == ""


def test_top_lists_merge_by_key_and_keep_the_smallest_text() -> None:
    """Merged top lists sum counts by key, keep the smallest shown text and rank by count then key."""
    day1 = [TopQuery("vpn broken", 3, "vpn broken"), TopQuery("Leave", 2, "leave")]
    day2 = [TopQuery("VPN broken", 1, "vpn broken"), TopQuery("b", 5, "b"), TopQuery("a", 5, "a")]
    merged = merge_top([day1, day2], 3)
    assert merged == [TopQuery("a", 5, "a"), TopQuery("b", 5, "b"), TopQuery("VPN broken", 4, "vpn broken")]
    assert decode_top(encode_top(merged)) == merged


class _Store:
    """The activity and reach tables kept in memory with ``unique_deltas``, as the live path keeps them."""

    def __init__(self) -> None:
        self.places: dict[str, set[tuple[str, str, int]]] = {}
        self.reach: Counter[tuple[str, str, str]] = Counter()

    def add(self, batch: list[tuple[str, str, str, int]]) -> None:
        activity: dict[str, set[tuple[str, str, int]]] = {}
        for session, collection, day, hour in batch:
            activity.setdefault(session, set()).add((collection, day, hour))
        deltas = unique_deltas({s: set(p) for s, p in self.places.items()}, activity)
        for session, collection, day, hour in deltas.new_rows:
            self.places.setdefault(session, set()).add((collection, day, hour))
        self.reach.update(deltas.reach)
        self.reach = Counter({k: n for k, n in self.reach.items() if n})

    def distinct(self, scope: str, first: str, last: str) -> int:
        return sum(
            n for (s, d, prev), n in self.reach.items() if s == scope and first <= d <= last and prev < first
        )


def test_distinct_sessions_over_any_range_are_exact() -> None:
    """Reach rows built from batches in any order give the exact distinct sessions of every date range."""
    rng = random.Random(8)
    days = [f"2026-01-{d:02d}" for d in range(1, 11)]
    activity = [
        (f"s{rng.randrange(40)}", rng.choice(("a", "b")), rng.choice(days), rng.randrange(24))
        for _ in range(600)
    ]
    store = _Store()
    for start in range(0, len(activity), 37):  # out-of-order days, late events re-linking later ones
        store.add(activity[start : start + 37])
    for i, first in enumerate(days):
        for last in days[i:]:
            for scope in ("", "a", "b"):
                exact = {s for s, c, d, _ in activity if first <= d <= last and scope in ("", c)}
                assert store.distinct(scope, first, last) == len(exact), (scope, first, last)


@pytest.mark.parametrize("seed", range(5))
def test_encoding_values_without_numpy_gives_the_same_bytes(seed: int) -> None:
    """``encode_values`` is ``LatencySketch.of(values).encode()`` byte for byte, edges and extremes included."""
    rng = random.Random(seed)
    edges = [int(e) for e in EDGES[:: 97]]
    values = [rng.choice([*edges, 0, 1, 99, 100, 2**31 - 1, 2**31, 2**40, rng.randrange(0, 90_000)])
              for _ in range(rng.randrange(1, 400))]
    values += [e - 1 for e in edges if e > 0][: rng.randrange(0, 10)]
    assert encode_values(values) == LatencySketch.of(values).encode()
    assert encode_values([]) is None
