"""The admin transcript: a conversation record with each answer's feedback beside it.

Feedback names the answer it is about by ``log_id`` (``POST /v1/feedback``); messages
assembled from events carry theirs, so each gets the feedback stored for it in
``answer_feedback``, oldest first. Messages of posted conversations have no log_id and
no feedback.
"""

from __future__ import annotations

import sqlite3

import msgspec

from shared.wire import ConversationMessage, ConversationRecord

_CHUNK = 500


class AnswerFeedback(msgspec.Struct):
    """One piece of feedback on an answer."""

    score: int
    comment: str | None
    created_at: str
    feedback_id: str


class TranscriptMessage(ConversationMessage, omit_defaults=False):
    """A conversation message with the feedback on it."""

    feedback: list[AnswerFeedback] = msgspec.field(default_factory=list)


class Transcript(ConversationRecord):
    """A conversation record whose messages carry their feedback."""

    messages: list[TranscriptMessage]  # type: ignore[assignment]


def feedback_of(conn: sqlite3.Connection, log_ids: list[str]) -> dict[str, list[AnswerFeedback]]:
    """The stored feedback per answer log_id, oldest first."""
    found: dict[str, list[AnswerFeedback]] = {}
    for start in range(0, len(log_ids), _CHUNK):
        chunk = log_ids[start : start + _CHUNK]
        marks = ", ".join("?" for _ in chunk)
        for log_id, score, comment, created_at, feedback_id in conn.execute(
            "SELECT log_id, score, comment, created_at, feedback_id FROM answer_feedback "
            f"WHERE log_id IN ({marks}) ORDER BY created_at, feedback_id",
            chunk,
        ):
            found.setdefault(log_id, []).append(AnswerFeedback(int(score), comment, created_at, feedback_id))
    return found


def transcript(record: ConversationRecord, feedback: dict[str, list[AnswerFeedback]]) -> Transcript:
    """The record with each message's feedback."""
    messages = [
        TranscriptMessage(
            **msgspec.structs.asdict(m), feedback=feedback.get(m.log_id, []) if m.log_id is not None else []
        )
        for m in record.messages
    ]
    fields = msgspec.structs.asdict(record)
    fields["messages"] = messages
    return Transcript(**fields)


def answer_ids(record: ConversationRecord) -> list[str]:
    """The log_ids of the record's answers."""
    return sorted({m.log_id for m in record.messages if m.log_id is not None and m.role == "assistant"})
