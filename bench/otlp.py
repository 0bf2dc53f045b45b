"""OTLP benchmark: GenAI spans/s into durable storage against ``/v1/logs`` events/s, one run.

Run: ``python -m bench.otlp``. One ingestor with its OTLP/HTTP receiver; 8 requests in
flight on each side:

- otlp: protobuf ``ExportTraceServiceRequest``s of 50 chat spans each (current conventions:
  input/output messages as JSON text, model, usage, session), each span two stored events;
- logs: NDJSON bodies of 100 events on ``POST /v1/logs``, the same number of events per request.

Every answer comes after fsync, so both figures are durable throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import aiohttp
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from bench.ingest import SECRET, _free_port, _wait_healthy, ndjson_bodies

SPANS_PER_REQUEST = 50


def _attribute(key: str, value: str | int) -> KeyValue:
    any_value = AnyValue(string_value=value) if isinstance(value, str) else AnyValue(int_value=value)
    return KeyValue(key=key, value=any_value)


def otlp_bodies(requests: int, seed: int) -> list[bytes]:
    """Protobuf trace exports of chat spans with realistic text."""
    rng = random.Random(seed)
    now = time.time_ns()
    bodies = []
    for _ in range(requests):
        export = ExportTraceServiceRequest()
        resource_spans = export.resource_spans.add()
        resource_spans.resource.attributes.extend([_attribute("service.name", "bench"),
                                                   _attribute("chatlog.collection_name", "hr-docs")])
        scope = resource_spans.scope_spans.add()
        for _ in range(SPANS_PER_REQUEST):
            span = scope.spans.add()
            span.trace_id = secrets.token_bytes(16)
            span.span_id = secrets.token_bytes(8)
            span.name = "chat gpt-4o"
            span.start_time_unix_nano = now
            span.end_time_unix_nano = now + rng.randrange(200, 3000) * 1_000_000
            question = f"연차 휴가 신청은 어떻게 하나요? {rng.randrange(10**6)}"
            answer = "인사 시스템의 휴가 메뉴에서 신청하세요. " * rng.randrange(1, 8)
            span.attributes.extend([
                _attribute("gen_ai.operation.name", "chat"),
                _attribute("gen_ai.request.model", "gpt-4o"),
                _attribute("gen_ai.usage.input_tokens", rng.randrange(50, 900)),
                _attribute("gen_ai.usage.output_tokens", rng.randrange(20, 400)),
                _attribute("session.id", f"s-{rng.randrange(5000)}"),
                _attribute("user.id", f"user-{rng.randrange(5000)}"),
                _attribute("gen_ai.input.messages", json.dumps(
                    [{"role": "user", "parts": [{"type": "text", "content": question}]}], ensure_ascii=False)),
                _attribute("gen_ai.output.messages", json.dumps(
                    [{"role": "assistant", "parts": [{"type": "text", "content": answer}]}], ensure_ascii=False)),
            ])
        bodies.append(export.SerializeToString())
    return bodies


async def drive(url: str, bodies: Sequence[bytes], content_type: str, ok: int, in_flight: int = 8) -> float:
    """Post every body with ``in_flight`` concurrent requests (503s retried); seconds taken."""
    queue: Iterator[bytes] = iter(bodies)

    async def worker(session: aiohttp.ClientSession) -> None:
        for body in queue:
            while True:
                async with session.post(url, data=body, headers={"Content-Type": content_type}) as resp:
                    await resp.read()
                    if resp.status == ok:
                        break
                    if resp.status != 503:
                        raise RuntimeError(f"unexpected {resp.status}")
                    await asyncio.sleep(0.01)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=in_flight)) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(in_flight)))
        return time.perf_counter() - started


async def main_async(requests: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="clbench"))
    port, otlp_port = _free_port(), _free_port()
    env = {"CHATLOG_DATA_DIR": str(folder), "CHATLOG_INGEST_PORT": str(port), "CHATLOG_INGEST_SOCKET": "",
           "CHATLOG_OTLP_PORT": str(otlp_port), "CHATLOG_USER_HASH_SECRET": SECRET, "CHATLOG_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([sys.executable, "-m", "ingestor"], env={**os.environ, **env})
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/healthz", proc)
        _wait_healthy(f"http://127.0.0.1:{otlp_port}/openapi.json", proc)
        spans = otlp_bodies(requests, 1)
        logs = ndjson_bodies(requests, SPANS_PER_REQUEST * 2, 2)
        # Warm both paths, then alternate so neither gets the quieter half of the run.
        await drive(f"http://127.0.0.1:{otlp_port}/v1/traces", otlp_bodies(4, 3), "application/x-protobuf", 200)
        await drive(f"http://127.0.0.1:{port}/v1/logs", ndjson_bodies(4, 100, 4), "application/x-ndjson", 202)
        half = requests // 2
        otlp_seconds = logs_seconds = 0.0
        for part in (slice(0, half), slice(half, requests)):
            otlp_seconds += await drive(f"http://127.0.0.1:{otlp_port}/v1/traces", spans[part],
                                        "application/x-protobuf", 200)
            logs_seconds += await drive(f"http://127.0.0.1:{port}/v1/logs", logs[part], "application/x-ndjson", 202)
        span_count = requests * SPANS_PER_REQUEST
        print(f"otlp: {span_count} chat spans ({2 * span_count} events) in {otlp_seconds:.2f} s = "
              f"{span_count / otlp_seconds:,.0f} spans/s ({2 * span_count / otlp_seconds:,.0f} events/s), durable")
        print(f"/v1/logs: {2 * span_count} events in {logs_seconds:.2f} s = "
              f"{2 * span_count / logs_seconds:,.0f} events/s, durable")
        print(f"otlp events/s as a share of /v1/logs: {logs_seconds / otlp_seconds:.0%}")
    finally:
        proc.terminate()
        proc.wait(60)
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200, help="requests on each side")
    args = parser.parse_args(argv)
    asyncio.run(main_async(args.requests))


if __name__ == "__main__":
    main()
