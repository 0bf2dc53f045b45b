"""A backend instrumented only with OpenTelemetry shows up in the statistics and the admin lookup."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from tests.ingestor.otlp.conftest import start_receiver
from tests.support.daemon import free_port

pytestmark = pytest.mark.slow
ADMIN_TOKEN = "admin-token"


def get(url: str, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as resp:
        return json.loads(resp.read())


def until(check: Any, seconds: float = 15.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        try:
            found = check()
        except OSError:
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError("not within the time allowed")
        time.sleep(0.1)


def test_an_otel_only_backend_shows_in_summary_and_admin_lookup(short_dir: Path) -> None:
    receiver = start_receiver(short_dir)
    port = free_port()
    env = {**receiver.daemon.env, "CHATLOG_API_PORT": str(port), "CHATLOG_ADMIN_TOKEN": ADMIN_TOKEN}
    analytics = subprocess.Popen([sys.executable, "-m", "analytics_api"], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    api = f"http://127.0.0.1:{port}"
    try:
        provider = TracerProvider(resource=Resource.create({"service.name": "otel-only",
                                                            "chatlog.collection_name": "otel-docs"}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=receiver.url + "/v1/traces")))
        tracer = provider.get_tracer("backend")
        for turn in range(3):
            with tracer.start_as_current_span("chat gpt-4o") as chat:
                chat.set_attribute("gen_ai.operation.name", "chat")
                chat.set_attribute("gen_ai.request.model", "gpt-4o")
                chat.set_attribute("gen_ai.conversation.id", "otel-conv-1")
                chat.set_attribute("gen_ai.usage.input_tokens", 10)
                chat.set_attribute("gen_ai.usage.output_tokens", 5)
                chat.set_attribute("gen_ai.input.messages", json.dumps(
                    [{"role": "user", "parts": [{"type": "text", "content": f"질문 {turn}"}]}]))
                chat.set_attribute("gen_ai.output.messages", json.dumps(
                    [{"role": "assistant", "parts": [{"type": "text", "content": f"답변 {turn}"}]}]))
        assert provider.force_flush(10_000)
        provider.shutdown()
        summary = until(lambda: (s := get(api + "/api/analytics/summary?collection_name=otel-docs"))
                        ["total_queries"] == 3 and s)
        assert summary["total_tokens"] == 45 and summary["unique_sessions"] == 1
        # A stop closes the open conversation; the admin lookup then finds it.
        code, _ = receiver.daemon.terminate()
        assert code == 0
        record = until(lambda: get(api + "/api/admin/conversations/otel-conv-1", ADMIN_TOKEN))
        contents = [m["content"] for m in record["messages"]]
        assert contents == ["질문 0", "답변 0", "질문 1", "답변 1", "질문 2", "답변 2"]
    finally:
        analytics.kill()
        analytics.wait(10)
        receiver.daemon.stop_quietly()
