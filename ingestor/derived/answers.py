"""Live answer statistics by model and reasoning level, and error types: kept current in the applier's transaction.

``AnswerObserver`` is a ``LineObserver`` like ``QualityObserver``: it folds each batch
of records as it is read and writes the pending rows in the commit that advances the
day files' offsets, so every stored event is counted once, whatever crashes in between.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from chat_statistics.answers import AnswerBatch, apply_answers
from ingestor.records import EncodedRecord


class AnswerObserver:
    """The ``LineObserver`` that keeps ``answer_statistics`` and ``error_statistics`` current."""

    def __init__(self) -> None:
        self._batch = AnswerBatch()

    def fold(self, records: Sequence[EncodedRecord]) -> None:
        """Aggregate records into the pending daily rows."""
        self._batch.add((item.record, item.day) for item in records)

    def take(self) -> AnswerBatch:
        """The pending rows, replaced by empty ones."""
        batch, self._batch = self._batch, AnswerBatch()
        return batch

    def apply(self, conn: sqlite3.Connection, pending: object) -> None:
        """Add taken rows to the stored ones inside the caller's transaction."""
        assert isinstance(pending, AnswerBatch)
        apply_answers(conn, pending)
