"""The ingestor's per-collection counters only grow, across restarts of the derived-state process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from ingestor.alerts.totals import FIELDS, TotalsCollector


def _row(answers: int) -> list[int]:
    row = [0] * FIELDS
    row[1] = answers
    return row


def test_counters_add_each_reports_growth_and_survive_a_restart() -> None:
    collector = TotalsCollector()
    registry = CollectorRegistry()
    registry.register(collector)
    collector.observe({"hr": _row(5)})
    collector.observe({"hr": _row(8)})
    collector.observe({})  # a new process, nothing folded yet
    collector.observe({"hr": _row(2)})
    collector.observe({"hr": _row(3), "it": _row(1)})
    text = generate_latest(registry).decode()
    assert 'chatlog_answers_total{collection="hr"} 11.0' in text
    assert 'chatlog_answers_total{collection="it"} 1.0' in text
    collector.observe({"hr": [1, 2]})  # a malformed report is ignored
    assert 'chatlog_answers_total{collection="hr"} 11.0' in generate_latest(registry).decode()
