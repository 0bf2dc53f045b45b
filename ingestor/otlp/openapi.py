"""The OpenAPI 3.1 document of the OTLP/HTTP receiver (``GET /openapi.json`` on its port).

The bodies themselves are OTLP's (``ExportTraceServiceRequest``, ``ExportLogsServiceRequest``
of opentelemetry-proto, in protobuf or OTLP/JSON); they are described here, not re-specified.
"""

from __future__ import annotations

from typing import Any

from shared.openapi import JSON, OPENAPI_OPERATION, RETRY_AFTER, Schema, document

PROTOBUF = "application/x-protobuf"
BEARER = {"bearer": {"type": "http", "scheme": "bearer",
                     "description": "`CHATLOG_INGEST_TOKEN`, required when set "
                                    "(`OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer%20<token>`)."}}
STATUS: Schema = {
    "type": "object",
    "required": ["code", "message"],
    "description": "A google.rpc.Status in OTLP/JSON, with chatlog's `error` code.",
    "properties": {"code": {"type": "integer"}, "message": {"type": "string"}, "error": {"type": "string"}},
}


def _status(description: str, retry: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {JSON: {"schema": STATUS},
                    PROTOBUF: {"schema": {"type": "string", "format": "binary",
                                          "description": "A protobuf google.rpc.Status."}}},
    }
    if retry:
        response["headers"] = RETRY_AFTER
    return response


def _export(summary: str, operation_id: str, request: str, rejected_field: str, what: str) -> dict[str, Any]:
    partial = {"type": "object", "properties": {
        rejected_field: {"type": ["integer", "string"], "description": f"{what} rejected (not stored)."},
        "errorMessage": {"type": "string"},
    }}
    return {"post": {
        "summary": summary,
        "operationId": operation_id,
        "description": f"An OTLP/HTTP `{request}`, protobuf or OTLP/JSON, optionally `Content-Encoding: gzip`. "
                       "GenAI spans and log records become chatlog events, fsynced before the answer; the rest is "
                       "ignored.",
        "tags": ["otlp"],
        "security": [{}, {"bearer": []}],
        "requestBody": {"required": True, "content": {
            PROTOBUF: {"schema": {"type": "string", "format": "binary", "description": f"A protobuf {request}."}},
            JSON: {"schema": {"type": "object", "description": f"An OTLP/JSON {request} (hex trace and span ids)."}},
        }},
        "responses": {
            "200": {"description": "Stored (or ignored: no GenAI data); `partialSuccess` counts what was rejected.",
                    "content": {JSON: {"schema": {"type": "object", "properties": {"partialSuccess": partial}}},
                                PROTOBUF: {"schema": {"type": "string", "format": "binary"}}}},
            "400": _status("Not an OTLP request of this endpoint, or a broken body; do not retry."),
            "401": _status("The ingest token is missing or wrong."),
            "413": _status("The body is over `CHATLOG_MAX_BODY_BYTES` (also once decompressed)."),
            "415": _status("Neither application/x-protobuf nor application/json."),
            "503": _status("Overloaded or storage failing; nothing was stored. Retry after `Retry-After`.", True),
        },
    }}


def otlp_openapi() -> dict[str, Any]:
    """The receiver's whole document."""
    paths = {
        "/v1/traces": _export("Receive an OTLP trace export", "otlp_traces", "ExportTraceServiceRequest",
                              "rejectedSpans", "Spans"),
        "/v1/logs": _export("Receive an OTLP log export", "otlp_logs", "ExportLogsServiceRequest",
                            "rejectedLogRecords", "Log records"),
        "/openapi.json": OPENAPI_OPERATION,
    }
    return document(
        "chatlog OTLP/HTTP receiver",
        "OpenTelemetry GenAI spans and log records as chatlog events (CHATLOG_OTLP_PORT, default 4318).",
        paths, {}, BEARER,
    )
