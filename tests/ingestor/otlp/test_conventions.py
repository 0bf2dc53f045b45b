"""Conformance: every GenAI convention variant in ``tests/data/otlp`` is stored as its events.

Each fixture is what a popular instrumentation sends (as OTLP/JSON), and the events chatlog
must store from it; it is posted as raw JSON and as protobuf (the same request re-encoded
with the official messages), gzip-encoded or not.
"""

from __future__ import annotations

import json

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ingestor.otlp.decode import parse_request
from tests.ingestor.otlp.conftest import Receiver
from tests.support.otlp import fixture_names, load_fixture, matches, post, stored

pytestmark = pytest.mark.slow


def _protobuf(endpoint: str, request: dict[str, object]) -> bytes:
    """The fixture's OTLP/JSON as the protobuf an SDK exporter sends (via the receiver's JSON reading)."""
    message = ExportTraceServiceRequest() if endpoint == "/v1/traces" else ExportLogsServiceRequest()
    parsed = parse_request(json.dumps(request).encode(), "application/json", message)
    data: bytes = parsed.SerializeToString()
    return data


@pytest.mark.parametrize("encoding", ["json", "protobuf", "json+gzip", "protobuf+gzip"])
@pytest.mark.parametrize("name", fixture_names())
def test_each_convention_variant_is_stored_as_its_events(receiver: Receiver, name: str, encoding: str) -> None:
    fixture = load_fixture(name)
    if encoding.startswith("json"):
        body, media = json.dumps(fixture.request).encode(), "application/json"
    else:
        body, media = _protobuf(fixture.endpoint, fixture.request), "application/x-protobuf"
    answer = post(receiver.url + fixture.endpoint, body, media, gzipped=encoding.endswith("gzip"))
    assert answer.status == 200, answer.body
    assert answer.headers["Content-Type"].startswith(media)
    if media == "application/json":
        assert "partialSuccess" not in answer.json() or not answer.json()["partialSuccess"]
    records = stored(receiver.data_dir, fixture.trace_id)
    assert len(records) == len(fixture.expected), records
    for record, expected in zip(records, fixture.expected, strict=True):
        assert matches(record, expected) == [], (name, record)
        assert "user_id" not in record


def test_a_retried_export_is_stored_once(receiver: Receiver) -> None:
    fixture = load_fixture("current")
    body = json.dumps(fixture.request).encode()
    for _ in range(3):
        assert post(receiver.url + fixture.endpoint, body).status == 200
    assert len(stored(receiver.data_dir, fixture.trace_id)) == 2


def test_the_json_reading_matches_protobufs_own_json_mapping() -> None:
    """Hex ids in OTLP/JSON land as the same bytes protobuf's canonical mapping would decode from base64."""
    fixture = load_fixture("current")
    parsed = parse_request(json.dumps(fixture.request).encode(), "application/json", ExportTraceServiceRequest())
    span = parsed.resource_spans[0].scope_spans[0].spans[1]
    assert span.trace_id.hex() == fixture.trace_id
    assert span.span_id.hex() == "a000000000000002"
    again = json_format.MessageToDict(parsed)
    assert again["resourceSpans"][0]["scopeSpans"][0]["spans"][1]["name"] == "chat gpt-4o"
