"""The OTLP/HTTP receiver: its own aiohttp application on ``CHATLOG_OTLP_PORT``.

It runs in the ingestor's process and stores through the ingest application's record
builder and group-commit writer (set up first, stopped last: see ``ingestor.__main__``).
Answers follow the OTLP/HTTP specification: 200 with the export response (a partial success
counts what was rejected) in the request's encoding; errors carry a ``google.rpc.Status``
(protobuf requests) or the usual JSON error with the Status ``code`` added (JSON requests);
400 and 415 are not retried by exporters, 503 (with ``Retry-After``) is.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import msgspec
from aiohttp import web
from aiohttp.typedefs import Handler
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from ingestor import keys
from ingestor.otlp.decode import JSON, PROTOBUF, encode_message, log_spans, parse_request, spans
from ingestor.otlp.openapi import otlp_openapi
from ingestor.otlp.pending import PendingRetrievals
from ingestor.otlp.store import Outcome, store_spans
from ingestor.views import check_ingest_token, read_body
from shared.errors import error_middleware
from shared.openapi import openapi_handler
from shared.settings import Settings

PENDING_FILE = "otlp/pending-retrievals.jsonl"
# HTTP status to the google.rpc.Code an OTLP client expects in the Status body.
GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 405: 12, 413: 3, 415: 3, 429: 8, 503: 14, 504: 4}


def create_otlp_app(settings: Settings, ingest: web.Application) -> web.Application:
    """``POST /v1/traces`` and ``POST /v1/logs`` of OTLP/HTTP, storing through ``ingest``."""
    app = web.Application(
        # error_middleware gives every error the one JSON shape; otlp_status_middleware, outside
        # it, re-encodes that as a google.rpc.Status for protobuf requests.
        middlewares=[otlp_status_middleware, error_middleware], client_max_size=settings.max_body_bytes,
        handler_args={"auto_decompress": False},
    )
    app[keys.settings_key] = settings
    app[keys.metrics_key] = ingest[keys.metrics_key]
    app[keys.layout_key] = ingest[keys.layout_key]
    app[keys.otlp_ingest_key] = ingest
    app.cleanup_ctx.append(_pending)
    app.router.add_post("/v1/traces", post_traces)
    app.router.add_post("/v1/logs", post_logs)
    app.router.add_get("/openapi.json", openapi_handler(otlp_openapi()))
    return app


async def _pending(app: web.Application) -> AsyncIterator[None]:
    pending = PendingRetrievals(app[keys.layout_key].root / PENDING_FILE, app[keys.settings_key].otlp_join_seconds)
    await asyncio.to_thread(pending.load)
    app[keys.otlp_pending_key] = pending
    yield


def _media(request: web.Request) -> str:
    return request.content_type.lower()


async def post_traces(request: web.Request) -> web.Response:
    """An OTLP trace export: GenAI chat spans become events, fsynced before the answer."""
    check_ingest_token(request)
    body = await read_body(request)
    media = _media(request)
    export = parse_request(body, media, ExportTraceServiceRequest())
    views = list(spans(export))
    outcome = await store_spans(request.app, views, [1] * len(views))
    _count(request, "traces", outcome)
    response = ExportTraceServiceResponse()
    if outcome.rejected:
        response.partial_success.rejected_spans = outcome.rejected
        response.partial_success.error_message = "; ".join(outcome.problems)
    return _answer(response, media)


async def post_logs(request: web.Request) -> web.Response:
    """An OTLP log export: GenAI event records, folded into their spans, become events."""
    check_ingest_token(request)
    body = await read_body(request)
    media = _media(request)
    export = parse_request(body, media, ExportLogsServiceRequest())
    views, _ = log_spans(export)
    outcome = await store_spans(request.app, views, [len(view.events) for view in views])
    _count(request, "logs", outcome)
    response = ExportLogsServiceResponse()
    if outcome.rejected:
        response.partial_success.rejected_log_records = outcome.rejected
        response.partial_success.error_message = "; ".join(outcome.problems)
    return _answer(response, media)


def _count(request: web.Request, signal: str, outcome: Outcome) -> None:
    counter = request.app[keys.metrics_key].otlp_items
    for name in ("stored", "rejected", "retrieval", "ignored"):
        if value := getattr(outcome, name):
            counter.labels(signal=signal, outcome=name).inc(value)


def _answer(response: ExportTraceServiceResponse | ExportLogsServiceResponse, media: str) -> web.Response:
    return web.Response(body=encode_message(response, media), status=200, content_type=media)


@web.middleware
async def otlp_status_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Errors as OTLP/HTTP says: a ``google.rpc.Status`` in the request's encoding."""
    response = await handler(request)
    if response.status < 400 or not isinstance(response, web.Response) or not isinstance(response.body, bytes):
        return response
    try:
        shaped = msgspec.json.decode(response.body)
        message = str(shaped.get("message") or shaped.get("error") or "")
    except (msgspec.DecodeError, AttributeError):
        shaped, message = {}, ""
    code = GRPC_CODES.get(response.status, 13)
    headers = {k: v for k, v in response.headers.items() if k.lower() in ("retry-after", "allow", "www-authenticate")}
    if _media(request) == PROTOBUF:
        status = Status(code=code, message=message)
        return web.Response(body=status.SerializeToString(), status=response.status, content_type=PROTOBUF,
                            headers=headers)
    # JSON (and anything else): the one JSON error shape, plus the Status fields OTLP/JSON reads.
    body = {**shaped, "code": code, "message": message} if isinstance(shaped, dict) else {"code": code}
    return web.Response(body=msgspec.json.encode(body), status=response.status, content_type=JSON, headers=headers)
