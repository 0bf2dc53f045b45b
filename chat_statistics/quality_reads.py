"""Reading retrieval quality and feedback for a date range: sums of the daily rows.

The range is whole file days, so the daily rows (``retrieval_statistics_daily``, the
hourly rows summed in the same transactions) answer it exactly: 30 days are 30 rows
per collection instead of 720. Their counts are summed in SQL and their histograms
(packed int32) concatenated and summed by numpy in one pass. ``table`` reads the
hourly rows instead, which must answer the same (the tests and the benchmark compare).
"""

from __future__ import annotations

import sqlite3
from datetime import date

import msgspec
import numpy as np

from chat_statistics.quality import BINS, DAILY_TABLE, HISTOGRAMS, HOURLY_TABLE, QualityRow

PERCENTILES = (("p10", 0.10), ("p50", 0.50), ("p90", 0.90))


class HistogramBucket(msgspec.Struct, rename={"start": "from"}):
    start: float
    to: float
    count: int


class RerankSide(msgspec.Struct):
    answers: int = 0
    low_score_rate: float = 0.0


class Reranking(msgspec.Struct):
    used: RerankSide = msgspec.field(default_factory=RerankSide)
    not_used: RerankSide = msgspec.field(default_factory=RerankSide)


class RegenerationRates(msgspec.Struct):
    low_score: float = 0.0
    other: float = 0.0


class FeedbackCountsOut(msgspec.Struct):
    positive: int = 0
    negative: int = 0


class CollectionQuality(msgspec.Struct):
    collection_name: str
    answers: int = 0
    low_score_rate: float = 0.0
    no_result_rate: float = 0.0
    p50_best_score: float | None = None
    regeneration_rate: float = 0.0
    error_rate: float = 0.0
    negative_feedback_rate: float = 0.0
    answers_with_retrieval: int = 0  # the denominator of low_score_rate and no_result_rate


class Variant(msgspec.Struct):
    text: str
    count: int


class KnowledgeGap(msgspec.Struct):
    question: str
    count: int
    avg_best_score: float
    collection_name: str | None
    variants: list[Variant]


class Quality(msgspec.Struct):
    """The quality answer (CONTRACT.md "Additions")."""

    collection_name: str | None
    date_from: str
    date_to: str
    low_score_threshold: float
    answers: int = 0
    answers_with_retrieval: int = 0
    low_score_rate: float = 0.0
    no_result_rate: float = 0.0
    best_score_percentiles: dict[str, float | None] = msgspec.field(
        default_factory=lambda: {name: None for name, _ in PERCENTILES}
    )
    best_score_histogram: list[HistogramBucket] = msgspec.field(default_factory=lambda: histogram_buckets(None))
    regeneration_rate: RegenerationRates = msgspec.field(default_factory=RegenerationRates)
    reranking: Reranking = msgspec.field(default_factory=Reranking)
    feedback: FeedbackCountsOut = msgspec.field(default_factory=FeedbackCountsOut)
    by_collection: list[CollectionQuality] = msgspec.field(default_factory=list)
    # Filled by the handler from ``insights.faq.query_knowledge_gaps``: the question groups
    # need Kiwi and a per-process cache, which this module (also used by the rebuild) does not.
    knowledge_gaps: list[KnowledgeGap] = msgspec.field(default_factory=list)
    # True while the range's question groups are still being computed in the background:
    # ``knowledge_gaps`` is then empty for now, not because there are none.
    knowledge_gaps_pending: bool = False


def histogram_buckets(bins: np.ndarray | None) -> list[HistogramBucket]:
    """The 10 buckets of 0.1 (the last includes 1.0) from 100 bins of 0.01."""
    tens = np.zeros(10, dtype=np.int64) if bins is None else bins.reshape(10, BINS // 10).sum(axis=1)
    return [HistogramBucket(round(i / 10, 1), round((i + 1) / 10, 1), int(tens[i])) for i in range(10)]


def percentile(bins: np.ndarray, q: float) -> float | None:
    """The q-quantile of the binned scores: the middle of the bin holding the nearest-rank value."""
    total = int(bins.sum())
    if not total:
        return None
    rank = max(1, int(np.ceil(q * total)))
    i = int(np.searchsorted(np.cumsum(bins), rank))
    return round((i + 0.5) / BINS, 3)


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


_ROWS = """
SELECT collection_name, sum(answers), sum(errors), sum(regenerations), sum(with_retrieval),
       sum(no_result), sum(reranked)
FROM {table} WHERE date BETWEEN ? AND ? {where} GROUP BY collection_name
"""
_HISTOGRAMS = """
SELECT collection_name, histograms FROM {table} WHERE date BETWEEN ? AND ? {where}
"""
_FEEDBACK = """
SELECT collection_name, sum(positive), sum(negative) FROM feedback_statistics
WHERE date BETWEEN ? AND ? {where} GROUP BY collection_name
"""


def _totals(row: tuple[object, ...], blobs: list[bytes]) -> QualityRow:
    out = QualityRow()
    counts = [int(v) if isinstance(v, int) else 0 for v in row[1:7]]
    out.answers, out.errors, out.regenerations, out.with_retrieval, out.no_result, out.reranked = counts
    if blobs:
        stacked = np.frombuffer(b"".join(blobs), dtype="<i4").reshape(-1, HISTOGRAMS, BINS)
        out.histograms = stacked.sum(axis=0, dtype=np.int64)
    return out


def feedback_totals(
    conn: sqlite3.Connection, collection: str | None, first: date, last: date
) -> dict[str, tuple[int, int]]:
    """Positive and negative feedback per collection in ``first..last``."""
    where, args = ("AND collection_name = ?", (collection,)) if collection is not None else ("", ())
    rows = conn.execute(_FEEDBACK.format(where=where), (first.isoformat(), last.isoformat(), *args))
    return {str(name): (int(pos), int(neg)) for name, pos, neg in rows}


def feedback_rows(
    conn: sqlite3.Connection, collection: str | None, period: str, first: str, last: str
) -> dict[tuple[str, int], tuple[int, int]]:
    """Positive and negative feedback per bucket (date, hour; hour -1 for a whole day), as ``query_rows``."""
    hour = "-1" if period == "daily" else "hour"
    where, args = ("AND collection_name = ?", (collection,)) if collection is not None else ("", ())
    sql = (f"SELECT date, {hour}, sum(positive), sum(negative) FROM feedback_statistics"
           f" WHERE date BETWEEN ? AND ? {where} GROUP BY 1, 2")
    return {(str(d), int(h)): (int(p), int(n)) for d, h, p, n in conn.execute(sql, (first, last, *args))}


def query_quality(
    conn: sqlite3.Connection, collection: str | None, first: date, last: date, threshold: float,
    table: str = DAILY_TABLE,
) -> Quality:
    """Retrieval quality of ``first..last`` for one collection or (None) all of them."""
    answer = Quality(collection, first.isoformat(), last.isoformat(), threshold)
    where, args = ("AND collection_name = ?", (collection,)) if collection is not None else ("", ())
    span = (first.isoformat(), last.isoformat(), *args)
    blobs: dict[str, list[bytes]] = {}
    try:
        found = conn.execute(_HISTOGRAMS.format(table=table, where=where), span).fetchall()
    except sqlite3.OperationalError as exc:
        if table != DAILY_TABLE or "no such table" not in str(exc):
            raise
        # A database no ingestor of this version has migrated yet: its hourly rows answer the same.
        table = HOURLY_TABLE
        found = conn.execute(_HISTOGRAMS.format(table=table, where=where), span).fetchall()
    for name, blob in found:
        blobs.setdefault(str(name), []).append(bytes(blob))
    rows = conn.execute(_ROWS.format(table=table, where=where), span).fetchall()
    per = {str(row[0]): _totals(row, blobs.get(str(row[0]), [])) for row in rows}
    feedback = feedback_totals(conn, collection, first, last)
    low_bins = round(threshold * BINS)
    total = QualityRow()
    for name in sorted(set(per) | set(feedback)):
        t = per.get(name) or QualityRow()
        total.add(t)
        pos, neg = feedback.get(name, (0, 0))
        answer.feedback.positive += pos
        answer.feedback.negative += neg
        answer.by_collection.append(CollectionQuality(
            collection_name=name,
            answers=t.answers,
            low_score_rate=_rate(int(t.histograms[0, :low_bins].sum()), t.with_retrieval),
            no_result_rate=_rate(t.no_result, t.with_retrieval),
            p50_best_score=percentile(t.histograms[0], 0.5),
            regeneration_rate=_rate(t.regenerations, t.answers),
            error_rate=_rate(t.errors, t.answers),
            negative_feedback_rate=_rate(neg, pos + neg),
            answers_with_retrieval=t.with_retrieval,
        ))
    scored, regenerated, reranked = total.histograms
    low = int(scored[:low_bins].sum())
    answer.answers = total.answers
    answer.answers_with_retrieval = total.with_retrieval
    answer.low_score_rate = _rate(low, total.with_retrieval)
    answer.no_result_rate = _rate(total.no_result, total.with_retrieval)
    answer.best_score_percentiles = {name: percentile(scored, q) for name, q in PERCENTILES}
    answer.best_score_histogram = histogram_buckets(scored)
    answer.regeneration_rate = RegenerationRates(
        low_score=_rate(int(regenerated[:low_bins].sum()), low),
        other=_rate(int(regenerated[low_bins:].sum()), int(scored.sum()) - low),
    )
    # Reranking sides share the denominator of the rates: answers with retrieval_info.
    rerank_low = int(reranked[:low_bins].sum())
    answer.reranking = Reranking(
        used=RerankSide(total.reranked, _rate(rerank_low, total.reranked)),
        not_used=RerankSide(
            total.with_retrieval - total.reranked,
            _rate(low - rerank_low, total.with_retrieval - total.reranked),
        ),
    )
    return answer
