"""The FAQ's base kept live: the ``LineObserver`` that folds questions and their answers.

Each written batch becomes a list of small fold events (``chat_statistics.questions``:
no records are held); at commit they are replayed onto the stored rows and session
state they touch, in the applier's transaction, so they commit with the line offsets
that say they were applied: every stored question is counted once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from chat_statistics.questions import Event, apply_questions, event_of
from ingestor.records import EncodedRecord


class QuestionObserver:
    """The ``LineObserver`` that keeps ``faq_questions`` and ``faq_sessions`` current."""

    def __init__(self) -> None:
        self._events: list[Event] = []

    def fold(self, records: Sequence[EncodedRecord]) -> None:
        """Turn records into fold events, in file order."""
        events = self._events
        for item in records:
            event = event_of(item.record, item.day)
            if event is not None:
                events.append(event)

    def take(self) -> list[Event]:
        """The pending events, replaced by none."""
        events, self._events = self._events, []
        return events

    def apply(self, conn: sqlite3.Connection, pending: object) -> None:
        """Replay taken events onto the stored rows inside the caller's transaction."""
        assert isinstance(pending, list)
        apply_questions(conn, pending)
