"""The OpenAPI documents and the applications stay in sync: every route served is documented
and every documented operation is served, both documents are valid OpenAPI 3.1, and each
service answers its own at ``GET /openapi.json``."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from jsonschema_rs import Draft202012Validator

from analytics_api.app import create_app as create_analytics
from analytics_api.openapi import analytics_openapi
from ingestor.app import create_app as create_ingestor
from ingestor.openapi import ingest_openapi
from shared.settings import Settings
from tests.conftest import AiohttpClient

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def served(app: web.Application) -> set[tuple[str, str]]:
    """(method, OpenAPI path) of every route; HEAD routes aiohttp adds for each GET are implied."""
    found = set()
    for route in app.router.routes():
        resource = route.resource
        assert resource is not None
        path = resource.canonical
        if isinstance(resource, web.StaticResource):
            path = path.rstrip("/") + "/{path}"
        if route.method == "HEAD":
            continue
        found.add((route.method.lower(), path))
    return found


def documented(spec: dict[str, Any]) -> set[tuple[str, str]]:
    """(method, path) of every operation of a document."""
    return {(method, path) for path, item in spec["paths"].items() for method in item if method in METHODS}


@pytest.mark.parametrize(
    ("create", "make_spec"), [(create_ingestor, ingest_openapi), (create_analytics, analytics_openapi)],
    ids=["ingestor", "analytics"],
)
def test_every_route_is_documented_and_every_operation_served(config: Settings, create: Any, make_spec: Any) -> None:
    """The router and the document list the same operations."""
    app = create(config)
    spec = make_spec()
    assert served(app) == documented(spec)


@pytest.mark.parametrize("make_spec", [ingest_openapi, analytics_openapi], ids=["ingestor", "analytics"])
def test_documents_are_valid_openapi_31(make_spec: Any) -> None:
    """Each document passes schemathesis's OpenAPI 3.1 validation and names a response per operation."""
    import schemathesis

    spec = make_spec()
    assert spec["openapi"].startswith("3.1")
    schema = schemathesis.openapi.from_dict(spec)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len(documented(spec))
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            assert operation["responses"], f"{method} {path} documents no response"
            assert operation["operationId"]




def test_the_error_schema_describes_every_error_answer() -> None:
    """Answers built by shared/errors.py validate against the documented error schemas."""
    from shared.errors import BadParameter, Unauthorized, ValidationFailed, http_error_body

    spec = analytics_openapi()
    schemas = {k: _fix_refs(v) for k, v in spec["components"]["schemas"].items()}

    def valid(name: str, body: dict[str, Any]) -> bool:
        return Draft202012Validator({"$defs": schemas, "$ref": f"#/$defs/{name}"}).is_valid(body)

    assert valid("BadParameterError", BadParameter("top", "must be between 1 and 100").body())
    assert valid("ValidationError", ValidationFailed([{"index": 0, "path": "$", "message": "x"}]).body())
    assert valid("Error", Unauthorized("token").body())
    assert valid("Error", http_error_body(400, "Invalid method encountered"))
    assert not valid("Error", {"error": "x"})
    assert not valid("BadParameterError", Unauthorized("token").body())


def _fix_refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: (v.replace("#/components/schemas/", "#/$defs/") if k == "$ref" else _fix_refs(v))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_fix_refs(v) for v in node]
    return node


async def test_each_service_serves_its_document(aiohttp_client: AiohttpClient, config: Settings) -> None:
    """``GET /openapi.json`` answers the document of that service."""
    for create, make_spec in ((create_ingestor, ingest_openapi), (create_analytics, analytics_openapi)):
        client: TestClient[Any, Any] = await aiohttp_client(create(config))
        resp = await client.get("/openapi.json")
        assert resp.status == 200
        assert resp.content_type == "application/json"
        assert await resp.json() == make_spec()
        await client.close()
