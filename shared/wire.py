"""The wire types: msgspec schemas of the contract's events and conversation records.

(The SQLite tables are elsewhere: ``shared.db`` and ``chat_statistics.tables``.)

``LogEventIn`` is what a client may post; ``LogRecord`` is what a day file holds
(no raw user id, every id and timestamp filled in). Nested objects reject unknown
fields too, so a typo is an error instead of silently lost data; ``metadata`` is
the one free-form object.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
NonNegative = Annotated[int, msgspec.Meta(ge=0)]
MessageType = Literal["user", "assistant"]
ReasoningLevel = Literal["low", "medium", "high"]
Status = Literal["ok", "error"]
Endpoint = Literal["chat", "stream", "regenerate"]
RetentionPriority = Literal["high", "medium", "low"]


class _Strict(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    pass


class LlmParams(_Strict):
    """Generation parameters of the answering model."""

    temperature: float | None = None
    max_tokens: NonNegative | None = None
    top_p: float | None = None


class RetrievalInfo(_Strict):
    """What the retriever did for this message."""

    query: str | None = None
    retrieved_count: NonNegative | None = None
    reranking_used: bool | None = None
    top_scores: list[float] | None = None


class RetrievedDoc(_Strict):
    """One retrieved document as shown with an answer."""

    doc_id: str | None = None
    title: str | None = None
    score: float | None = None
    source: str | None = None


class Performance(_Strict):
    """Timings and token use of one message."""

    response_time_ms: NonNegative | None = None
    token_count: NonNegative | None = None
    retrieval_time_ms: NonNegative | None = None


class ErrorInfo(_Strict):
    """What went wrong when status is ``error``."""

    type: str | None = None
    message: str | None = None


class LogEventIn(_Strict):
    """One log event as posted to ``POST /v1/logs``."""

    session_id: Id
    collection_name: Id
    message_type: MessageType
    message_content: str
    log_id: Id | None = None
    conversation_id: Id | None = None
    user_id: str | None = None
    user_hash: Annotated[str, msgspec.Meta(max_length=128)] | None = None
    reasoning_level: ReasoningLevel | None = None
    llm_model: str | None = None
    llm_params: LlmParams | None = None
    retrieval_info: RetrievalInfo | None = None
    retrieved_docs: list[RetrievedDoc] | None = None
    performance: Performance | None = None
    status: Status = "ok"
    error: ErrorInfo | None = None
    is_regeneration: bool = False
    endpoint: Endpoint | None = None
    metadata: dict[str, Any] | None = None
    created_at: datetime | None = None


class LogRecord(msgspec.Struct, omit_defaults=True):
    """One line of ``data/YYYY-MM-DD.jsonl``: a stored, pseudonymous event.

    Unknown fields are ignored on read so that older readers accept newer files.
    """

    log_id: str
    session_id: str
    conversation_id: str
    collection_name: str
    message_type: MessageType
    message_content: str
    created_at: datetime
    user_hash: str | None = None
    reasoning_level: ReasoningLevel | None = None
    llm_model: str | None = None
    llm_params: LlmParams | None = None
    retrieval_info: RetrievalInfo | None = None
    retrieved_docs: list[RetrievedDoc] | None = None
    performance: Performance | None = None
    status: Status = "ok"
    error: ErrorInfo | None = None
    is_regeneration: bool = False
    endpoint: Endpoint | None = None
    metadata: dict[str, Any] | None = None


class ConversationMessage(msgspec.Struct, omit_defaults=True):
    """One message of a conversation record (guide §3.2)."""

    role: MessageType
    content: str
    timestamp: datetime
    retrieved_docs: list[RetrievedDoc] = msgspec.field(default_factory=list)
    error: bool = False
    is_regeneration: bool = False


class ConversationMetadata(msgspec.Struct):
    """Metadata of a conversation record (guide §3.2)."""

    total_turns: int
    is_sampled: bool
    retention_priority: RetentionPriority
    summary: str


class ConversationRecord(msgspec.Struct):
    """One line of ``conversations/YYYY-MM-DD.jsonl``; readers take the newest per id."""

    conversation_id: str
    collection_name: str
    user_hash: str | None
    messages: list[ConversationMessage]
    metadata: ConversationMetadata
    started_at: datetime
    last_message_at: datetime
    closed_at: datetime


class ConversationMessageIn(_Strict):
    """One message of a conversation posted to ``POST /v1/conversations``."""

    role: MessageType
    content: str
    timestamp: datetime | None = None
    retrieved_docs: list[RetrievedDoc] | None = None
    error: bool | ErrorInfo | None = None
    is_regeneration: bool = False
    retrieval_scores: list[float] | None = None


class ConversationIn(_Strict):
    """A whole conversation posted by a backend that keeps its own history."""

    conversation_id: Id
    collection_name: Id
    messages: list[ConversationMessageIn]
    user_id: str | None = None
    user_hash: Annotated[str, msgspec.Meta(max_length=128)] | None = None
    metadata: dict[str, Any] | None = None
