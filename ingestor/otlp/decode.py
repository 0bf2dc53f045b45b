"""OTLP request bodies (protobuf or JSON) to the official generated messages, then to plain views.

Protobuf is parsed by ``opentelemetry-proto``'s generated classes; JSON by protobuf's own
``json_format`` after the one OTLP/JSON deviation from the canonical protobuf mapping is undone:
trace and span ids are hex strings there, not base64. Anything that is not a request of the
endpoint's type is ``NotOtlp`` (a 400 that exporters do not retry).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
from google.protobuf import json_format
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from shared.errors import ChatlogError

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
# Nesting of attribute values kept (kvlists in arrays in kvlists...); deeper parts are dropped.
MAX_VALUE_DEPTH = 8
_HEX_ID_KEYS = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"})

RequestT = TypeVar("RequestT", ExportTraceServiceRequest, ExportLogsServiceRequest)


class NotOtlp(ChatlogError):
    """The body is not an OTLP export request of this endpoint (not retried by exporters)."""

    status = 400
    code = "invalid_otlp"


class UnsupportedMediaType(ChatlogError):
    """Neither ``application/x-protobuf`` nor ``application/json``."""

    status = 415
    code = "unsupported_media_type"


@dataclass(frozen=True, slots=True)
class EventView:
    """A span event, or a log record folded into the span it belongs to."""

    name: str
    time_ns: int
    attributes: dict[str, Any]
    body: Any = None


@dataclass(frozen=True, slots=True)
class SpanView:
    """What the GenAI mapping reads of one span: ids in hex, attributes as plain values."""

    trace_id: str
    span_id: str
    name: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    resource: dict[str, Any]
    events: tuple[EventView, ...] = ()
    error: bool = False
    status_message: str = ""
    # False for log records folded into a span: their times are not the operation's duration.
    timed: bool = True


def parse_request(body: bytes, content_type: str, message: RequestT) -> RequestT:
    """``message`` filled from ``body``; NotOtlp when it is not one, UnsupportedMediaType for the type."""
    if content_type == PROTOBUF:
        try:
            message.ParseFromString(body)
        # DecodeError, and whatever else the parser throws at hostile bytes: all mean "not OTLP".
        except Exception as exc:
            raise NotOtlp(f"the body is not a protobuf {message.DESCRIPTOR.name}: {exc}") from None
        return message
    if content_type == JSON:
        try:
            document = msgspec.json.decode(body)
        except msgspec.DecodeError as exc:
            raise NotOtlp(f"the body is not JSON: {exc}") from None
        except RecursionError:
            # OTLP/JSON nests a dozen levels (kvlists a few more): this deep it is never OTLP.
            raise NotOtlp("the body nests arrays and objects too deeply to be OTLP") from None
        if not isinstance(document, dict):
            raise NotOtlp(f"the body is not an OTLP/JSON {message.DESCRIPTOR.name} object")
        try:
            json_format.ParseDict(_base64_ids(document), message, ignore_unknown_fields=True)
        # ParseError, TypeError, ValueError for fields of the wrong shape: not OTLP either.
        except Exception as exc:
            raise NotOtlp(f"the body is not an OTLP/JSON {message.DESCRIPTOR.name}: {exc}") from None
        return message
    raise UnsupportedMediaType(
        f"Content-Type {content_type or 'none'!r} is not OTLP: send {PROTOBUF} or {JSON}",
        supported=[PROTOBUF, JSON],
    )


def encode_message(message: Message, content_type: str) -> bytes:
    """A response message in the request's encoding (OTLP answers in the format it was sent)."""
    if content_type == JSON:
        text: str = json_format.MessageToJson(message, indent=None)
        return text.encode()
    data: bytes = message.SerializeToString()
    return data


def _base64_ids(value: Any, depth: int = 0) -> Any:
    """OTLP/JSON with its hex trace/span ids rewritten as the base64 that ``json_format`` reads."""
    if depth > 64:
        raise NotOtlp("the JSON body is nested too deeply")
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in _HEX_ID_KEYS and isinstance(item, str):
                try:
                    out[key] = base64.b64encode(bytes.fromhex(item)).decode()
                except ValueError:
                    raise NotOtlp(f"{key} {item[:40]!r} is not a hex id") from None
            else:
                out[key] = _base64_ids(item, depth + 1)
        return out
    if isinstance(value, list):
        return [_base64_ids(item, depth + 1) for item in value]
    return value


def any_value(value: AnyValue, depth: int = 0) -> Any:
    """An OTLP ``AnyValue`` as a plain Python value (bytes as base64 text)."""
    kind = value.WhichOneof("value")
    if kind is None or depth > MAX_VALUE_DEPTH:
        return None
    if kind == "array_value":
        return [any_value(item, depth + 1) for item in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values, depth + 1)
    if kind == "bytes_value":
        return binascii.b2a_base64(value.bytes_value, newline=False).decode()
    return getattr(value, kind)


def attributes(pairs: Any, depth: int = 0) -> dict[str, Any]:
    """``KeyValue`` pairs as a dict (a repeated key keeps its last value, as the SDKs do)."""
    out: dict[str, Any] = {}
    pair: KeyValue
    for pair in pairs:
        out[pair.key] = any_value(pair.value, depth)
    return out


def spans(request: ExportTraceServiceRequest) -> Iterator[SpanView]:
    """Every span of a trace export, with its resource's attributes."""
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield SpanView(
                    trace_id=span.trace_id.hex(),
                    span_id=span.span_id.hex(),
                    name=span.name,
                    start_ns=span.start_time_unix_nano,
                    end_ns=span.end_time_unix_nano,
                    attributes=attributes(span.attributes),
                    resource=resource,
                    events=tuple(
                        EventView(event.name, event.time_unix_nano, attributes(event.attributes))
                        for event in span.events
                    ),
                    error=span.status.code == Status.STATUS_CODE_ERROR,
                    status_message=span.status.message,
                )


def log_spans(request: ExportLogsServiceRequest) -> tuple[list[SpanView], int]:
    """Log records grouped by the span they were emitted in, as spans whose events they are.

    The older GenAI conventions emit one record per message (every input message, then each
    choice); folded back into their span they map exactly like span events. Records without
    a span share one group per resource. Also returns how many records there were.
    """
    groups: dict[tuple[int, str, str], list[EventView]] = {}
    merged: dict[tuple[int, str, str], dict[str, Any]] = {}
    resources: list[dict[str, Any]] = []
    count = 0
    for number, resource_logs in enumerate(request.resource_logs):
        resources.append(attributes(resource_logs.resource.attributes))
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                count += 1
                record_attributes = attributes(record.attributes)
                name = record.event_name or str(record_attributes.get("event.name") or "")
                key = (number, record.trace_id.hex(), record.span_id.hex())
                when = record.time_unix_nano or record.observed_time_unix_nano
                body = any_value(record.body)
                groups.setdefault(key, []).append(EventView(name, when, record_attributes, body))
                merged.setdefault(key, {}).update(record_attributes)
    views = []
    for key, events in groups.items():
        number, trace_id, span_id = key
        times = [event.time_ns for event in events if event.time_ns]
        views.append(SpanView(
            trace_id=trace_id,
            span_id=span_id,
            name="",
            start_ns=min(times, default=0),
            end_ns=max(times, default=0),
            attributes=merged[key],
            resource=resources[number],
            events=tuple(sorted(events, key=lambda event: event.time_ns)),
            timed=False,
        ))
    return views, count
