"""Distinct user questions per (day, collection) with what their answers say: the FAQ's stored base.

One ``faq_questions`` row per (date, collection, question key) holds how often the
question was asked (``count``), its shown text (the smallest display text, as for
top queries), the sum and number of its answers' best retrieval scores, and its best
few stored answers (``candidates``, JSON). The FAQ and the knowledge gaps group these
rows over a range (``insights.faq``); they never read events.

**Pairing rule.** An assistant answer belongs to the latest user message before it, in
file order, of the same session in the same day file; answers before any user message
of their session that day belong to no question. Every such answer with a best score
counts in the question's mean best score (regenerations and errors too: they were
answered from the same retrieval). Only answers that are ``status`` ok and not
regenerations are candidates for "the" answer, and an answer the user had regenerated
(a regeneration followed it for the same question) stops being one. Candidates are
ranked by best score (answers without one last), then log_id, and the best
``MAX_CANDIDATES`` of each row are kept; good feedback, which arrives later, is joined
at read time from ``answer_feedback``.

The pairing state (each session's current question that day) is stored in
``faq_sessions``, so a question and its answer committed in different transactions,
or a rebuild and the live path continuing after it, pair the same way. Folding is a
replay: the same ``QuestionDays.add`` runs over the rebuild's whole day and over the
live path's batch on top of the stored rows it touches, so both end in the same rows.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

import msgspec

from chat_statistics.quality import best_score
from chat_statistics.top_queries import display_text, query_key
from shared.statements import replace_row
from shared.wire import FeedbackRecord, RetrievalInfo

MAX_CANDIDATES = 5
MAX_ANSWER_CHARS = 4000  # an answer is shown in the FAQ, not archived: the day file has all of it

RowKey = tuple[str, str, str]  # date, collection_name, question key
SessionKey = tuple[str, str]  # date, session_id


class Candidate(msgspec.Struct, array_like=True, frozen=True):
    """One stored answer a question may be shown with."""

    log_id: str
    score: float | None
    text: str
    conversation_id: str
    session_id: str


def _rank(candidate: Candidate) -> tuple[float, str]:
    return (-candidate.score if candidate.score is not None else math.inf, candidate.log_id)


@dataclass
class QuestionRow:
    """One (date, collection, question key) row."""

    text: str
    count: int = 0
    scored: int = 0
    score_sum: float = 0.0
    candidates: list[Candidate] = field(default_factory=list)

    def offer(self, candidate: Candidate) -> None:
        """Keep the answer if it ranks among the row's best."""
        self.candidates.append(candidate)
        self.candidates.sort(key=_rank)
        del self.candidates[MAX_CANDIDATES:]

    def withdraw(self, log_id: str) -> None:
        """An answer that was regenerated is no longer one to show."""
        self.candidates = [c for c in self.candidates if c.log_id != log_id]


@dataclass
class SessionQuestion:
    """A session's current question on one day, and its latest answer."""

    collection_name: str
    key: str
    last_answer: str | None = None


class Question(msgspec.Struct, frozen=True):
    """What folding needs of a user message."""

    day: str
    session_id: str
    collection_name: str
    key: str
    text: str


class AnswerEvent(msgspec.Struct, frozen=True):
    """What folding needs of an assistant answer."""

    day: str
    session_id: str
    log_id: str
    conversation_id: str
    score: float | None
    eligible: bool  # status ok and not a regeneration
    regeneration: bool
    text: str


Event = Question | AnswerEvent


class Message(Protocol):
    """What folding reads of a record: a ``LogRecord``, or the rebuild's narrower decode of one."""

    @property
    def log_id(self) -> str: ...
    @property
    def session_id(self) -> str: ...
    @property
    def conversation_id(self) -> str: ...
    @property
    def collection_name(self) -> str: ...
    @property
    def message_type(self) -> str: ...
    @property
    def message_content(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def is_regeneration(self) -> bool: ...
    @property
    def retrieval_info(self) -> RetrievalInfo | None: ...


def event_of(record: Message, day: date) -> Event | None:
    """The fold event of one stored record (None: it plays no part)."""
    if record.message_type == "user":
        key = query_key(record.message_content)
        if not key:
            return None
        return Question(
            day.isoformat(), record.session_id, record.collection_name, key, display_text(record.message_content)
        )
    if record.message_type != "assistant":
        return None
    info = record.retrieval_info
    score = best_score(info.top_scores) if info is not None and info.retrieved_count != 0 else None
    eligible = record.status == "ok" and not record.is_regeneration
    return AnswerEvent(
        day.isoformat(), record.session_id, record.log_id, record.conversation_id, score, eligible,
        record.is_regeneration, record.message_content[:MAX_ANSWER_CHARS] if eligible else "",
    )


@dataclass
class QuestionDays:
    """Question rows and session state, folded in file order (the stored ones first, when live)."""

    rows: dict[RowKey, QuestionRow] = field(default_factory=dict)
    sessions: dict[SessionKey, SessionQuestion] = field(default_factory=dict)

    def add(self, event: Event) -> None:
        """Fold one event."""
        if isinstance(event, Question):
            key = (event.day, event.collection_name, event.key)
            row = self.rows.get(key)
            if row is None:
                row = self.rows[key] = QuestionRow(event.text)
            elif event.text < row.text:
                row.text = event.text
            row.count += 1
            self.sessions[(event.day, event.session_id)] = SessionQuestion(event.collection_name, event.key)
            return
        current = self.sessions.get((event.day, event.session_id))
        if current is None:
            return
        row = self.rows.get((event.day, current.collection_name, current.key))
        if row is None:
            return  # the question's row was erased
        if event.score is not None:
            row.scored += 1
            row.score_sum += event.score
        if event.regeneration and current.last_answer is not None:
            row.withdraw(current.last_answer)
        if event.eligible:
            row.offer(Candidate(event.log_id, event.score, event.text, event.conversation_id, event.session_id))
        current.last_answer = event.log_id

    def add_all(self, events: Iterable[Event]) -> None:
        """Fold events in order."""
        for event in events:
            self.add(event)


_candidates_encoder = msgspec.json.Encoder()
_candidates_decoder = msgspec.json.Decoder(list[Candidate])


def encode_candidates(candidates: Sequence[Candidate]) -> str:
    """The stored form of a row's candidates."""
    return _candidates_encoder.encode(candidates).decode()


def decode_candidates(text: str | bytes | None) -> list[Candidate]:
    """A row's candidates from their stored form."""
    return _candidates_decoder.decode(text) if text else []


def row_params(key: RowKey, row: QuestionRow) -> tuple[object, ...]:
    """A ``faq_questions`` row as inserted."""
    return (*key, row.text, row.count, row.scored, row.score_sum, encode_candidates(row.candidates))


def session_params(key: SessionKey, state: SessionQuestion) -> tuple[object, ...]:
    """A ``faq_sessions`` row as inserted."""
    return (*key, state.collection_name, state.key, state.last_answer)


ROW_UPSERT = replace_row(
    "faq_questions",
    ("date", "collection_name", "question_key", "sample_text", "count", "scored", "score_sum", "candidates"),
    ("date", "collection_name", "question_key"),
)
SESSION_UPSERT = replace_row(
    "faq_sessions", ("date", "session_id", "collection_name", "question_key", "last_answer"), ("date", "session_id")
)
_CHUNK = 500


def _by_prefix(keys: Iterable[tuple[str, ...]]) -> dict[tuple[str, ...], list[str]]:
    """Keys grouped by all but their last part (a batch has few days and collections)."""
    grouped: dict[tuple[str, ...], list[str]] = {}
    for key in sorted(set(keys)):
        grouped.setdefault(key[:-1], []).append(key[-1])
    return grouped


def _load(conn: sqlite3.Connection, events: Sequence[Event]) -> QuestionDays:
    """The stored rows and session state the events touch (primary-key IN lists, per day)."""
    state = QuestionDays()
    for (day,), sessions in _by_prefix((e.day, e.session_id) for e in events).items():
        for start in range(0, len(sessions), _CHUNK):
            chunk = sessions[start : start + _CHUNK]
            marks = ", ".join("?" for _ in chunk)
            for session, collection, key, last in conn.execute(
                "SELECT session_id, collection_name, question_key, last_answer FROM faq_sessions "
                f"WHERE date = ? AND session_id IN ({marks})",
                (day, *chunk),
            ).fetchall():
                state.sessions[(day, session)] = SessionQuestion(collection, key, last)
    row_keys = [(e.day, e.collection_name, e.key) for e in events if isinstance(e, Question)]
    row_keys += [(day, s.collection_name, s.key) for (day, _), s in state.sessions.items()]
    for (day, collection), keys in _by_prefix(row_keys).items():
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            marks = ", ".join("?" for _ in chunk)
            for key, text, count, scored, total, candidates in conn.execute(
                "SELECT question_key, sample_text, count, scored, score_sum, candidates FROM faq_questions "
                f"WHERE date = ? AND collection_name = ? AND question_key IN ({marks})",
                (day, collection, *chunk),
            ).fetchall():
                state.rows[(day, collection, key)] = QuestionRow(
                    text, int(count), int(scored), float(total), decode_candidates(candidates)
                )
    return state


def apply_questions(conn: sqlite3.Connection, events: Sequence[Event]) -> None:
    """Fold events onto the stored rows they touch, inside the caller's transaction."""
    if not events:
        return
    state = _load(conn, events)
    rows_before = {k: (r.count, r.scored, r.score_sum, list(r.candidates), r.text) for k, r in state.rows.items()}
    state.add_all(events)
    changed = [
        row_params(k, r) for k, r in state.rows.items()
        if rows_before.get(k) != (r.count, r.scored, r.score_sum, r.candidates, r.text)
    ]
    conn.executemany(ROW_UPSERT, changed)
    conn.executemany(SESSION_UPSERT, [session_params(k, s) for k, s in state.sessions.items()])


FEEDBACK_UPSERT = replace_row(
    "answer_feedback",
    ("feedback_id", "log_id", "date", "collection_name", "score", "comment", "created_at", "user_hash"),
    ("feedback_id",),
)


def feedback_params(record: FeedbackRecord, day: date) -> tuple[object, ...]:
    """An ``answer_feedback`` row: one per feedback_id, so a replayed line changes nothing."""
    return (
        record.feedback_id, record.log_id, day.isoformat(), record.collection_name, record.score,
        record.comment, record.created_at.isoformat(), record.user_hash,
    )
