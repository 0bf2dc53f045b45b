"""One JSON error shape for every error of both services: {"error": code, "message": text, ...}."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from ingestor.app import create_app as create_ingestor
from shared.settings import Settings
from tests.conftest import AiohttpClient


async def assert_error_shape(resp: Any, status: int, code: str) -> dict[str, Any]:
    """The answer has the status, a JSON body with the error code and a human message."""
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/json"
    body = await resp.json()
    assert body["error"] == code
    assert isinstance(body["message"], str) and body["message"]
    return dict(body)


INGEST_CASES = [
    ("GET", "/nope", {}, 404, "not_found"),
    ("GET", "/v1/logs", {}, 405, "method_not_allowed"),
    ("POST", "/v1/logs", {"data": b"{", "headers": {"Content-Type": "application/json"}}, 400, "invalid_json"),
    ("POST", "/v1/logs", {"json": {"session_id": "s"}}, 422, "validation_failed"),
    ("POST", "/v1/logs", {"data": b"x" * 5000, "headers": {"Content-Type": "application/json"}}, 413, "too_large"),
    ("POST", "/v1/conversations", {"json": [{}, {}]}, 422, "validation_failed"),
]


@pytest.fixture
async def ingest(aiohttp_client: AiohttpClient, config: Settings) -> TestClient[Any, Any]:
    """An ingestor with a small body limit and a TCP token."""
    settings = dataclasses.replace(config, max_body_bytes=4096, ingest_token="tok")
    return await aiohttp_client(create_ingestor(settings))


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "code"), INGEST_CASES)
async def test_ingestor_errors(
    ingest: TestClient[Any, Any], method: str, path: str, kwargs: dict[str, Any], status: int, code: str
) -> None:
    """Each ingest failure answers the one error shape with its status and code."""
    headers = {"Authorization": "Bearer tok", **kwargs.pop("headers", {})}
    resp = await ingest.request(method, path, headers=headers, **kwargs)
    await assert_error_shape(resp, status, code)


async def test_ingestor_unauthorized(ingest: TestClient[Any, Any]) -> None:
    """A missing token answers 401 in the same shape, with a WWW-Authenticate challenge."""
    resp = await ingest.post("/v1/logs", json={})
    await assert_error_shape(resp, 401, "unauthorized")
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


async def test_validation_errors_carry_their_list(ingest: TestClient[Any, Any]) -> None:
    """422 keeps the shape and adds the per-event error list."""
    resp = await ingest.post("/v1/logs", json=[{"session_id": ""}], headers={"Authorization": "Bearer tok"})
    body = await assert_error_shape(resp, 422, "validation_failed")
    assert body["errors"][0]["index"] == 0


# aiohttp's protocol layer answers these before any middleware runs; raw bytes over a real socket
# to the services as shared/serving.py runs them.
RAW_CASES = [
    ("url_too_long", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request"),
    ("bad_method", b"G@T /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request"),
    ("unknown_method", b"FROB /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request"),
    ("malformed_header", b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400, "bad_request"),
    ("header_too_long", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 9000 + b"\r\n\r\n", 400,
     "bad_request"),
    ("bad_version", b"GET /healthz HTTP/9.x\r\nHost: x\r\n\r\n", 400, "bad_request"),
    ("not_http", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400, "bad_request"),
    ("no_host", b"GET /healthz HTTP/1.1\r\n\r\n", 400, "bad_request"),
    ("bad_chunk_size", b"POST /v1/logs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
     b"Content-Type: application/json\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", 400, "bad_request"),
    ("bad_chunk_later", b"POST /v1/logs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
     b"Content-Type: application/json\r\n\r\n2\r\n{}\r\nzz\r\n", 400, "bad_request"),
    ("length_and_chunked", b"POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "bad_request"),
    ("bad_length", b"POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400, "bad_request"),
    ("nul_in_path", b"GET /he\x00althz HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request"),
]


@pytest.fixture
async def served(config: Settings) -> AsyncIterator[dict[str, int]]:
    """Both services started as ``shared.serving`` starts them, on free loopback ports."""
    from analytics_api.app import create_app as create_analytics
    from shared.serving import Listener, start

    settings = dataclasses.replace(config, ingest_socket="")
    runners = await start([
        Listener("ingestor", create_ingestor(settings), "127.0.0.1", 0),
        Listener("analytics", create_analytics(settings), "127.0.0.1", 0),
    ])
    try:
        yield {"ingestor": runners[0].addresses[0][1], "analytics": runners[1].addresses[0][1]}
    finally:
        for runner in reversed(runners):
            await runner.cleanup()


async def raw_exchange(port: int, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes, read the answer until the server closes: status, headers, body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


async def test_protocol_errors_answer_the_json_shape(served: dict[str, int]) -> None:
    """What aiohttp's HTTP parser refuses gets the one JSON shape, not aiohttp's plain text."""
    wrong = []
    for service, port in served.items():
        for name, data, status, code in RAW_CASES:
            got, headers, body = await raw_exchange(port, data)
            answer: Any = None
            if headers.get("content-type", "").startswith("application/json"):
                answer = json.loads(body[: int(headers["content-length"])])
            if got != status or not isinstance(answer, dict) or answer.get("error") != code or not (
                isinstance(answer.get("message"), str) and answer["message"]
            ):
                wrong.append(f"{service} {name}: {got} {headers.get('content-type')} {body[:120]!r}")
    assert not wrong, "\n".join(wrong)


async def test_static_files_missing_and_present(served: dict[str, int]) -> None:
    """A path under /static/ that names no file is a JSON 404, not aiohttp's empty one; files still serve."""
    for path in ("/static/missing.js", "/static/vendor", "/static/vendor/uplot/none.css", "/static/a%00b",
                 "/static/" + "n" * 300):
        request = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
        status, headers, body = await raw_exchange(served["analytics"], request)
        assert status == 404, path
        assert headers["content-type"].startswith("application/json"), path
        assert json.loads(body)["error"] == "not_found"
    request = b"GET /static/app.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    status, headers, body = await raw_exchange(served["analytics"], request)
    assert status == 200
    assert "javascript" in headers["content-type"]
    assert len(body) > 100


async def test_body_that_breaks_its_content_encoding_answers_400(served: dict[str, int]) -> None:
    """A body aiohttp cannot inflate fails inside the handler's read: the client's 400, not a 500."""
    request = (b"POST /grafana/query HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Encoding: deflate\r\nContent-Length: 8\r\nConnection: close\r\n\r\nnot-zlib")
    status, headers, body = await raw_exchange(served["analytics"], request)
    assert status == 400, body
    assert headers["content-type"].startswith("application/json")
    answer = json.loads(body)
    assert answer["error"] == "bad_request"
    assert "cannot be read" in answer["message"]


async def test_client_faults_leave_no_error_in_the_log(
    served: dict[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    """Malformed requests and bodies cut short are the client's doing: nothing at ERROR, no traceback."""
    caplog.set_level(logging.DEBUG)
    for port in served.values():
        for _, data, _, _ in RAW_CASES:
            await raw_exchange(port, data)
        # A body cut short: the client closes after 10 of its 100 bytes.
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n[{\"a\": 1, ")
        await writer.drain()
        writer.close()
        await writer.wait_closed()
    await asyncio.sleep(0.5)
    loud = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not loud, [(r.name, r.getMessage()) for r in loud]
