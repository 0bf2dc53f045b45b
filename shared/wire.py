"""The wire types: msgspec schemas of the contract's events and conversation records.

(The SQLite tables are elsewhere: ``shared.db`` and ``chat_statistics.tables``.)

``LogEventIn`` is what a client may post; ``LogRecord`` is what a day file holds
(no raw user id, every id and timestamp filled in). Nested objects reject unknown
fields too, so a typo is an error instead of silently lost data; ``metadata`` is
the one free-form object.

Every number is bounded so that whatever is accepted can be stored, summed and read
back: integers fit SQLite's int64 and JSON consumers' doubles (``MAX_SAFE_INTEGER``),
the per-message measures that statistics add up stay exact in int64 sums over
billions of messages (``MAX_MEASURE``), and msgspec already refuses a float that is
not finite (``1e400`` is "Number out of range"). ``metadata`` nests at most
``MAX_METADATA_DEPTH`` levels, so no reader or encoder recurses deeply on it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec

MAX_SAFE_INTEGER = 2**53 - 1
MAX_MEASURE = 2**31 - 1
# Each level doubles the type msgspec builds (list and object alternatives): 8 is cheap.
MAX_METADATA_DEPTH = 8

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
NonNegative = Annotated[int, msgspec.Meta(ge=0, le=MAX_SAFE_INTEGER)]
# Timings and token counts: summed per hour and per range in int64 (numpy and SQLite).
Measure = Annotated[int, msgspec.Meta(ge=0, le=MAX_MEASURE)]
SafeInt = Annotated[int, msgspec.Meta(ge=-MAX_SAFE_INTEGER, le=MAX_SAFE_INTEGER)]


def _metadata_value(depth: int) -> Any:
    """A JSON value holding at most ``depth`` more levels of arrays and objects.

    The depth is in the type, so msgspec enforces it while decoding (in C, no extra
    pass over valid events).
    """
    scalar: Any = SafeInt | float | str | bool | None
    if depth == 0:
        return scalar
    inner = _metadata_value(depth - 1)
    return scalar | list[inner] | dict[str, inner]  # type: ignore[valid-type]


if TYPE_CHECKING:
    Metadata = dict[str, Any]
else:
    Metadata = dict[str, _metadata_value(MAX_METADATA_DEPTH - 1)]

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

    response_time_ms: Measure | None = None
    token_count: Measure | None = None
    retrieval_time_ms: Measure | None = None


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
    metadata: Metadata | None = None
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


FeedbackScore = Literal[1, -1]


class FeedbackIn(_Strict):
    """One piece of feedback as posted to ``POST /v1/feedback``: a user's verdict on an answer."""

    log_id: Id
    collection_name: Id
    score: FeedbackScore
    feedback_id: Id | None = None
    session_id: Id | None = None
    conversation_id: Id | None = None
    comment: Annotated[str, msgspec.Meta(max_length=10_000)] | None = None
    user_id: str | None = None
    user_hash: Annotated[str, msgspec.Meta(max_length=128)] | None = None
    created_at: datetime | None = None


class FeedbackRecord(msgspec.Struct, omit_defaults=True):
    """One line of ``feedback/YYYY-MM-DD.jsonl``: stored feedback (no raw user id, comment redacted)."""

    feedback_id: str
    log_id: str
    collection_name: str
    score: int
    created_at: datetime
    session_id: str | None = None
    conversation_id: str | None = None
    comment: str | None = None
    user_hash: str | None = None


class ConversationMessage(msgspec.Struct, omit_defaults=True):
    """One message of a conversation record (guide §3.2)."""

    role: MessageType
    content: str
    timestamp: datetime
    retrieved_docs: list[RetrievedDoc] = msgspec.field(default_factory=list)
    error: bool = False
    is_regeneration: bool = False
    log_id: str | None = None  # the event it was assembled from (feedback names answers by it)


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
    metadata: Metadata | None = None
