"""The analytics API's OpenAPI 3.1 document (``GET /openapi.json``).

Answers that are msgspec structs (summary, timeline, collections, conversation records) are
described by JSON Schema generated from those structs; parameter bounds come from the
constants the handlers check against. The Grafana datasource is in ``openapi_grafana``.
"""

from __future__ import annotations

from typing import Any

from analytics_api import params
from analytics_api.admin import MAX_LIMIT
from analytics_api.alerts import MAX_ITEMS, Alerts
from analytics_api.collections import Collections
from analytics_api.faq import DEFAULT_LIMIT as DEFAULT_FAQ_LIMIT
from analytics_api.faq import MAX_LIMIT as MAX_FAQ_LIMIT
from analytics_api.openapi_grafana import grafana_paths
from analytics_api.summary import DEFAULT_DAYS, DEFAULT_TOP
from analytics_api.timeline import PERIODS, Timeline
from analytics_api.transcript import Transcript
from chat_statistics.quality_reads import Quality
from chat_statistics.reads import Summary
from insights.faq import Faq
from insights.report.build import MAX_DAYS as REPORT_MAX_DAYS
from insights.report.model import Report
from insights.report.render import FORMATS as REPORT_FORMATS
from insights.suggestions import Suggestions
from shared.openapi import (
    OPENAPI_OPERATION,
    Schema,
    add_format,
    document,
    error,
    json_body,
    ref_response,
    struct_schemas,
)

ADMIN_BEARER = {"adminBearer": {"type": "http", "scheme": "bearer", "description": "`CHATLOG_ADMIN_TOKEN`."}}
DATE: Schema = {"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"}
# The contract's URLs leave parameters empty (`?collection_name=&date_from=`): empty = absent.
EMPTY: Schema = {"const": ""}


# Every field of these answers is always written.
QUALITY_OUTPUTS = (
    "Quality",
    "HistogramBucket",
    "RegenerationRates",
    "Reranking",
    "RerankSide",
    "FeedbackCountsOut",
    "CollectionQuality",
    "KnowledgeGap",
    "Variant",
)


def optional(schema: Schema) -> Schema:
    """A query parameter's schema that also takes the empty value."""
    return {"anyOf": [schema, EMPTY]}


def query(name: str, schema: Schema, description: str) -> dict[str, Any]:
    """One optional query parameter (an empty value means the same as leaving it out)."""
    return {"name": name, "in": "query", "required": False, "schema": optional(schema), "description": description}


COLLECTION = query(
    "collection_name", {"type": "string", "maxLength": 128}, "One collection; absent or empty = all collections."
)
DATE_FROM = query(
    "date_from",
    DATE,
    f"First day (CHATLOG_TIMEZONE), inclusive; default date_to - {DEFAULT_DAYS - 1} days. Must not be after date_to.",
)
DATE_TO = query("date_to", DATE, "Last day (CHATLOG_TIMEZONE), inclusive; default today.")


def _get(
    summary: str, operation_id: str, tag: str, parameters: list[dict[str, Any]], responses: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    operation = {"summary": summary, "operationId": operation_id, "tags": [tag], "responses": responses, **extra}
    if parameters:
        operation["parameters"] = parameters
    return {"get": operation}


def _schemas() -> tuple[tuple[Schema, ...], dict[str, Schema]]:
    refs, schemas = struct_schemas(
        [Summary, Timeline, Collections, Transcript, Alerts, Quality, Faq, Suggestions, Report],
        outputs=[
            "Summary",
            "TopQueryOut",
            "Timeline",
            "Point",
            "Collections",
            "CollectionOut",
            "Transcript",
            "TranscriptMessage",
            "AnswerFeedback",
            "Alerts",
            "AlertOut",
            *QUALITY_OUTPUTS,
            "Faq",
            "FaqItem",
            "Suggestions",
            "Suggestion",
            "Report",
            "DayPoint",
            "ReviewConversation",
        ],
    )
    for name in ("date_from", "date_to"):
        schemas["Quality"]["properties"][name] = DATE
    schemas["Quality"]["properties"]["knowledge_gaps_pending"]["description"] = (
        "True while this range's question groups are still being computed in the background "
        "(the first request of a range this process has not grouped yet): knowledge_gaps is then "
        "empty for now; ask again in a few seconds. The rest of the answer is complete."
    )
    add_format(schemas["Point"], "start", "date-time", "Start of the bucket (RFC 3339, CHATLOG_TIMEZONE).")
    for field in ("first_seen", "last_seen"):
        add_format(schemas["CollectionOut"], field, "date-time")
    for field in ("started_at", "last_message_at", "closed_at"):
        add_format(schemas["Transcript"], field, "date-time")
    add_format(schemas["TranscriptMessage"], "timestamp", "date-time")
    add_format(schemas["AlertOut"], "started_at", "date-time", "When it started firing (RFC 3339, UTC).")
    add_format(schemas["AlertOut"], "resolved_at", "date-time", "When it resolved (RFC 3339, UTC); null while firing.")
    schemas["AlertOut"]["properties"]["state"] = {"enum": ["firing", "resolved"]}
    schemas["AlertOut"]["properties"]["rule"] = {
        "enum": ["error_rate", "latency_p95", "low_score_rate", "volume_drop", "storage_unavailable"]
    }
    schemas["Timeline"]["properties"]["period"] = {"enum": list(PERIODS)}
    for name in ("date_from", "date_to"):
        schemas["Summary"]["properties"][name] = DATE
    schemas["ConversationListItem"] = CONVERSATION_ITEM
    return refs, schemas


CONVERSATION_ITEM: Schema = {
    "title": "ConversationListItem",
    "type": "object",
    "required": [
        "conversation_id",
        "collection_name",
        "user_hash",
        "started_at",
        "last_message_at",
        "total_turns",
        "retention_priority",
        "summary",
        "has_error",
    ],
    "properties": {
        "conversation_id": {"type": "string"},
        "collection_name": {"type": "string"},
        "user_hash": {"type": ["string", "null"]},
        "started_at": {"type": "string", "format": "date-time"},
        "last_message_at": {"type": "string", "format": "date-time"},
        "total_turns": {"type": "integer", "minimum": 0},
        "retention_priority": {"enum": ["high", "medium", "low"]},
        "summary": {"type": "string"},
        "has_error": {"type": "boolean"},
    },
}
HEALTH: Schema = {
    "type": "object",
    "required": ["status", "service", "database", "store"],
    "properties": {
        "status": {"const": "ok"},
        "service": {"const": "analytics"},
        "database": {"enum": ["ready", "not created yet"]},
        "store": {
            "enum": ["sqlite", "postgresql"],
            "description": "Where it reads: the SQLite file (CHATLOG_DB_PATH) or PostgreSQL (CHATLOG_DATABASE_URL).",
        },
    },
}
ADMIN_ERRORS = {
    "401": ref_response("Unauthorized"),
    "403": error("Admin endpoints are off: no CHATLOG_ADMIN_TOKEN is configured."),
}
HTML = {"text/html": {"schema": {"type": "string"}}}


def _admin_paths(record: Schema) -> dict[str, Any]:
    admin: dict[str, Any] = {"security": [{"adminBearer": []}]}
    boolean = {"type": "string", "pattern": "^([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|[Yy][Ee][Ss]|[Nn][Oo]|1|0)$"}
    listing = {
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/ConversationListItem"}},
            "next_cursor": {"type": ["string", "null"], "description": "Pass as `cursor` for the next page."},
        },
    }
    return {
        "/api/admin/conversations": _get(
            "Conversations, newest first, cursor-paginated",
            "list_conversations",
            "admin",
            [
                COLLECTION,
                query("user_hash", {"type": "string", "maxLength": 128}, "One user's (keyed hash)."),
                DATE_FROM | {"description": "Last message on or after this day (CHATLOG_TIMEZONE)."},
                DATE_TO | {"description": "Last message on or before this day (CHATLOG_TIMEZONE)."},
                query("has_error", boolean, "true/false (also yes/no, 1/0, any case); empty = both."),
                query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 50}, "Page size."),
                query("cursor", {"type": "string"}, "The `next_cursor` of the previous page."),
            ],
            {
                "200": json_body(listing, "One page."),
                "400": ref_response("BadParameter"),
                **ADMIN_ERRORS,
                "503": ref_response("Unavailable"),
            },
            **admin,
        ),
        "/api/admin/conversations/{conversation_id}": _get(
            "The newest full record of one conversation",
            "get_conversation",
            "admin",
            [{"name": "conversation_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            {
                "200": json_body(record, "The newest record (guide §3.2), each answer with its feedback."),
                **ADMIN_ERRORS,
                "404": ref_response("NotFound"),
                "503": ref_response("Unavailable"),
            },
            **admin,
        ),
    }


def _dashboard_paths() -> dict[str, Any]:
    page = {"200": {"description": "The page (no inline script; it asks for the admin token itself).", "content": HTML}}
    return {
        "/": _get("The analytics dashboard", "dashboard", "dashboard", [], page),
        "/admin/conversations": _get("The conversation browser (admin)", "dashboard_admin", "dashboard", [], page),
        "/static/{path}": _get(
            "Scripts, styles and the vendored chart library of the pages",
            "static",
            "dashboard",
            [
                {
                    "name": "path",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                    "description": "A file under analytics_api/static (may contain `/`).",
                }
            ],
            {
                "200": {"description": "The file.", "content": {"*/*": {"schema": {}}}},
                "403": error("The file cannot be read."),
                "404": ref_response("NotFound"),
            },
        ),
    }


def analytics_openapi() -> dict[str, Any]:
    """The analytics API's whole document."""
    (summary, timeline, collections, record, alerts, quality, faq, suggestions, report), schemas = _schemas()
    bad = {"400": ref_response("BadParameter"), "503": ref_response("Unavailable")}
    paths: dict[str, Any] = {
        "/api/analytics/summary": _get(
            "Totals, rates, percentiles and top queries over a date range",
            "summary",
            "analytics",
            [
                COLLECTION,
                DATE_FROM,
                DATE_TO,
                query(
                    "top",
                    {"type": "integer", "minimum": 1, "maximum": params.MAX_TOP, "default": DEFAULT_TOP},
                    "How many top queries.",
                ),
            ],
            {"200": json_body(summary, "The summary (zeros before the first event)."), **bad},
        ),
        "/api/analytics/timeline": _get(
            "One point per day or hour, oldest first, empty buckets included",
            "timeline",
            "analytics",
            [
                COLLECTION,
                query("period", {"enum": list(PERIODS), "default": "daily"}, "Bucket size."),
                query(
                    "days",
                    {"type": "integer", "minimum": 1, "maximum": params.MAX_DAYS, "default": 7},
                    "Days back from today (hourly: 24 points a day).",
                ),
            ],
            {"200": json_body(timeline, "The timeline."), **bad},
        ),
        "/api/analytics/quality": _get(
            "Retrieval quality: best-score distribution, low-score and no-result rates, regeneration, "
            "reranking, feedback, per collection, knowledge gaps (never waits for the question grouping: "
            "see knowledge_gaps_pending; the gaps may lag new events by a regrouping, a few seconds)",
            "quality",
            "analytics",
            [COLLECTION, DATE_FROM, DATE_TO],
            {"200": json_body(quality, "The quality answer (zeros and nulls before the first answer)."), **bad},
        ),
        "/api/analytics/faq": _get(
            "The most asked question groups (paraphrases together), each with one stored answer",
            "faq",
            "analytics",
            [
                COLLECTION,
                DATE_FROM,
                DATE_TO,
                query(
                    "limit",
                    {"type": "integer", "minimum": 1, "maximum": MAX_FAQ_LIMIT, "default": DEFAULT_FAQ_LIMIT},
                    "How many groups.",
                ),
            ],
            {"200": json_body(faq, "The FAQ (groups of fewer than CHATLOG_FAQ_MIN_COUNT questions left out)."), **bad},
        ),
        "/api/analytics/suggestions": _get(
            "Improvement suggestions drawn from the data, each with its evidence",
            "suggestions",
            "analytics",
            [COLLECTION, DATE_FROM, DATE_TO],
            {"200": json_body(suggestions, "The suggestions, most severe first (none without enough data)."), **bad},
        ),
        "/api/analytics/report": _get(
            "The period's report: usage, retrieval quality, FAQ, knowledge gaps, suggestions, alerts and "
            "conversations to review",
            "report",
            "analytics",
            [
                query("format", {"enum": list(REPORT_FORMATS), "default": "html"},
                      "html: one self-contained page (inline SVG charts, no script, loads nothing); markdown; json."),
                COLLECTION,
                DATE_FROM,
                DATE_TO | {"description": f"Last day (CHATLOG_TIMEZONE), inclusive; default today. A report covers "
                                          f"at most {REPORT_MAX_DAYS} days."},
            ],
            {
                "200": {
                    "description": "The report in the asked format (empty sections before the first event).",
                    "content": {
                        "text/html": {"schema": {"type": "string"}},
                        "text/markdown": {"schema": {"type": "string"}},
                        "application/json": {"schema": report},
                    },
                },
                **bad,
            },
        ),
        "/api/analytics/collections": _get(
            "Every collection seen, with its all-time query count",
            "collections",
            "analytics",
            [],
            {
                "200": json_body(collections, "The collections (empty before the first event)."),
                "503": ref_response("Unavailable"),
            },
        ),
        "/api/analytics/alerts": _get(
            "Alerts active during a date range, newest first",
            "alerts",
            "analytics",
            [COLLECTION, DATE_FROM, DATE_TO],
            {
                "200": json_body(
                    alerts,
                    f"The alerts (at most {MAX_ITEMS}, the newest); each with the window's "
                    "value, the threshold it crossed and the 7-day baseline.",
                ),
                **bad,
            },
        ),
        **_admin_paths(record),
        "/healthz": _get(
            "Whether the API can answer",
            "healthz",
            "meta",
            [],
            {
                "200": json_body(HEALTH, "It can answer (with zeros before the database exists)."),
                "503": ref_response("Unavailable"),
            },
        ),
        "/metrics": _get(
            "Prometheus metrics",
            "metrics",
            "meta",
            [],
            {
                "200": {
                    "description": "Prometheus text exposition format 0.0.4.",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        ),
        "/openapi.json": OPENAPI_OPERATION,
        **grafana_paths(),
        **_dashboard_paths(),
    }
    return document(
        "chatlog analytics API",
        "Read-only statistics, admin lookups, the Grafana JSON datasource (simpod-json-datasource) under "
        "`/grafana` and the dashboard. Dates are `YYYY-MM-DD` in CHATLOG_TIMEZONE, ranges inclusive. Every "
        'error answers `{"error": code, "message": text}` (a bad parameter adds `parameter`). Each GET '
        "also answers HEAD; other methods on a known path answer 405 with `Allow`.",
        paths,
        schemas,
        ADMIN_BEARER,
    )
