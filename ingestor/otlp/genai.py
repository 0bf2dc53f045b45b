"""OpenTelemetry GenAI semantic conventions to chatlog events.

Read from a span (or from log records folded into their span, see ``decode.log_spans``):

- the user's message and the answer: ``gen_ai.input.messages`` / ``gen_ai.output.messages``
  (current conventions: role and parts), else ``gen_ai.prompt.N.*`` / ``gen_ai.completion.N.*``
  (OpenLLMetry and the older conventions), else the events ``gen_ai.user.message`` /
  ``gen_ai.choice`` (older conventions, as span events or log records), else OpenLIT's
  ``gen_ai.content.prompt`` / ``gen_ai.content.completion`` events. The user message is the
  last one with role ``user``: the earlier ones are the conversation's history, already stored;
- model, parameters, token usage, ``gen_ai.conversation.id``, ``session.id``, ``user.id``,
  the collection, and the span's status (ERROR with ``error.type``).

A retrieval span (``gen_ai.operation.name`` ``retrieval``/``retrieve``, OpenInference's
``openinference.span.kind`` ``RETRIEVER``, or a span carrying retrieval documents) gives the
``retrieval_info`` and ``retrieved_docs`` of the trace's answer. Ids are derived from the
span id, so a retried export maps to the same log_ids and is stored once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from ingestor.otlp.decode import SpanView

CHAT_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "completion"})
RETRIEVAL_OPERATIONS = frozenset({"retrieval", "retrieve", "retriever"})
# Operations that are GenAI but not a question and its answer (tools, embeddings, agents).
OTHER_OPERATIONS = frozenset({"embeddings", "execute_tool", "create_agent", "invoke_agent"})
_USER_EVENTS = ("gen_ai.user.message", "gen_ai.content.prompt")
_ANSWER_EVENTS = ("gen_ai.choice", "gen_ai.assistant.message", "gen_ai.content.completion")
_MAX_INDEX = 1000
_MAX_DEPTH = 8
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Retrieval:
    """What a retrieval span says: the trace's ``retrieval_info`` and documents."""

    trace_id: str
    end_ns: int
    query: str | None
    docs: tuple[dict[str, Any], ...]
    duration_ms: int | None
    reranking_used: bool | None = None

    def info(self) -> dict[str, Any]:
        """The event's ``retrieval_info``: scores best first."""
        scores = sorted((d["score"] for d in self.docs if isinstance(d.get("score"), float)), reverse=True)
        info: dict[str, Any] = {"retrieved_count": len(self.docs), "top_scores": scores}
        if self.query is not None:
            info["query"] = self.query
        if self.reranking_used is not None:
            info["reranking_used"] = self.reranking_used
        return info

    def to_json(self) -> dict[str, Any]:
        """The durable form (the pending-retrieval file)."""
        return {"trace_id": self.trace_id, "end_ns": self.end_ns, "query": self.query, "docs": list(self.docs),
                "duration_ms": self.duration_ms, "reranking_used": self.reranking_used}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Retrieval:
        """Back from ``to_json``."""
        return cls(data["trace_id"], data["end_ns"], data["query"], tuple(data["docs"]),
                   data["duration_ms"], data["reranking_used"])


def _get(span: SpanView, key: str) -> Any:
    """A span attribute, else the resource's."""
    value = span.attributes.get(key)
    return span.resource.get(key) if value is None else value


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return str(value)
    return None


def _json(value: Any) -> Any:
    """Attributes that hold structures are often JSON text (the SDKs allow only primitives)."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return msgspec.json.decode(value)
        except (msgspec.DecodeError, RecursionError):
            return value
    return value


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None


def _count(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None and number >= 0 and number == int(number) else None


def _content(message: Any, depth: int = 0) -> str | None:
    """The text of a message in any of the conventions' shapes (looked for a few levels deep)."""
    message = _json(message)
    if isinstance(message, str):
        return message
    if depth > _MAX_DEPTH:
        return None
    if isinstance(message, list):
        texts = [text for text in (_content(part, depth + 1) for part in message) if text]
        return "\n".join(texts) if texts else None
    if not isinstance(message, dict):
        return None
    if "parts" in message:
        parts = _json(message["parts"])
        if isinstance(parts, list):
            found = [_text(p.get("content")) for p in parts if isinstance(p, dict) and p.get("type", "text") == "text"]
            joined = "\n".join(t for t in found if t)
            return joined or None
    for key in ("content", "text", "message"):
        if key in message:
            return _content(message[key], depth + 1)
    return None


def _messages(value: Any) -> list[tuple[str, str]]:
    """(role, text) of a ``gen_ai.input.messages``/``gen_ai.output.messages`` value."""
    value = _json(value)
    if not isinstance(value, list):
        return []
    out = []
    for message in value:
        message = _json(message)
        if isinstance(message, dict):
            text = _content(message)
            if text is not None:
                out.append((str(message.get("role") or ""), text))
    return out


def _indexed(span: SpanView, prefix: str) -> list[tuple[str, str]]:
    """(role, content) of ``<prefix>.N.role`` / ``<prefix>.N.content``, N = 0, 1, ..."""
    out = []
    for number in range(_MAX_INDEX):
        content = _get(span, f"{prefix}.{number}.content")
        role = _get(span, f"{prefix}.{number}.role")
        if content is None and role is None:
            break
        text = _content(content)
        if text is not None:
            out.append((str(role or ""), text))
    return out


def _from_events(span: SpanView, names: tuple[str, ...]) -> list[str]:
    texts = []
    for event in span.events:
        if event.name in names:
            source = event.body if event.body is not None else event.attributes
            if isinstance(source, dict):
                for key in ("content", "message", "gen_ai.prompt", "gen_ai.completion", "message.content"):
                    if key in source:
                        source = source[key]
                        break
                else:
                    source = None
            text = _content(source)
            if text is not None:
                texts.append(text)
    return texts


def question_and_answer(span: SpanView) -> tuple[str | None, str | None]:
    """The user's (last) message and the answer, from whichever convention the span follows."""
    inputs = _messages(_get(span, "gen_ai.input.messages")) or _indexed(span, "gen_ai.prompt")
    outputs = _messages(_get(span, "gen_ai.output.messages")) or _indexed(span, "gen_ai.completion")
    users = [text for role, text in inputs if role in ("user", "")]
    question = users[-1] if users else None
    answers = [text for role, text in outputs if role in ("assistant", "")]
    answer = "\n".join(answers) if answers else None
    if question is None:
        from_events = _from_events(span, _USER_EVENTS)
        question = from_events[-1] if from_events else _text(_get(span, "gen_ai.prompt"))
    if answer is None:
        from_events = _from_events(span, _ANSWER_EVENTS)
        answer = "\n".join(from_events) if from_events else _text(_get(span, "gen_ai.completion"))
    return question, answer


def operation(span: SpanView) -> str:
    """``gen_ai.operation.name`` (or what older instrumentations name it), lower case."""
    for key in ("gen_ai.operation.name", "llm.request.type", "openinference.span.kind", "traceloop.span.kind"):
        value = _get(span, key) if key != "openinference.span.kind" else span.attributes.get(key)
        if isinstance(value, str) and value:
            return value.lower()
    return ""


def retrieval_of(span: SpanView) -> Retrieval | None:
    """The span's retrieval, when it is a retrieval span."""
    docs = _documents(span)
    if operation(span) not in RETRIEVAL_OPERATIONS and not docs:
        return None
    query = None
    for key in ("gen_ai.retrieval.query.text", "gen_ai.retrieval.query", "gen_ai.request.query",
                "db.query.text", "input.value"):
        query = _text(span.attributes.get(key))
        if query is not None:
            break
    reranked = span.attributes.get("chatlog.reranking_used")
    duration = _duration_ms(span)
    return Retrieval(span.trace_id, span.end_ns, query, tuple(docs), duration,
                     reranked if isinstance(reranked, bool) else None)


def _documents(span: SpanView) -> list[dict[str, Any]]:
    listed = _json(span.attributes.get("gen_ai.retrieval.documents"))
    if isinstance(listed, list):
        return [doc for doc in (_document(item) for item in listed) if doc is not None]
    docs = []
    for number in range(_MAX_INDEX):  # OpenInference: retrieval.documents.N.document.{id,score,...}
        prefix = f"retrieval.documents.{number}.document."
        fields = {k[len(prefix):]: v for k, v in span.attributes.items() if k.startswith(prefix)}
        if not fields:
            break
        doc = _document(fields)
        if doc is not None:
            docs.append(doc)
    return docs


def _document(item: Any) -> dict[str, Any] | None:
    item = _json(item)
    if not isinstance(item, dict):
        return None
    metadata = _json(item.get("metadata"))
    metadata = metadata if isinstance(metadata, dict) else {}
    doc: dict[str, Any] = {}
    for field, keys in (("doc_id", ("id", "doc_id", "document_id")), ("title", ("title", "name")),
                        ("source", ("source", "uri", "url"))):
        for key in keys:
            text = _text(item.get(key, metadata.get(key)))
            if text is not None:
                doc[field] = text
                break
    score = _number(item.get("score", item.get("relevance_score")))
    if score is not None:
        doc["score"] = score
    return doc


def _duration_ms(span: SpanView) -> int | None:
    if span.start_ns and span.end_ns >= span.start_ns:
        return round((span.end_ns - span.start_ns) / 1_000_000)
    return None


def _instant(nanoseconds: int) -> datetime | None:
    if nanoseconds <= 0:
        return None
    try:
        # Integer microseconds: exact, where a float of nanoseconds since 1970 is not.
        return _EPOCH + timedelta(microseconds=nanoseconds // 1000)
    except (OverflowError, OSError, ValueError):
        return None


def span_key(span: SpanView) -> str:
    """The span's id, or (log records outside any span) a digest of what they say."""
    if span.span_id.strip("0"):
        return f"{span.trace_id}-{span.span_id}"
    digest = hashlib.sha256(msgspec.json.encode([[e.name, e.time_ns, e.attributes, e.body] for e in span.events]))
    return digest.hexdigest()[:32]


_CONTENT_KEYS = ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.prompt.0.content",
                 "gen_ai.completion.0.content", "gen_ai.prompt", "gen_ai.completion")


def is_chat(span: SpanView) -> bool:
    """A question-and-answer span: by its operation, or by carrying GenAI messages (checked by
    name only; ``chat_events`` parses them, once)."""
    kind = operation(span)
    if kind in OTHER_OPERATIONS or kind in RETRIEVAL_OPERATIONS:
        return False
    if kind in CHAT_OPERATIONS or kind == "llm":
        return True
    if any(_get(span, key) is not None for key in _CONTENT_KEYS):
        return True
    return any(event.name in _USER_EVENTS or event.name in _ANSWER_EVENTS for event in span.events)


def chat_events(span: SpanView, retrieval: Retrieval | None, default_collection: str) -> list[dict[str, Any]]:
    """The user and assistant events of a chat span (as ``LogEventIn`` fields), ids from the span."""
    question, answer = question_and_answer(span)
    conversation = _text(_get(span, "gen_ai.conversation.id"))
    collection = (_text(_get(span, "chatlog.collection_name")) or _text(_get(span, "gen_ai.data_source.id"))
                  or default_collection)
    session = _text(_get(span, "session.id")) or conversation or span.trace_id or span_key(span)
    common: dict[str, Any] = {"session_id": session, "collection_name": collection}
    if conversation is not None:
        common["conversation_id"] = conversation
    user = _text(_get(span, "user.id"))
    if user is not None:
        common["user_id"] = user
    model = _text(_get(span, "gen_ai.request.model")) or _text(_get(span, "gen_ai.response.model"))
    key = span_key(span)
    metadata: dict[str, Any] = {"otlp": {"trace_id": span.trace_id, "span_id": span.span_id}}
    service = _text(span.resource.get("service.name"))
    if service is not None:
        metadata["otlp"]["service_name"] = service
    events = []
    if question is not None:
        user_event = {**common, "log_id": f"otlp-{key}-u", "message_type": "user", "message_content": question,
                      "metadata": metadata}
        if (created := _instant(span.start_ns)) is not None:
            user_event["created_at"] = created
        events.append(user_event)
    # Without content capture a chat span still has its model, timing, tokens and status.
    if answer is not None or span.error or operation(span) in CHAT_OPERATIONS:
        events.append(_answer_event(span, retrieval, {**common, "metadata": metadata}, answer or "", key, model))
    return events


def _answer_event(span: SpanView, retrieval: Retrieval | None, common: dict[str, Any], answer: str, key: str,
                  model: str | None) -> dict[str, Any]:
    event: dict[str, Any] = {**common, "log_id": f"otlp-{key}-a", "message_type": "assistant",
                             "message_content": answer}
    if model is not None:
        event["llm_model"] = model
    params = {}
    for field, attribute in (("temperature", "gen_ai.request.temperature"), ("top_p", "gen_ai.request.top_p")):
        if (number := _number(span.attributes.get(attribute))) is not None:
            params[field] = number
    if (max_tokens := _count(span.attributes.get("gen_ai.request.max_tokens"))) is not None:
        params["max_tokens"] = max_tokens
    if params:
        event["llm_params"] = params
    performance: dict[str, Any] = {}
    if span.timed and (duration := _duration_ms(span)) is not None:
        performance["response_time_ms"] = duration
    tokens = [
        _count(span.attributes.get(new, span.attributes.get(old)))
        for new, old in (("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"),
                         ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens"))
    ]
    if any(t is not None for t in tokens):
        performance["token_count"] = sum(t or 0 for t in tokens)
    if retrieval is not None:
        event["retrieval_info"] = retrieval.info()
        if retrieval.docs:
            event["retrieved_docs"] = list(retrieval.docs)
        if retrieval.duration_ms is not None:
            performance["retrieval_time_ms"] = retrieval.duration_ms
    if performance:
        event["performance"] = performance
    if span.error:
        event["status"] = "error"
        error_type = _text(span.attributes.get("error.type")) or "error"
        event["error"] = {"type": error_type, "message": span.status_message or error_type}
    if (created := _instant(span.end_ns)) is not None:
        event["created_at"] = created
    return event
