"""Ingest request handlers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from aiohttp import web

from ingestor import keys
from ingestor.content_encoding import decoded_body
from ingestor.decoding import decode_items
from ingestor.feedback import EncodedFeedback
from ingestor.records import EncodedRecord
from shared.errors import BadRequest, InvalidBody, TooLarge, Unauthorized, ValidationFailed, json_response
from shared.privacy import bearer_token, tokens_equal
from shared.quarantine import quarantined
from shared.wire import ConversationIn, FeedbackIn, LogEventIn


def over_unix_socket(request: web.Request) -> bool:
    """Whether the request came over the Unix socket (whose 0660 mode is its access control)."""
    transport = request.transport
    return transport is not None and isinstance(transport.get_extra_info("sockname"), str)


def check_ingest_token(request: web.Request) -> None:
    """TCP requests need the ingest token when one is set; the Unix socket relies on 0660."""
    expected = request.app[keys.settings_key].ingest_token
    if not expected or over_unix_socket(request):
        return
    given = bearer_token(request.headers.get("Authorization"))
    if given is None or not tokens_equal(given, expected):
        request.app[keys.metrics_key].rejected.labels(reason="unauthorized").inc()
        raise Unauthorized("a valid ingest token is required: Authorization: Bearer <token>")


async def read_body(request: web.Request) -> bytes:
    """The request body without its Content-Encoding: TooLarge over the limit, InvalidBody if unreadable."""
    limit = request.app[keys.settings_key].max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge(f"body is over the limit of {limit} bytes", limit=limit)
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise TooLarge(f"body is over the limit of {limit} bytes", limit=limit) from None
    except web.RequestPayloadError as exc:
        raise InvalidBody(f"the body could not be read: {exc}") from None
    return decoded_body(body, request.headers.get("Content-Encoding"), limit)


class _Builder(Protocol):
    """What turns decoded items into stored lines: ``RecordBuilder``, ``FeedbackBuilder``."""

    def check_created_at(self, index: int, item: Any, /) -> dict[str, Any] | None: ...

    def build(self, items: Sequence[Any], /) -> Sequence[EncodedRecord | EncodedFeedback]: ...


async def _store(request: web.Request, builder: _Builder, type_: type[Any]) -> web.Response:
    """Decode, build and store durably; 202 only once fsynced; all or nothing per request."""
    check_ingest_token(request)
    body = await read_body(request)
    try:
        items = decode_items(body, request.content_type, type_, builder.check_created_at)
        records = builder.build(items)
    except ValidationFailed as exc:
        request.app[keys.metrics_key].rejected.labels(reason="validation").inc(len(exc.extra["errors"]))
        raise
    if records:
        await request.app[keys.writer_key].submit(records)
    return json_response({"accepted": len(records)}, status=202)


async def post_logs(request: web.Request) -> web.Response:
    """Store a batch of log events durably; 202 only once they are fsynced."""
    return await _store(request, request.app[keys.builder_key], LogEventIn)


async def post_feedback(request: web.Request) -> web.Response:
    """Store feedback durably; 202 only once it is fsynced (a retried feedback_id is stored once)."""
    return await _store(request, request.app[keys.feedback_builder_key], FeedbackIn)


async def post_conversation(request: web.Request) -> web.Response:
    """Judge a whole conversation by the sampling rules; store it durably when kept."""
    check_ingest_token(request)
    body = await read_body(request)
    items = decode_items(body, request.content_type, ConversationIn)
    if len(items) != 1:
        raise BadRequest(f"send exactly one conversation object, not {len(items)}")
    posted = items[0]
    if not posted.messages:
        raise ValidationFailed([{"index": 0, "path": "$.messages", "message": "no messages"}])
    decision = await request.app[keys.conversations_key].save_posted(posted)
    return json_response({"saved": decision.saved, "reason": decision.reason}, status=202)


async def healthz(request: web.Request) -> web.Response:
    """200 while the ingestor can store, 503 (with the reason) otherwise."""
    writer = request.app[keys.writer_key]
    derived = request.app[keys.derived_key]
    body = {
        "status": "ok" if writer.healthy else "unavailable",
        "service": "ingestor",
        "queue_depth": writer.pending_events,
        "storage_error": writer.storage_error,
        # Statistics and conversations trail the files by this much (they never block storing).
        "derived": derived.health(),
        # Damaged day files moved aside whole (their readable frames stay readable); storing goes on.
        "damaged_files": [
            {"day_file": str(q.day_file), "quarantined": str(q.path)}
            for q in quarantined(request.app[keys.layout_key])
        ],
    }
    return json_response(body, status=200 if writer.healthy else 503)
