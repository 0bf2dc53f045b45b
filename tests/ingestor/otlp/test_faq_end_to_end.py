"""A backend instrumented only with the OpenTelemetry SDK shows up in the FAQ, and its answer in the admin lookup."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from tests.ingestor.otlp.conftest import start_receiver
from tests.ingestor.otlp.test_end_to_end import ADMIN_TOKEN, get, until
from tests.support.daemon import free_port

pytestmark = pytest.mark.slow

# (conversation, question, answer, best retrieval score)
TURNS = [
    ("otel-faq-1", "연차 휴가 신청 방법", "인사 시스템에서 신청하고 팀장 승인을 받습니다.", 0.82),
    ("otel-faq-2", "연차휴가는 어떻게 신청하나요?", "인사 시스템 > 휴가 신청 메뉴에서 신청합니다.", 0.91),
    ("otel-faq-3", "연차 휴가 신청 방법", "팀장에게 메일로 요청하세요.", 0.4),
    ("otel-faq-4", "VPN 접속이 안 됩니다", "VPN 클라이언트를 다시 설치하세요.", 0.6),
]


def test_an_otel_only_backend_shows_in_the_faq_and_its_answer_in_the_admin_lookup(short_dir: Path) -> None:
    receiver = start_receiver(short_dir)
    port = free_port()
    env = {**receiver.daemon.env, "CHATLOG_API_PORT": str(port), "CHATLOG_ADMIN_TOKEN": ADMIN_TOKEN,
           "CHATLOG_FAQ_MIN_COUNT": "2"}
    analytics = subprocess.Popen([sys.executable, "-m", "analytics_api"], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    api = f"http://127.0.0.1:{port}"
    try:
        provider = TracerProvider(resource=Resource.create({"service.name": "otel-only",
                                                            "chatlog.collection_name": "otel-hr"}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=receiver.url + "/v1/traces")))
        tracer = provider.get_tracer("backend")
        for conversation, question, answer, score in TURNS:
            with tracer.start_as_current_span("answer"):
                with tracer.start_as_current_span("retrieval otel-hr") as retrieval:
                    retrieval.set_attribute("gen_ai.operation.name", "retrieval")
                    retrieval.set_attribute("gen_ai.retrieval.query.text", question)
                    retrieval.set_attribute("gen_ai.retrieval.documents", json.dumps(
                        [{"id": "d1", "score": score}, {"id": "d2", "score": score / 2}]))
                with tracer.start_as_current_span("chat gpt-4o") as chat:
                    chat.set_attribute("gen_ai.operation.name", "chat")
                    chat.set_attribute("gen_ai.request.model", "gpt-4o")
                    chat.set_attribute("gen_ai.conversation.id", conversation)
                    chat.set_attribute("gen_ai.input.messages", json.dumps(
                        [{"role": "user", "parts": [{"type": "text", "content": question}]}]))
                    chat.set_attribute("gen_ai.output.messages", json.dumps(
                        [{"role": "assistant", "parts": [{"type": "text", "content": answer}]}]))
        assert provider.force_flush(10_000)
        provider.shutdown()
        query = urllib.parse.urlencode({"collection_name": "otel-hr"})
        items = until(lambda: (found := get(f"{api}/api/analytics/faq?{query}")["items"])
                      and found[0]["count"] == 3 and found)
        assert len(items) == 1  # the VPN question was asked once
        (item,) = items
        assert item["question"] == "연차 휴가 신청 방법" and item["collections"] == {"otel-hr": 3}
        assert item["variants"] == [{"text": "연차 휴가 신청 방법", "count": 2},
                                    {"text": "연차휴가는 어떻게 신청하나요?", "count": 1}]
        assert item["answer"] == TURNS[1][2] and item["answer_conversation_id"] == "otel-faq-2"
        assert item["avg_best_score"] == pytest.approx((0.82 + 0.91 + 0.4) / 3)
        # A stop closes the open conversations; the admin lookup then shows the answer in context.
        code, _ = receiver.daemon.terminate()
        assert code == 0
        record = until(lambda: get(f"{api}/api/admin/conversations/otel-faq-2", ADMIN_TOKEN))
        answers = [m for m in record["messages"] if m["role"] == "assistant"]
        assert [(m["content"], m["log_id"], m["feedback"]) for m in answers] == [
            (item["answer"], item["answer_log_id"], []),
        ]
    finally:
        analytics.kill()
        analytics.wait(10)
        receiver.daemon.stop_quietly()
