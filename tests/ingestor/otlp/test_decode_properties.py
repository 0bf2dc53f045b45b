"""Property tests of the OTLP decoders and of the GenAI mapping, on arbitrary input."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from ingestor.otlp.decode import JSON, PROTOBUF, NotOtlp, SpanView, UnsupportedMediaType, parse_request, spans
from ingestor.otlp.genai import chat_events, is_chat, retrieval_of
from ingestor.records import RecordBuilder
from shared.layout import StorageLayout
from shared.privacy import UserHasher
from shared.wire import LogEventIn

PROPERTIES = settings(max_examples=200, deadline=None, database=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
GENAI_KEYS = (
    "gen_ai.operation.name", "gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.prompt.0.content",
    "gen_ai.prompt.0.role", "gen_ai.completion.0.content", "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens", "gen_ai.request.temperature", "gen_ai.request.max_tokens", "session.id",
    "gen_ai.conversation.id", "user.id", "chatlog.collection_name", "gen_ai.retrieval.documents",
    "retrieval.documents.0.document.score", "error.type", "gen_ai.request.model",
)

scalars = (st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=12)
# Attribute values as instrumentations write them: primitives, and JSON text of structures.
attribute_values = values | values.map(lambda v: json.dumps(v, allow_nan=True)) | st.sampled_from(
    ["chat", "retrieval", "text_completion", "embeddings", "RETRIEVER", "llm",
     '[{"role": "user", "parts": [{"type": "text", "content": "q"}]}]',
     '[{"role": "assistant", "content": "a"}]', '[{"id": "d", "score": 0.4}]']) | st.integers(1, 5000).map(
    lambda n: '[{"role": "user", "content": ' + "[" * n + "]" * n + "}]")


def any_value(value: Any) -> AnyValue:
    """A plain value as an OTLP AnyValue."""
    out = AnyValue()
    if value is None:
        return out
    if isinstance(value, bool):
        out.bool_value = value
    elif isinstance(value, int):
        out.int_value = value
    elif isinstance(value, float):
        out.double_value = value
    elif isinstance(value, str):
        out.string_value = value
    elif isinstance(value, list):
        out.array_value.values.extend(any_value(v) for v in value)
    else:
        out.kvlist_value.values.extend(KeyValue(key=k, value=any_value(v)) for k, v in value.items())
    return out


@st.composite
def trace_requests(draw: st.DrawFn) -> ExportTraceServiceRequest:
    """Trace exports of a few spans with GenAI-ish (and arbitrary) attributes."""
    request = ExportTraceServiceRequest()
    for _ in range(draw(st.integers(0, 2))):
        resource_spans = request.resource_spans.add()
        scope = resource_spans.scope_spans.add()
        for _ in range(draw(st.integers(0, 3))):
            span = scope.spans.add()
            span.trace_id = draw(st.binary(min_size=16, max_size=16))
            span.span_id = draw(st.binary(min_size=8, max_size=8))
            span.name = draw(st.text(max_size=20))
            span.start_time_unix_nano = draw(st.integers(0, 2**64 - 1))
            span.end_time_unix_nano = draw(st.integers(0, 2**64 - 1))
            span.status.code = draw(st.sampled_from([0, 1, 2]))
            keys = draw(st.lists(st.sampled_from(GENAI_KEYS) | st.text(max_size=10), max_size=6))
            span.attributes.extend(KeyValue(key=k, value=any_value(draw(attribute_values))) for k in keys)
            for _ in range(draw(st.integers(0, 2))):
                event = span.events.add()
                event.name = draw(st.sampled_from(["gen_ai.user.message", "gen_ai.choice", "other"]))
                event.attributes.extend([KeyValue(key="content", value=any_value(draw(attribute_values)))])
    return request


def otlp_json(request: ExportTraceServiceRequest) -> bytes:
    """OTLP/JSON of a request: protobuf's JSON mapping with trace and span ids in hex."""
    document = json_format.MessageToDict(request)
    for resource_spans in document.get("resourceSpans", []):
        for scope in resource_spans.get("scopeSpans", []):
            for span in scope.get("spans", []):
                for key in ("traceId", "spanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return json.dumps(document).encode()


@PROPERTIES
@given(request=trace_requests())
def test_protobuf_and_otlp_json_decode_to_the_same_request(request: ExportTraceServiceRequest) -> None:
    from_protobuf = parse_request(request.SerializeToString(), PROTOBUF, ExportTraceServiceRequest())
    from_json = parse_request(otlp_json(request), JSON, ExportTraceServiceRequest())
    assert from_protobuf == request
    # NaN != NaN: compare the JSON renderings, which spell it "NaN" on both sides.
    assert json_format.MessageToDict(from_json) == json_format.MessageToDict(request)


@PROPERTIES
@given(body=st.binary(max_size=300) | st.text(max_size=200).map(str.encode),
       media=st.sampled_from([PROTOBUF, JSON, "text/plain", ""]),
       kind=st.sampled_from([ExportTraceServiceRequest, ExportLogsServiceRequest]))
def test_any_body_decodes_or_is_refused_with_a_client_error(body: bytes, media: str, kind: type[Any]) -> None:
    try:
        parse_request(body, media, kind())
    except (NotOtlp, UnsupportedMediaType) as error:
        assert error.status in (400, 415)


def builder() -> RecordBuilder:
    layout = StorageLayout(root=Path("/nonexistent"), db_path=Path("/nonexistent/db"), tz=ZoneInfo("UTC"))
    return RecordBuilder(layout, UserHasher(b"property-test-key-0123456789"), 30)


@PROPERTIES
@given(request=trace_requests(), collection=st.text(min_size=1, max_size=10))
def test_any_span_maps_to_valid_events_or_to_nothing(request: ExportTraceServiceRequest, collection: str) -> None:
    """The mapping never raises; what it gives converts to LogEventIn (or fails that, and is rejected)."""
    views: list[SpanView] = list(spans(request))
    for view in views:
        retrieval = retrieval_of(view)
        if retrieval is not None:
            info = retrieval.info()
            assert info["retrieved_count"] == len(retrieval.docs)
            assert info["top_scores"] == sorted(info["top_scores"], reverse=True)
            continue
        if not is_chat(view):
            continue
        events = chat_events(view, None, collection)
        assert len(events) <= 2
        assert len({e["log_id"] for e in events}) == len(events)
        for event in events:
            assert event["log_id"].startswith("otlp-")
            try:
                converted = msgspec.convert(event, LogEventIn)
            except msgspec.ValidationError:
                continue
            problem = builder().check_created_at(0, converted)
            if problem is None and converted.created_at is not None:
                assert builder().build([converted])[0].record.log_id == event["log_id"]
