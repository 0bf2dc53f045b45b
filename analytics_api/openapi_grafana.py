"""The ``/grafana`` part of the analytics API's OpenAPI document.

It follows the protocol of the Grafana JSON datasource plugin (simpod-json-datasource):
the same paths, request fields and answer shapes, written from reading the plugin's own
description. Where chatlog narrows the protocol it says so: a request the plugin allows
but chatlog cannot answer (an unknown metric, a payload that is not an object, an ad-hoc
operator other than `=`) gets 400 in the one error shape; fields it does not use are ignored.
"""

from __future__ import annotations

from typing import Any

from analytics_api.grafana import SERIES, TABLES
from shared.openapi import JSON, Schema, error, json_body

TAG = "grafana"
METRIC_NAMES = ", ".join(f"`{name}`" for name in [*SERIES, *TABLES])
MALFORMED = error(
    "The body is not a JSON object of this request's shape, or asks for what chatlog cannot "
    "answer (see the description)."
)
OBJECT: Schema = {"type": "object", "description": "Ignored unless said otherwise."}
RAW_TIME: Schema = {"type": "object", "properties": {"from": {"type": "string"}, "to": {"type": "string"}}}
RANGE: Schema = {
    "type": "object",
    "required": ["from", "to"],
    "properties": {
        "from": {"type": "string", "format": "date-time"},
        "to": {"type": "string", "format": "date-time"},
        "raw": RAW_TIME,
    },
}
OPTION: Schema = {
    "type": "object",
    "required": ["value"],
    "properties": {"label": {"type": "string"}, "value": {"type": "string"}},
}
PAYLOAD_CONFIG: Schema = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "label": {"type": "string"},
        "name": {"type": "string"},
        "type": {"enum": ["select", "multi-select", "input", "textarea"]},
        "placeholder": {"type": "string"},
        "reloadMetric": {"type": "boolean"},
        "width": {"type": "integer"},
        "options": {"type": "array", "items": OPTION},
    },
}
TIMESERIES: Schema = {
    "type": "object",
    "description": "A time series: [value, epoch ms] pairs, one per hourly or daily bucket. A latency has "
    "no value (null) in a bucket without answers.",
    "required": ["target", "datapoints"],
    "properties": {
        "target": {"type": "string"},
        "refId": {"type": ["string", "null"]},
        "datapoints": {
            "type": "array",
            "items": {
                "type": "array",
                "minItems": 2,
                "maxItems": 2,
                "items": {"type": ["number", "null"]},
                "description": "[value, epoch milliseconds]",
            },
        },
    },
}
TABLE: Schema = {
    "type": "object",
    "description": "A table.",
    "required": ["type", "columns", "rows"],
    "properties": {
        "type": {"const": "table"},
        "columns": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["text"],
                "properties": {"text": {"type": "string"}, "type": {"type": "string"}},
            },
        },
        "rows": {"type": "array", "items": {"type": "array", "items": {"type": ["string", "number", "null"]}}},
    },
}
TARGET: Schema = {
    "type": "object",
    "required": ["target"],
    "properties": {
        "target": {
            "type": "string",
            "description": f"A metric of `POST /grafana/metrics`: {METRIC_NAMES}; any other answers 400.",
        },
        "refId": {"type": "string"},
        "hide": {"type": "boolean", "description": "A hidden target is not answered."},
        "payload": {
            "description": "`collection_name` (a name, or empty / `$__all` / `All` for every collection) and, for "
            "`top_queries`, `top` (1-100). An object, or its JSON text as dashboards store it.",
            "anyOf": [
                {
                    "type": "object",
                    "properties": {
                        "collection_name": {
                            "anyOf": [
                                {"type": "string", "maxLength": 128},
                                {"type": "array", "items": {"type": "string"}},
                            ]
                        },
                        "top": {"type": "integer", "minimum": 1, "maximum": 100},
                    },
                },
                {"type": "string"},
                {"type": "null"},
            ],
        },
    },
}
ADHOC_FILTERS: Schema = {
    "type": "array",
    "description": "Ad-hoc filters; only the key `collection_name` with operator `=` is understood.",
    "items": {
        "type": "object",
        "required": ["key"],
        "properties": {"key": {"type": "string"}, "operator": {"type": "string"}, "value": {"type": "string"}},
    },
}
QUERY: Schema = {
    "type": "object",
    "required": ["range", "targets"],
    "properties": {
        "panelId": {"type": ["string", "number"]},
        "range": RANGE,
        "rangeRaw": RAW_TIME,
        "interval": {"type": "string"},
        "intervalMs": {"type": ["number", "null"], "description": "Buckets are daily from a day (86400000) up."},
        "maxDataPoints": {"type": ["integer", "null"], "description": "More hours than this: daily buckets."},
        "targets": {"type": "array", "items": TARGET},
        "scopedVars": OBJECT,
        "filters": ADHOC_FILTERS,
        "adhocFilters": ADHOC_FILTERS | {"description": "The older name of `filters`; both are read."},
    },
}


def _post(
    summary: str, operation_id: str, body: Schema | None, answer: Schema, description: str, required: bool = False
) -> dict[str, Any]:
    """One POST operation; ``body`` None: the body is not read at all (so never refused)."""
    responses = {"200": json_body(answer, description)}
    operation: dict[str, Any] = {"summary": summary, "operationId": operation_id, "tags": [TAG], "responses": responses}
    if body is not None:
        responses["400"] = MALFORMED
        operation["requestBody"] = {"required": required, "content": {JSON: {"schema": body}}}
    return {"post": operation}


def grafana_paths() -> dict[str, Any]:
    """Every ``/grafana`` operation."""
    health = {
        "get": {
            "summary": 'The datasource\'s "Save & test"',
            "operationId": "grafana_health",
            "tags": [TAG],
            "responses": {
                "200": json_body(
                    {"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}},
                    "Positive health check.",
                )
            },
        }
    }
    metrics_body = {"type": "object", "properties": {"metric": {"type": "string"}, "payload": OBJECT}}
    return {
        "/grafana": health,
        "/grafana/": health | {"get": health["get"] | {"operationId": "grafana_health_slash"}},
        "/grafana/metrics": _post(
            "Metrics with their payload options",
            "grafana_metrics",
            metrics_body,
            {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["value", "payloads"],
                    "properties": {
                        "label": {"type": "string"},
                        "value": {"type": "string"},
                        "payloads": {"type": "array", "items": PAYLOAD_CONFIG},
                    },
                },
            },
            f"Every metric ({METRIC_NAMES}), each with the `collection_name` select.",
        ),
        "/grafana/metric-payload-options": _post(
            "Options of a payload select",
            "grafana_metric_payload_options",
            {
                "type": "object",
                "properties": {"metric": {"type": "string"}, "payload": OBJECT, "name": {"type": "string"}},
            },
            {"type": "array", "items": OPTION},
            "The collections for `collection_name`; no options for any other payload name.",
        ),
        "/grafana/query": _post(
            "Time series and tables over a range",
            "grafana_query",
            QUERY,
            {"type": "array", "items": {"anyOf": [TIMESERIES, TABLE]}},
            "One answer per target that is not hidden, in their order.",
            required=True,
        ),
        "/grafana/variable": _post(
            "Values of a dashboard variable",
            "grafana_variable",
            {
                "type": "object",
                "properties": {
                    "payload": {"type": "object", "properties": {"target": {"type": "string"}, "variables": OBJECT}},
                    "range": RANGE,
                },
            },
            {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["text", "value"],
                    "properties": {
                        "text": {"type": "string"},
                        "value": {"type": "string"},
                        "__text": {"type": "string"},
                        "__value": {"type": "string"},
                    },
                },
            },
            "The collection names.",
        ),
        "/grafana/tag-keys": _post(
            "Keys of the ad-hoc filter",
            "grafana_tag_keys",
            None,
            {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["text"],
                    "properties": {"type": {"type": "string"}, "text": {"type": "string"}},
                },
            },
            "The one key, `collection_name`.",
        ),
        "/grafana/tag-values": _post(
            "Values of an ad-hoc filter key",
            "grafana_tag_values",
            {"type": "object", "required": ["key"], "properties": {"key": {"type": "string"}}},
            {
                "type": "array",
                "items": {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}},
            },
            "The collection names for `collection_name`; nothing for any other key.",
            required=True,
        ),
    }
