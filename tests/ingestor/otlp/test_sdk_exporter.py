"""The real OpenTelemetry Python SDK with its OTLP/HTTP (protobuf) exporter as the client."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from tests.ingestor.otlp.conftest import Receiver
from tests.support.otlp import stored

pytestmark = pytest.mark.slow


@pytest.fixture
def tracing() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """A tracer provider whose finished spans are collected, to be exported by the test."""
    provider = TracerProvider(resource=Resource.create({"service.name": "rag-backend",
                                                        "chatlog.collection_name": "hr-docs"}))
    finished = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(finished))
    yield provider, finished
    provider.shutdown()


def rag_turn(provider: TracerProvider, question: str, answer: str, fail: bool = False) -> str:
    """One instrumented RAG turn: a retrieval span, then a chat span (current conventions)."""
    tracer = provider.get_tracer("rag")
    with tracer.start_as_current_span("answer") as root:
        with tracer.start_as_current_span("retrieval hr-docs") as retrieval:
            retrieval.set_attribute("gen_ai.operation.name", "retrieval")
            retrieval.set_attribute("gen_ai.retrieval.query.text", question)
            retrieval.set_attribute("gen_ai.retrieval.documents", json.dumps([{"id": "d1", "score": 0.77}]))
        with tracer.start_as_current_span("chat gpt-4o") as chat:
            chat.set_attribute("gen_ai.operation.name", "chat")
            chat.set_attribute("gen_ai.request.model", "gpt-4o")
            chat.set_attribute("gen_ai.usage.input_tokens", 100)
            chat.set_attribute("gen_ai.usage.output_tokens", 20)
            chat.set_attribute("session.id", "sdk-session")
            chat.set_attribute("user.id", "park.sora")
            chat.set_attribute("gen_ai.input.messages", json.dumps(
                [{"role": "user", "parts": [{"type": "text", "content": question}]}]))
            if fail:
                chat.set_attribute("error.type", "RateLimitError")
                chat.set_status(Status(StatusCode.ERROR, "429 from the provider"))
            else:
                chat.set_attribute("gen_ai.output.messages", json.dumps(
                    [{"role": "assistant", "parts": [{"type": "text", "content": answer}]}]))
        return format(root.get_span_context().trace_id, "032x")


def export(receiver: Receiver, spans: tuple[ReadableSpan, ...], **options: object) -> SpanExportResult:
    """Export with the SDK's OTLP/HTTP protobuf exporter to the receiver."""
    exporter = OTLPSpanExporter(endpoint=receiver.url + "/v1/traces", **options)  # type: ignore[arg-type]
    try:
        return exporter.export(spans)
    finally:
        exporter.shutdown()


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_sdk_export_is_stored_with_its_retrieval(
    receiver: Receiver, tracing: tuple[TracerProvider, InMemorySpanExporter], compression: Compression
) -> None:
    provider, finished = tracing
    trace_id = rag_turn(provider, "연차는 며칠인가요?", "15일입니다.")
    assert export(receiver, finished.get_finished_spans(), compression=compression) == SpanExportResult.SUCCESS
    user, assistant = stored(receiver.data_dir, trace_id)
    assert (user["message_type"], user["message_content"]) == ("user", "연차는 며칠인가요?")
    assert (assistant["message_type"], assistant["message_content"]) == ("assistant", "15일입니다.")
    assert assistant["collection_name"] == "hr-docs" and assistant["session_id"] == "sdk-session"
    assert assistant["performance"]["token_count"] == 120
    assert assistant["retrieval_info"] == {"query": "연차는 며칠인가요?", "retrieved_count": 1, "top_scores": [0.77]}
    assert user["user_hash"] and "park.sora" not in json.dumps(user)


def test_an_error_span_is_stored_as_an_error_answer(
    receiver: Receiver, tracing: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, finished = tracing
    trace_id = rag_turn(provider, "급여일은 언제?", "", fail=True)
    assert export(receiver, finished.get_finished_spans()) == SpanExportResult.SUCCESS
    _, assistant = stored(receiver.data_dir, trace_id)
    assert assistant["status"] == "error"
    assert assistant["error"] == {"type": "RateLimitError", "message": "429 from the provider"}


def test_spans_split_over_two_exports_are_joined(
    receiver: Receiver, tracing: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    """The retrieval span in one request, the chat span in the next (as a BatchSpanProcessor may send)."""
    provider, finished = tracing
    trace_id = rag_turn(provider, "출장비 정산 기한", "다음 달 5일까지입니다.")
    spans = finished.get_finished_spans()
    retrieval = tuple(s for s in spans if s.name.startswith("retrieval"))
    rest = tuple(s for s in spans if not s.name.startswith("retrieval"))
    assert export(receiver, retrieval) == SpanExportResult.SUCCESS
    assert stored(receiver.data_dir, trace_id) == []
    assert export(receiver, rest) == SpanExportResult.SUCCESS
    _, assistant = stored(receiver.data_dir, trace_id)
    assert assistant["retrieval_info"]["top_scores"] == [0.77]
