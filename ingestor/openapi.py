"""The ingestor's OpenAPI 3.1 document (``GET /openapi.json``).

Event and conversation bodies are the JSON Schema of ``shared/schemas.py``'s msgspec
structs, the very types the decoder validates against.
"""

from __future__ import annotations

from typing import Any

from shared.openapi import (
    JSON,
    OPENAPI_OPERATION,
    Schema,
    add_format,
    document,
    error,
    json_body,
    ref_response,
    struct_schemas,
)
from shared.wire import ConversationIn, FeedbackIn, LogEventIn

NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl")
BEARER = {"bearer": {"type": "http", "scheme": "bearer",
                     "description": "`CHATLOG_INGEST_TOKEN`, required on TCP when set; the Unix socket never "
                                    "asks for it (its file mode 0660 guards it)."}}
# No token configured is as valid a deployment as one with a token.
OPTIONAL_BEARER: list[dict[str, list[str]]] = [{}, {"bearer": []}]


def _schemas() -> tuple[Schema, Schema, Schema, dict[str, Schema]]:
    (event, conversation, feedback), schemas = struct_schemas([LogEventIn, ConversationIn, FeedbackIn])
    add_format(schemas["FeedbackIn"], "created_at", "date-time",
               "RFC 3339; without an offset it is UTC; absent = receive time. Refused (422) when more than a day "
               "in the future or older than the log retention.")
    fields = schemas["FeedbackIn"]["properties"]
    fields["feedback_id"]["description"] = "The idempotency key; a UUID is assigned when absent."
    fields["log_id"]["description"] = "The assistant answer the feedback is about."
    fields["score"]["description"] = "`1` good, `-1` bad."
    fields["comment"]["description"] = "PII-redacted before storage, like message text."
    fields["user_id"]["description"] = "Raw user id: replaced by a keyed hash before anything is stored."
    add_format(schemas["LogEventIn"], "created_at", "date-time",
               "RFC 3339; without an offset it is UTC; absent = receive time. Refused (422) when more than a day "
               "in the future or older than the log retention.")
    add_format(schemas["ConversationMessageIn"], "timestamp", "date-time", "RFC 3339; absent = receive time.")
    schemas["LogEventIn"]["properties"]["user_id"]["description"] = (
        "Raw user id: replaced by a keyed hash before anything is stored."
    )
    schemas["LogEventIn"]["properties"]["log_id"]["description"] = (
        "The idempotency key; a UUID is assigned when absent."
    )
    messages = schemas["ConversationIn"]["properties"]["messages"]
    messages["minItems"] = 1
    messages["description"] = "At least one message."
    return event, conversation, feedback, schemas


def _post(summary: str, operation_id: str, body: Schema, lines: Schema, ok: dict[str, Any],
          extra: dict[str, Any]) -> dict[str, Any]:
    # An NDJSON body is described as the array of its lines: one JSON document per line.
    ndjson = {"schema": lines | {"description": "One JSON document per line (the items of this array)."}}
    content: dict[str, Any] = {JSON: {"schema": body}, **{media: ndjson for media in NDJSON_TYPES}}
    return {
        "post": {
            "summary": summary,
            "operationId": operation_id,
            "tags": ["ingest"],
            "security": OPTIONAL_BEARER,
            "requestBody": {"required": True, "content": content},
            "responses": {
                "202": ok,
                "400": json_body({"$ref": "#/components/schemas/Error"}, (
                    "`invalid_json`: empty, not JSON or not NDJSON; `bad_request`: the body breaks its "
                    "HTTP framing or Content-Encoding, or (conversations) is not exactly one item."
                )),
                "401": ref_response("Unauthorized"),
                "413": ref_response("TooLarge"),
                "422": ref_response("ValidationFailed"),
                "503": ref_response("Unavailable"),
                **extra,
            },
        }
    }


HEALTH: Schema = {
    "type": "object",
    "required": ["status", "service", "queue_depth", "storage_error", "derived"],
    "properties": {
        "status": {"enum": ["ok", "unavailable"]},
        "service": {"const": "ingestor"},
        "queue_depth": {"type": "integer", "minimum": 0},
        "storage_error": {"type": ["string", "null"]},
        "derived": {
            "type": "object",
            "description": "The derived-state process (statistics, sessions, conversations); it never blocks storing.",
            "required": ["running", "lag_bytes", "restarts"],
            "properties": {
                "running": {"type": "boolean"},
                "lag_bytes": {"type": "integer", "minimum": 0},
                "restarts": {"type": "integer", "minimum": 0},
            },
        },
    },
}

METRICS = {
    "get": {
        "summary": "Prometheus metrics",
        "operationId": "metrics",
        "tags": ["meta"],
        "responses": {"200": {"description": "Prometheus text exposition format 0.0.4.",
                              "content": {"text/plain": {"schema": {"type": "string"}}}}},
    }
}


def ingest_openapi() -> dict[str, Any]:
    """The ingestor's whole document."""
    event, conversation, feedback, schemas = _schemas()
    accepted = json_body(
        {"type": "object", "required": ["accepted"],
         "properties": {"accepted": {"type": "integer", "minimum": 0}}},
        "Every event is written and fsynced (a retried log_id is counted once).",
    )
    judged = json_body(
        {"type": "object", "required": ["saved", "reason"],
         "properties": {"saved": {"type": "boolean"}, "reason": {"type": "string"}}},
        "Judged by the sampling rules; when saved, written and fsynced.",
    )
    paths = {
        "/v1/logs": _post(
            "Store log events", "post_logs",
            {"oneOf": [event, {"type": "array", "items": event}]},
            {"type": "array", "items": event, "minItems": 1}, accepted, {},
        ),
        "/v1/feedback": _post(
            "Store feedback on answers", "post_feedback",
            {"oneOf": [feedback, {"type": "array", "items": feedback}]},
            {"type": "array", "items": feedback, "minItems": 1},
            json_body(
                {"type": "object", "required": ["accepted"],
                 "properties": {"accepted": {"type": "integer", "minimum": 0}}},
                "Every item is written and fsynced (a retried feedback_id is counted once).",
            ), {},
        ),
        "/v1/conversations": _post(
            "Store a whole conversation", "post_conversation",
            {"oneOf": [conversation, {"type": "array", "items": conversation, "minItems": 1, "maxItems": 1}]},
            {"type": "array", "items": conversation, "minItems": 1, "maxItems": 1}, judged, {},
        ),
        "/healthz": {
            "get": {
                "summary": "Whether the ingestor can store",
                "operationId": "healthz",
                "tags": ["meta"],
                "responses": {
                    "200": json_body(HEALTH, "It can store."),
                    "503": json_body(HEALTH, "It cannot store now (storage_error says why)."),
                },
            }
        },
        "/metrics": METRICS,
        "/openapi.json": OPENAPI_OPERATION,
        "/v1/admin/erase-user": {
            "post": {
                "summary": "Erase one user while the ingestor runs (Unix socket only)",
                "description": "Used by `chatlog erase-user`. Over TCP it always answers 403.",
                "operationId": "post_erase_user",
                "tags": ["admin"],
                "requestBody": {"required": True, "content": {JSON: {"schema": {
                    "type": "object", "required": ["user_hash"], "additionalProperties": False,
                    "properties": {"user_hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"}},
                }}}},
                "responses": {
                    "200": json_body({"type": "object"}, "What the erasure removed."),
                    "400": error("`bad_request`: not `{\"user_hash\": \"<64 hex digits>\"}`."),
                    "403": error("`forbidden`: not on the Unix socket."),
                    "413": ref_response("TooLarge"),
                },
            }
        },
    }
    return document(
        "chatlog ingestor",
        "Durable ingest of chat log events and conversations: every 202 comes after fsync. "
        "Every error answers `{\"error\": code, \"message\": text}` (some add fields). Each GET also "
        "answers HEAD; other methods on a known path answer 405 with `Allow`.",
        paths, schemas, BEARER,
    )
