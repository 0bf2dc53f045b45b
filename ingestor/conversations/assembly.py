"""Assembling conversations from log events, and judging them when they close.

Events are folded in by conversation_id after they are fsynced. A conversation idle
for CHATLOG_CONVERSATION_IDLE_MINUTES (and every open one at shutdown) is closed:
the sampling rules decide whether it is kept, and a kept one becomes a guide §3.2
record. A conversation that continues after it was closed starts again from its
last record, so the newer record holds the whole conversation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgspec

from ingestor.conversations.places import pack_place, resolve
from ingestor.conversations.sampling import ConversationFacts, ConversationSampler, SamplingDecision
from ingestor.conversations.summary import Summarizer, capped_summary
from ingestor.records import EncodedRecord
from shared.layout import StorageLayout
from shared.wire import (
    ConversationMessage,
    ConversationMetadata,
    ConversationRecord,
    LogRecord,
    RetrievedDoc,
)

_message_encoder = msgspec.json.Encoder()


def message_of(record: LogRecord) -> ConversationMessage:
    """The conversation message of one stored event."""
    return ConversationMessage(
        role=record.message_type,
        content=record.message_content,
        timestamp=record.created_at,
        retrieved_docs=list(record.retrieved_docs or ()),
        error=record.status == "error",
        is_regeneration=record.is_regeneration,
        log_id=record.log_id,
    )


@dataclass
class OpenConversation:
    """A conversation still receiving messages.

    Each message is held as the place of its event's line in the day files when it
    came from one (``places``), or encoded; what the sampling rules need is kept as
    running facts. ``source`` is the storage the places point into.
    """

    conversation_id: str
    collection_name: str
    user_hash: str | None
    held: list[bytes] = field(default_factory=list)
    user_turns: int = 0
    has_error: bool = False
    has_regeneration: bool = False
    min_score: float | None = None
    # The newest message time: idleness is judged on event time, which survives restarts.
    last_activity: datetime = field(default_factory=lambda: datetime.min.replace(tzinfo=UTC))
    source: StorageLayout | None = None

    def __len__(self) -> int:
        return len(self.held)

    @property
    def messages(self) -> list[ConversationMessage]:
        """The messages in arrival order (lines are read back from the day files)."""
        return resolve(self.source, self.conversation_id, self.held, message_of)

    def _note(self, role: str, error: bool, regeneration: bool) -> None:
        self.user_turns += role == "user"
        self.has_error = self.has_error or error
        self.has_regeneration = self.has_regeneration or regeneration

    def append(self, message: ConversationMessage) -> None:
        """Add one message, held encoded, and its facts."""
        self.held.append(_message_encoder.encode(message))
        self._note(message.role, message.error, message.is_regeneration)

    def replace_messages(self, messages: Iterable[ConversationMessage]) -> None:
        """Hold exactly these messages (continuing from a stored record)."""
        self.held, self.user_turns, self.has_error, self.has_regeneration = [], 0, False, False
        for message in messages:
            self.append(message)

    def add(self, record: LogRecord, place: bytes | None = None) -> None:
        """Append one event as a message: by its line's place when given, else encoded."""
        self.user_hash = record.user_hash or self.user_hash
        if place is not None and self.source is not None:
            self.held.append(place)
            self._note(record.message_type, record.status == "error", record.is_regeneration)
        else:
            self.append(message_of(record))
        self.note_scores(_scores(record))
        self.last_activity = max(self.last_activity, record.created_at)

    def note_scores(self, scores: Iterable[float]) -> None:
        """Remember the lowest retrieval score seen."""
        for score in scores:
            if self.min_score is None or score < self.min_score:
                self.min_score = score

    def facts(self) -> ConversationFacts:
        """What the sampling rules look at."""
        return ConversationFacts(
            total_turns=self.user_turns,
            has_error=self.has_error,
            has_regeneration=self.has_regeneration,
            min_retrieval_score=self.min_score,
        )


def _scores(record: LogRecord) -> list[float]:
    scores: list[float] = []
    if record.retrieval_info is not None and record.retrieval_info.top_scores:
        scores.extend(record.retrieval_info.top_scores)
    scores.extend(doc_scores(record.retrieved_docs or ()))
    return scores


def doc_scores(docs: Sequence[RetrievedDoc]) -> list[float]:
    """The scores of retrieved documents that have one."""
    return [d.score for d in docs if d.score is not None]


def judge(
    conversation: OpenConversation, sampler: ConversationSampler, summarizer: Summarizer
) -> tuple[SamplingDecision, ConversationRecord]:
    """The sampling decision and the record a closed conversation would be stored as."""
    facts = conversation.facts()
    decision = sampler.decide(conversation.conversation_id, facts)
    messages = sorted(conversation.messages, key=lambda m: m.timestamp)
    record = ConversationRecord(
        conversation_id=conversation.conversation_id,
        collection_name=conversation.collection_name,
        user_hash=conversation.user_hash,
        messages=messages,
        metadata=ConversationMetadata(
            total_turns=facts.total_turns,
            is_sampled=decision.is_sampled,
            retention_priority=decision.retention_priority,
            summary=capped_summary(summarizer.summarize([(m.role, m.content) for m in messages])),
        ),
        started_at=messages[0].timestamp if messages else datetime.now(UTC),
        last_message_at=messages[-1].timestamp if messages else datetime.now(UTC),
        closed_at=datetime.now(UTC),
    )
    return decision, record


class ConversationAssembler:
    """The open conversations of a running ingestor, keyed by conversation_id."""

    def __init__(self, source: StorageLayout | None = None) -> None:
        self.open: dict[str, OpenConversation] = {}
        self.messages = 0  # held in memory across all open conversations
        self._source = source

    def __len__(self) -> int:
        return len(self.open)

    def add(self, records: Iterable[LogRecord]) -> None:
        """Fold stored events into their open conversations, opening new ones."""
        for record in records:
            self._conversation(record).add(record)
            self.messages += 1

    def add_read(self, items: Iterable[EncodedRecord]) -> None:
        """Fold events read from the day files, holding their lines' places where known."""
        for item in items:
            place = pack_place(item.day, item.number, item.offset, item.length) if item.offset >= 0 else None
            self._conversation(item.record).add(item.record, place)
            self.messages += 1

    def _conversation(self, record: LogRecord) -> OpenConversation:
        conversation = self.open.get(record.conversation_id)
        if conversation is None:
            conversation = OpenConversation(
                record.conversation_id, record.collection_name, record.user_hash, source=self._source
            )
            self.open[record.conversation_id] = conversation
        return conversation

    def take_idle(self, before: datetime) -> list[OpenConversation]:
        """Remove and return every conversation with no activity since ``before``."""
        return self._remove([c for c in self.open.values() if c.last_activity < before])

    def _remove(self, conversations: list[OpenConversation]) -> list[OpenConversation]:
        for conversation in conversations:
            del self.open[conversation.conversation_id]
            self.messages -= len(conversation)
        return conversations

    def take_oldest_until(self, max_open: int, max_messages: int) -> list[OpenConversation]:
        """Remove the least recently active conversations until both bounds hold."""
        taken: list[OpenConversation] = []
        open_count, messages = len(self.open), self.messages
        for conversation in sorted(self.open.values(), key=lambda c: c.last_activity):
            if open_count <= max_open and messages <= max_messages:
                break
            taken.append(conversation)
            open_count -= 1
            messages -= len(conversation)
        return self._remove(taken)

    def take_all(self) -> list[OpenConversation]:
        """Remove and return every open conversation (shutdown)."""
        return self._remove(list(self.open.values()))
