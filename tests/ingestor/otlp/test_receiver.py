"""The receiver's answers as OTLP/HTTP says, hostile bodies, the token, and durability of the join."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from ingestor.__main__ import ingest_listeners
from ingestor.otlp.decode import parse_request
from shared.settings import Settings
from tests.ingestor.otlp.conftest import Receiver, start_receiver
from tests.support.otlp import load_fixture, post, stored

pytestmark = pytest.mark.slow

PROTOBUF = "application/x-protobuf"


def _protobuf(request: dict[str, object]) -> bytes:
    message = parse_request(json.dumps(request).encode(), "application/json", ExportTraceServiceRequest())
    data: bytes = message.SerializeToString()
    return data


@pytest.fixture
def folder() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="cl", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


HOSTILE = {
    "not protobuf": (b"\xff\xfe this is not a protobuf message \x00\x01", PROTOBUF, None),
    "truncated protobuf": (_protobuf(load_fixture("current").request)[:-7], PROTOBUF, None),
    "json that is not otlp": (b'{"resourceSpans": "nope"}', "application/json", None),
    "json array": (b"[1, 2, 3]", "application/json", None),
    "not json": (b"{{{{", "application/json", None),
    "bad hex id": (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}', "application/json", None),
    "gzip garbage": (b"\x1f\x8b\x08\x00garbage", PROTOBUF, "gzip"),
    "deep json": (b'{"a":' * 5000 + b"1" + b"}" * 5000, "application/json", None),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_body_that_is_not_otlp_is_a_400_never_a_5xx(receiver: Receiver, name: str) -> None:
    body, media, coding = HOSTILE[name]
    headers = {"Content-Encoding": coding} if coding else {}
    answer = post(receiver.url + "/v1/traces", body, media, headers=headers)
    assert answer.status == 400, answer.body
    if media == PROTOBUF:
        status = Status()
        status.ParseFromString(answer.body)
        assert status.code == 3 and status.message
    else:
        assert answer.json()["code"] == 3


def test_a_body_over_the_limit_is_a_413_also_once_inflated(receiver: Receiver) -> None:
    huge = b"\x00" * (6 * 1024 * 1024)
    assert post(receiver.url + "/v1/traces", huge, PROTOBUF).status == 413
    assert post(receiver.url + "/v1/logs", huge, PROTOBUF, gzipped=True).status == 413


def test_another_content_type_is_a_415(receiver: Receiver) -> None:
    answer = post(receiver.url + "/v1/traces", b"hello", "text/plain")
    assert answer.status == 415
    assert answer.json()["error"] == "unsupported_media_type"


def test_a_protobuf_answer_is_an_export_response(receiver: Receiver) -> None:
    answer = post(receiver.url + "/v1/traces", _protobuf(load_fixture("current").request), PROTOBUF)
    assert answer.status == 200 and answer.headers["Content-Type"] == PROTOBUF
    response = ExportTraceServiceResponse()
    response.ParseFromString(answer.body)
    assert response.partial_success.rejected_spans == 0


def test_a_span_out_of_range_is_rejected_alone_as_a_partial_success(receiver: Receiver) -> None:
    good = load_fixture("span_events")
    old = load_fixture("legacy_indexed", t0_ns=1_000_000_000_000_000_000)  # 2001: past the retention
    request = {"resourceSpans": good.request["resourceSpans"] + old.request["resourceSpans"]}
    answer = post(receiver.url + "/v1/traces", json.dumps(request).encode())
    assert answer.status == 200
    partial = answer.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "1" and "retention" in partial["errorMessage"]
    assert len(stored(receiver.data_dir, good.trace_id)) == 2
    assert stored(receiver.data_dir, old.trace_id) == []


def test_the_ingest_token_guards_the_receiver(folder: Path) -> None:
    running = start_receiver(folder, CHATLOG_INGEST_TOKEN="s3cret")
    try:
        body = json.dumps(load_fixture("current").request).encode()
        refused = post(running.url + "/v1/traces", _protobuf(json.loads(body)), PROTOBUF)
        assert refused.status == 401
        status = Status()
        status.ParseFromString(refused.body)
        assert status.code == 16
        assert post(running.url + "/v1/traces", body, headers={"Authorization": "Bearer s3cret"}).status == 200
    finally:
        running.daemon.stop_quietly()


def test_an_acknowledged_retrieval_survives_sigkill_and_joins_a_later_chat_span(folder: Path) -> None:
    fixture = load_fixture("current")
    retrieval, chat = fixture.request["resourceSpans"][0]["scopeSpans"][0]["spans"]

    def alone(span: dict[str, object]) -> bytes:
        request = json.loads(json.dumps(fixture.request))
        request["resourceSpans"][0]["scopeSpans"][0]["spans"] = [span]
        return json.dumps(request).encode()

    running = start_receiver(folder)
    assert post(running.url + "/v1/traces", alone(retrieval)).status == 200
    running.daemon.kill()
    pending = folder / "data" / "otlp" / "pending-retrievals.jsonl"
    assert oct(os.stat(pending).st_mode & 0o777) == "0o640"
    running = start_receiver(folder)
    try:
        assert post(running.url + "/v1/traces", alone(chat), headers={}).status == 200
        _, assistant = stored(running.data_dir, fixture.trace_id)
        assert assistant["retrieval_info"]["top_scores"] == [0.81, 0.42]
        assert assistant["performance"]["retrieval_time_ms"] == 120
    finally:
        running.daemon.stop_quietly()


def test_otlp_is_off_with_port_zero() -> None:
    listeners = ingest_listeners(Settings.for_data_dir("/nonexistent", otlp_port=0))
    assert [listener.name for listener in listeners] == ["ingestor"]
    listeners = ingest_listeners(Settings.for_data_dir("/nonexistent", otlp_port=4318))
    assert [(listener.name, listener.host, listener.port) for listener in listeners][1] == ("otlp", "127.0.0.1", 4318)


def test_metrics_count_what_became_of_each_span(receiver: Receiver) -> None:
    for name in ("no_genai", "current"):
        assert post(receiver.url + "/v1/traces", json.dumps(load_fixture(name).request).encode()).status == 200
    with urllib.request.urlopen(receiver.daemon.url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    counts = {outcome: float(m.group(1)) for outcome in ("stored", "ignored", "retrieval")
              if (m := re.search(rf'chatlog_otlp_items_total{{outcome="{outcome}",signal="traces"}} (\S+)', text))}
    assert counts["ignored"] >= 2 and counts["stored"] >= 1 and counts["retrieval"] >= 1, counts
