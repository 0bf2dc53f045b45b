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

from ingestor.conversations.sampling import ConversationFacts, ConversationSampler, SamplingDecision
from ingestor.conversations.summary import Summarizer
from shared.schemas import (
    ConversationMessage,
    ConversationMetadata,
    ConversationRecord,
    LogRecord,
    RetrievedDoc,
)

_message_encoder = msgspec.json.Encoder()
_message_decoder = msgspec.json.Decoder(ConversationMessage)


@dataclass
class OpenConversation:
    """A conversation still receiving messages.

    Messages are held encoded (compact JSON, about a third of the objects' memory):
    thousands of conversations stay open for CHATLOG_CONVERSATION_IDLE_MINUTES, and
    what the sampling rules need is kept as running facts instead.
    """

    conversation_id: str
    collection_name: str
    user_hash: str | None
    encoded: list[bytes] = field(default_factory=list)
    user_turns: int = 0
    has_error: bool = False
    has_regeneration: bool = False
    min_score: float | None = None
    # The newest message time: idleness is judged on event time, which survives restarts.
    last_activity: datetime = field(default_factory=lambda: datetime.min.replace(tzinfo=UTC))

    def __len__(self) -> int:
        return len(self.encoded)

    @property
    def messages(self) -> list[ConversationMessage]:
        """The messages, decoded, in arrival order."""
        return [_message_decoder.decode(m) for m in self.encoded]

    def append(self, message: ConversationMessage) -> None:
        """Add one message and its facts."""
        self.encoded.append(_message_encoder.encode(message))
        self.user_turns += message.role == "user"
        self.has_error = self.has_error or message.error
        self.has_regeneration = self.has_regeneration or message.is_regeneration

    def replace_messages(self, messages: Iterable[ConversationMessage]) -> None:
        """Hold exactly these messages (continuing from a stored record)."""
        self.encoded, self.user_turns, self.has_error, self.has_regeneration = [], 0, False, False
        for message in messages:
            self.append(message)

    def add(self, record: LogRecord) -> None:
        """Append one event as a message."""
        self.user_hash = record.user_hash or self.user_hash
        self.append(
            ConversationMessage(
                role=record.message_type,
                content=record.message_content,
                timestamp=record.created_at,
                retrieved_docs=list(record.retrieved_docs or ()),
                error=record.status == "error",
                is_regeneration=record.is_regeneration,
            )
        )
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
            summary=summarizer.summarize([(m.role, m.content) for m in messages]),
        ),
        started_at=messages[0].timestamp if messages else datetime.now(UTC),
        last_message_at=messages[-1].timestamp if messages else datetime.now(UTC),
        closed_at=datetime.now(UTC),
    )
    return decision, record


class ConversationAssembler:
    """The open conversations of a running ingestor, keyed by conversation_id."""

    def __init__(self) -> None:
        self.open: dict[str, OpenConversation] = {}
        self.messages = 0  # held in memory across all open conversations

    def __len__(self) -> int:
        return len(self.open)

    def add(self, records: Iterable[LogRecord]) -> None:
        """Fold stored events into their open conversations, opening new ones."""
        for record in records:
            conversation = self.open.get(record.conversation_id)
            if conversation is None:
                conversation = OpenConversation(
                    record.conversation_id, record.collection_name, record.user_hash
                )
                self.open[record.conversation_id] = conversation
            conversation.add(record)
            self.messages += 1

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
