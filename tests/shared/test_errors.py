"""One JSON error shape for every error of both services: {"error": code, "message": text, ...}."""

from __future__ import annotations

import dataclasses
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
