"""A mergeable latency sketch: counts of integer milliseconds in log-spaced buckets.

Bucket ``i`` holds the integers in ``[EDGES[i], EDGES[i + 1])``. Below 100 ms every
bucket is one integer wide (exact); above, each bucket spans at most a factor of
``(1 + ALPHA) / (1 - ALPHA)``, so the value reported for a bucket is within ``ALPHA``
(0.5%) of every value in it. Merging is adding counts, so the sketch of any range of
buckets (hours, days, collections) is the sum of their sketches, and percentiles of
any range come out within 0.5% of the exact nearest-rank percentile without reading
raw logs.

The edges are integers computed once with plain float multiplication and
``floor``, and values are placed with ``numpy.searchsorted`` on integers, so the
live path and the pandas rebuild put every value in the same bucket bit for bit.
"""

from __future__ import annotations

import math
import struct
import sys
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

ALPHA = 0.005
_GROWTH = (1 + ALPHA) / (1 - ALPHA)
# Larger values (over 24 days of latency) share the last bucket.
_MAX_VALUE = 2**31


def _edges() -> npt.NDArray[np.int64]:
    edges = [0, 1]
    low = 1
    while low < _MAX_VALUE:
        low = math.floor(low * _GROWTH) + 1
        edges.append(low)
    return np.asarray(edges, dtype=np.int64)


EDGES = _edges()
BUCKETS = len(EDGES) - 1
_EDGE_LIST: list[int] = EDGES.tolist()
_HEADER = struct.Struct("<BI")  # count width in bytes (4 or 8), index of the first stored bucket


def _representatives() -> npt.NDArray[np.float64]:
    low = EDGES[:-1].astype(np.float64)
    top = EDGES[1:].astype(np.float64) - 1
    # The value whose relative distance to both ends of [low, top] is the same.
    with np.errstate(invalid="ignore", divide="ignore"):
        mid = np.where(low + top > 0, 2 * low * top / (low + top), 0.0)
    return np.asarray(mid, dtype=np.float64)


_VALUES = _representatives()


def bucket_of(values: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """The bucket index of each non-negative integer value."""
    array = np.asarray(values, dtype=np.int64)
    index = np.searchsorted(EDGES, array, side="right") - 1
    return np.asarray(np.clip(index, 0, BUCKETS - 1), dtype=np.int64)


def encode_values(values: Sequence[int]) -> bytes | None:
    """``LatencySketch.of(values).encode()``, byte for byte, without numpy.

    For the live path's many small sketches (a minute's or an hour's answers of one
    commit), where numpy's per-call cost over every bucket was most of the time.
    ``bisect_right`` on the same integer edges is ``searchsorted(side="right")``.
    """
    if not values:
        return None
    last_bucket = BUCKETS - 1
    indexes = [min(max(bisect_right(_EDGE_LIST, v) - 1, 0), last_bucket) for v in values]
    first = min(indexes)
    counts = array("I", bytes(4 * (max(indexes) - first + 1)))  # fewer than 2**32 values: width 4
    for index in indexes:
        counts[index - first] += 1
    if sys.byteorder != "little":  # pragma: no cover - the encoding is little-endian
        counts.byteswap()
    return _HEADER.pack(4, first) + counts.tobytes()


class LatencySketch:
    """Dense bucket counts of response times; add, merge, encode and ask quantiles."""

    __slots__ = ("counts",)

    def __init__(self, counts: npt.NDArray[np.int64] | None = None) -> None:
        self.counts: npt.NDArray[np.int64] = (
            counts if counts is not None else np.zeros(BUCKETS, dtype=np.int64)
        )

    @classmethod
    def of(cls, values: Sequence[int] | npt.NDArray[np.int64]) -> LatencySketch:
        """The sketch of some response times (ms)."""
        return cls(np.bincount(bucket_of(values), minlength=BUCKETS).astype(np.int64))

    @classmethod
    def decode(cls, blob: bytes | None) -> LatencySketch:
        """Read a sketch written by ``encode``; None or empty is the empty sketch."""
        sketch = cls()
        if blob:
            sketch.add_encoded(blob)
        return sketch

    @classmethod
    def merged(cls, blobs: Iterable[bytes | None]) -> LatencySketch:
        """The sum of many encoded sketches."""
        sketch = cls()
        for blob in blobs:
            if blob:
                sketch.add_encoded(blob)
        return sketch

    @property
    def count(self) -> int:
        """How many values the sketch holds."""
        return int(self.counts.sum())

    def add_encoded(self, blob: bytes) -> None:
        """Add an encoded sketch's counts to this one."""
        width, first = _HEADER.unpack_from(blob)
        dtype = "<u4" if width == 4 else "<i8"
        stored = np.frombuffer(blob, dtype=dtype, offset=_HEADER.size)
        self.counts[first : first + len(stored)] += stored

    def merge(self, other: LatencySketch) -> None:
        """Add another sketch's counts to this one."""
        self.counts += other.counts

    def encode(self) -> bytes | None:
        """A compact, canonical encoding (None when empty): equal sketches give equal bytes."""
        nonzero = np.flatnonzero(self.counts)
        if not len(nonzero):
            return None
        first, last = int(nonzero[0]), int(nonzero[-1])
        stored = self.counts[first : last + 1]
        width = 4 if int(stored.max()) < 2**32 else 8
        dtype = "<u4" if width == 4 else "<i8"
        return _HEADER.pack(width, first) + stored.astype(dtype).tobytes()

    def quantile(self, q: float) -> float | None:
        """The nearest-rank ``q`` quantile (the value at rank ceil(q * n)), None when empty."""
        total = self.count
        if total == 0:
            return None
        rank = max(1, math.ceil(q * total))
        index = int(np.searchsorted(np.cumsum(self.counts), rank, side="left"))
        return round(float(_VALUES[index]), 2)

    def percentiles(self) -> tuple[float | None, float | None, float | None]:
        """p50, p95 and p99 (``quantile`` of each, from one cumulative sum)."""
        cumulative = np.cumsum(self.counts)
        total = int(cumulative[-1])
        if total == 0:
            return None, None, None
        ranks = [max(1, math.ceil(q * total)) for q in (0.50, 0.95, 0.99)]
        indexes = np.searchsorted(cumulative, ranks, side="left").tolist()
        p50, p95, p99 = (round(float(_VALUES[i]), 2) for i in indexes)
        return p50, p95, p99
