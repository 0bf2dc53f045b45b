"""Building blocks of both services' OpenAPI 3.1 documents, served at ``GET /openapi.json``.

Bodies that are msgspec structs (events, conversations, the analytics answers) are
described by JSON Schema generated from those structs, so the document cannot drift from
what the decoder accepts or the encoder writes. Every error of both services has the one
shape of ``shared/errors.py``; the components below describe it once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec
from aiohttp import web

OPENAPI_VERSION = "3.1.0"
REF = "#/components/schemas/{name}"
JSON = "application/json"

Schema = dict[str, Any]

ERROR_SCHEMAS: dict[str, Schema] = {
    "Error": {
        "title": "Error",
        "description": "The one shape of every error of both services; some errors add fields.",
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {"type": "string", "description": "A stable machine-readable code.", "minLength": 1},
            "message": {"type": "string", "description": "What went wrong, for a person.", "minLength": 1},
        },
    },
    "BadParameterError": {
        "title": "BadParameterError",
        "description": "A query parameter is missing or malformed; `parameter` names it.",
        "allOf": [
            {"$ref": REF.format(name="Error")},
            {
                "type": "object",
                "required": ["parameter"],
                "properties": {"error": {"const": "bad_parameter"}, "parameter": {"type": "string"}},
            },
        ],
    },
    "ValidationError": {
        "title": "ValidationError",
        "description": "One or more items break the schema; nothing of the request was stored.",
        "allOf": [
            {"$ref": REF.format(name="Error")},
            {
                "type": "object",
                "required": ["errors"],
                "properties": {
                    "error": {"const": "validation_failed"},
                    "errors": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["index", "path", "message"],
                            "properties": {
                                "index": {"type": "integer", "minimum": 0, "description": "Item in the body."},
                                "path": {"type": "string", "description": "JSON path, e.g. `$.performance`."},
                                "message": {"type": "string"},
                            },
                        },
                    },
                },
            },
        ],
    },
}


def error_content(schema: str = "Error") -> dict[str, Any]:
    """The ``content`` of an error answer."""
    return {JSON: {"schema": {"$ref": REF.format(name=schema)}}}


def error(description: str, schema: str = "Error", headers: dict[str, Any] | None = None) -> dict[str, Any]:
    """One error response object."""
    response: dict[str, Any] = {"description": description, "content": error_content(schema)}
    if headers:
        response["headers"] = headers
    return response


RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}}
CHALLENGE = {"WWW-Authenticate": {"description": "`Bearer realm=\"chatlog\"`", "schema": {"type": "string"}}}

ERROR_RESPONSES: dict[str, Any] = {
    "BadParameter": error("A query parameter is malformed or out of range; `parameter` names it.",
                          "BadParameterError"),
    "Unauthorized": error("The bearer token is missing or wrong.", headers=CHALLENGE),
    "NotFound": error("No such resource."),
    "TooLarge": error("The body is over the configured limit (`CHATLOG_MAX_BODY_BYTES`)."),
    "Unavailable": error("Overloaded or storage failing; nothing was stored. Retry after `Retry-After` seconds.",
                         headers=RETRY_AFTER),
    "ValidationFailed": error("Items break the schema; the list names each (index, JSON path, reason) and "
                              "nothing of the request was stored.", "ValidationError"),
}


def ref_response(name: str) -> dict[str, str]:
    """A reference to one of ``ERROR_RESPONSES``."""
    return {"$ref": f"#/components/responses/{name}"}


def json_body(schema: Schema, description: str) -> dict[str, Any]:
    """A response with a JSON body."""
    return {"description": description, "content": {JSON: {"schema": schema}}}


def struct_schemas(
    types: Iterable[Any], *, outputs: Iterable[str] = ()
) -> tuple[tuple[Schema, ...], dict[str, Schema]]:
    """References to and components of msgspec types.

    The encoder writes every field of an answer (none of those structs omits defaults), so
    the structs named in ``outputs`` get every property required, which the generated
    schema, describing what the decoder accepts, leaves out for fields with defaults.
    """
    refs, components = msgspec.json.schema_components(list(types), ref_template=REF)
    for name in outputs:
        component = components[name]
        component["required"] = list(component["properties"])
    return refs, components


def add_format(component: Schema, field: str, fmt: str, description: str | None = None) -> None:
    """Add a string ``format`` (msgspec leaves datetimes unannotated) to one property."""
    prop = component["properties"][field]
    for branch in prop.get("anyOf", [prop]):
        if branch.get("type") == "string":
            branch["format"] = fmt
    if description:
        prop["description"] = description


def document(
    title: str, description: str, paths: dict[str, Any], schemas: dict[str, Schema],
    security_schemes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A whole OpenAPI 3.1 document with the shared error components."""
    components: dict[str, Any] = {
        "schemas": {**ERROR_SCHEMAS, **schemas},
        "responses": ERROR_RESPONSES,
    }
    if security_schemes:
        components["securitySchemes"] = security_schemes
    return {
        "openapi": OPENAPI_VERSION,
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "info": {"title": title, "version": "1", "description": description},
        "paths": paths,
        "components": components,
    }


OPENAPI_OPERATION = {
    "get": {
        "summary": "This OpenAPI 3.1 document",
        "operationId": "openapi",
        "tags": ["meta"],
        "responses": {"200": json_body({"type": "object", "required": ["openapi", "paths"]}, "The document.")},
    }
}


def openapi_handler(spec: dict[str, Any]) -> Any:
    """A ``GET /openapi.json`` handler answering ``spec``, encoded once."""
    body = msgspec.json.encode(spec)

    async def openapi_json(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type=JSON)

    return openapi_json


