"""Per-collection running totals for Prometheus (``deploy/prometheus/alerts.yml`` computes the rules from them).

The derived-state process counts what it folds (``CollectionTotals``) and reports the
totals with its status; the ingestor adds each report's growth to its own totals
(``TotalsCollector``), so the counters only grow, across restarts of that process too
(a restarted process counts from zero; lines it re-reads after a crash may count twice,
which a rate over minutes does not notice). The latency histogram's buckets are in ms.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS_MS = (250, 500, 1000, 2000, 5000, 10000, 30000, 60000)
# queries, answers, errors, scored, low_scores, latency_count, latency_sum_ms, then each bucket (cumulative)
FIELDS = 7 + len(LATENCY_BUCKETS_MS)
MAX_COLLECTIONS = 500  # beyond this many collections, new ones go uncounted (label cardinality)


class CollectionTotals:
    """Counts per collection since this process started."""

    def __init__(self) -> None:
        self.totals: dict[str, list[int]] = {}

    def row(self, collection: str) -> list[int] | None:
        """The totals of one collection (None once MAX_COLLECTIONS are counted and it is not one)."""
        row = self.totals.get(collection)
        if row is None and len(self.totals) < MAX_COLLECTIONS:
            row = self.totals[collection] = [0] * FIELDS
        return row

    @staticmethod
    def add_latency(row: list[int], ms: int) -> None:
        """Count one response time."""
        row[5] += 1
        row[6] += ms
        for i, edge in enumerate(LATENCY_BUCKETS_MS):
            if ms <= edge:
                row[7 + i] += 1


class TotalsCollector(Collector):
    """The ingestor's side: totals that grow by each report's growth."""

    def __init__(self) -> None:
        self._totals: dict[str, list[int]] = {}
        self._seen: dict[str, list[int]] = {}  # the last report, to take its growth

    def observe(self, report: dict[str, list[int]]) -> None:
        """Add what grew since the previous report (a smaller value: the process restarted)."""
        for collection, values in report.items():
            if len(values) != FIELDS:
                continue
            seen = self._seen.get(collection, [0] * FIELDS)
            restarted = any(v < s for v, s in zip(values, seen, strict=True))
            total = self._totals.setdefault(collection, [0] * FIELDS)
            for i, value in enumerate(values):
                total[i] += value if restarted else value - seen[i]
            self._seen[collection] = list(values)
        for collection in set(self._seen) - set(report):  # a new process has not seen it yet
            self._seen[collection] = [0] * FIELDS

    def collect(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        """The counters and the latency histogram, by collection."""
        names = (
            ("chatlog_queries", "User questions, by collection"),
            ("chatlog_answers", "Assistant answers, by collection"),
            ("chatlog_answer_errors", "Assistant answers with status error, by collection"),
            ("chatlog_answers_scored", "Answers with retrieval scores, by collection"),
            ("chatlog_answers_low_score", "Answers whose best retrieval score is under CHATLOG_LOW_SCORE_THRESHOLD"),
        )
        for index, (name, help_text) in enumerate(names):
            family = CounterMetricFamily(name, help_text, labels=["collection"])
            for collection, values in sorted(self._totals.items()):
                family.add_metric([collection], values[index])
            yield family
        histogram = HistogramMetricFamily(
            "chatlog_response_time_seconds", "Answer response times (performance.response_time_ms), by collection",
            labels=["collection"],
        )
        for collection, values in sorted(self._totals.items()):
            buckets = [(str(edge / 1000), float(values[7 + i])) for i, edge in enumerate(LATENCY_BUCKETS_MS)]
            buckets.append(("+Inf", float(values[5])))
            histogram.add_metric([collection], buckets, values[6] / 1000)
        yield histogram
