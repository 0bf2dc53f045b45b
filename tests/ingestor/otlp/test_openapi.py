"""The receiver's OpenAPI document lists exactly what its router serves, and is valid 3.1."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from ingestor.app import create_app
from ingestor.otlp.app import create_otlp_app
from ingestor.otlp.openapi import otlp_openapi
from shared.settings import Settings
from tests.conftest import AiohttpClient
from tests.shared.test_openapi import documented, served


def test_every_route_is_documented_and_every_operation_served(config: Settings) -> None:
    app = create_otlp_app(config, create_app(config))
    assert served(app) == documented(otlp_openapi()) == {
        ("post", "/v1/traces"), ("post", "/v1/logs"), ("get", "/openapi.json")}


def test_the_document_is_valid_openapi_31() -> None:
    import schemathesis

    spec = otlp_openapi()
    schema = schemathesis.openapi.from_dict(spec)
    assert len([result.ok() for result in schema.get_all_operations()]) == 3


async def test_the_receiver_serves_its_document(aiohttp_client: AiohttpClient, config: Settings) -> None:
    client: TestClient[Any, Any] = await aiohttp_client(create_otlp_app(config, create_app(config)))
    resp = await client.get("/openapi.json")
    assert resp.status == 200
    assert await resp.json() == otlp_openapi()
