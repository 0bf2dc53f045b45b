"""Answers per day by model and reasoning level, and error types per day.

The usage and quality rows are per collection only; the suggestions also ask which
*model* regenerates or answers slowly and which *reasoning level* is regenerated,
and which error types are the frequent ones. Each daily row of
``answer_statistics`` is keyed by (date, collection, llm_model, reasoning_level)
(``''`` when the event names none) and holds additive counts and a mergeable
latency sketch; ``error_statistics`` counts events with status ``error`` by
``error.type`` (``''`` when none). Both are filled live (``ingestor.derived.answers``)
in the applier's transaction and rebuilt by ``rebuild-stats``
(``chat_statistics.rebuild.answers``) with the same folds, so they cannot drift apart.

Model names and error types are free text: they are cut to ``MAX_LABEL`` characters
so that one absurd value cannot make an absurd key.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from chat_statistics.sketch import LatencySketch
from shared.statements import replace_row
from shared.wire import ErrorInfo, Performance

MAX_LABEL = 128

AnswerKey = tuple[str, str, str, str]  # date, collection_name, llm_model, reasoning_level
ErrorKey = tuple[str, str, str]  # date, collection_name, error_type


def label(value: str | None) -> str:
    """The stored form of a model name, reasoning level or error type ('' = none given)."""
    return (value or "")[:MAX_LABEL]


@dataclass
class AnswerRow:
    """One daily row's additive state."""

    answers: int = 0
    errors: int = 0
    regenerations: int = 0
    response_time_count: int = 0
    response_time_sum_ms: int = 0
    latencies: list[int] = field(default_factory=list)
    sketch: LatencySketch | None = None  # of ``latencies`` and, after a merge, the stored row's

    def merged_sketch(self) -> LatencySketch:
        """The sketch of every response time this row holds."""
        sketch = LatencySketch.of(self.latencies) if self.latencies else LatencySketch()
        if self.sketch is not None:
            sketch.merge(self.sketch)
        return sketch


class Event(Protocol):
    """What folding reads of an event: a ``LogRecord``, or the rebuild's narrower decode of one."""

    @property
    def collection_name(self) -> str: ...
    @property
    def message_type(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def is_regeneration(self) -> bool: ...
    @property
    def llm_model(self) -> str | None: ...
    @property
    def reasoning_level(self) -> str | None: ...
    @property
    def performance(self) -> Performance | None: ...
    @property
    def error(self) -> ErrorInfo | None: ...


@dataclass
class AnswerBatch:
    """Events folded per daily row (answers) and per error type (every event with status ``error``)."""

    answers: dict[AnswerKey, AnswerRow] = field(default_factory=dict)
    errors: dict[ErrorKey, int] = field(default_factory=dict)

    def add(self, events: Iterable[tuple[Event, date]]) -> None:
        """Fold events, each with the day of the file it is stored in."""
        answers, errors = self.answers, self.errors
        days: dict[date, str] = {}  # a batch holds one day or two: isoformat once each
        for event, day in events:
            iso = days.get(day)
            if iso is None:
                iso = days[day] = day.isoformat()
            failed = event.status == "error"
            if failed:
                info = event.error
                key = (iso, event.collection_name, label(info.type if info is not None else None))
                errors[key] = errors.get(key, 0) + 1
            if event.message_type != "assistant":
                continue
            model, level = event.llm_model, event.reasoning_level
            answer_key = (iso, event.collection_name, model[:MAX_LABEL] if model else "", level or "")
            row = answers.get(answer_key)
            if row is None:
                row = answers[answer_key] = AnswerRow()
            row.answers += 1
            if failed:
                row.errors += 1
            if event.is_regeneration:
                row.regenerations += 1
            perf = event.performance
            if perf is not None:
                ms = perf.response_time_ms
                if ms is not None:
                    row.response_time_count += 1
                    row.response_time_sum_ms += ms
                    row.latencies.append(ms)

    def answer_rows(self) -> list[tuple[object, ...]]:
        """The ``answer_statistics`` rows of this batch, in column order."""
        return [
            (*key, r.answers, r.errors, r.regenerations, r.response_time_count, r.response_time_sum_ms,
             r.merged_sketch().encode())
            for key, r in self.answers.items()
        ]

    def error_rows(self) -> list[tuple[object, ...]]:
        """The ``error_statistics`` rows of this batch, in column order."""
        return [(*key, n) for key, n in self.errors.items()]


_SELECT = """
SELECT answers, errors, regenerations, response_time_count, response_time_sum_ms, latency_sketch
FROM answer_statistics WHERE date = ? AND collection_name = ? AND llm_model = ? AND reasoning_level = ?
"""
ANSWER_INSERT = replace_row(
    "answer_statistics",
    ("date", "collection_name", "llm_model", "reasoning_level", "answers", "errors", "regenerations",
     "response_time_count", "response_time_sum_ms", "latency_sketch"),
    ("date", "collection_name", "llm_model", "reasoning_level"),
)
_ERROR_UPSERT = """
INSERT INTO error_statistics (date, collection_name, error_type, count) VALUES (?, ?, ?, ?)
ON CONFLICT (date, collection_name, error_type) DO UPDATE SET count = error_statistics.count + excluded.count
"""


def apply_answers(conn: sqlite3.Connection, batch: AnswerBatch) -> None:
    """Add a batch to the stored rows inside the caller's transaction.

    Sketches cannot be added in SQL: each touched row is read, merged and written back
    (a commit touches today's row of a few collections and models).
    """
    for key, delta in batch.answers.items():
        stored = conn.execute(_SELECT, key).fetchone()
        if stored is not None:
            delta.answers += int(stored[0])
            delta.errors += int(stored[1])
            delta.regenerations += int(stored[2])
            delta.response_time_count += int(stored[3])
            delta.response_time_sum_ms += int(stored[4])
            delta.sketch = LatencySketch.decode(stored[5])
    conn.executemany(ANSWER_INSERT, batch.answer_rows())
    conn.executemany(_ERROR_UPSERT, batch.error_rows())
