"""Schemathesis hooks for chatlog's runs (loaded by the CLI through SCHEMATHESIS_HOOKS).

NDJSON bodies are documented as the array of their items; this serializer sends them one
JSON document per line, as a client does. Anything that is not an array (negative tests)
goes as its JSON text, which the ingestor must refuse.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import msgspec
import schemathesis
from schemathesis import HookContext, SerializationContext

NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl")
# Grafana's widest range preset is 5 years; wider ranges only measure how long the API takes to
# build one bucket per hour of them (see the report on POST /grafana/query).
MAX_GRAFANA_RANGE = timedelta(days=5 * 366)


@schemathesis.serializer(*NDJSON_TYPES)
def ndjson(ctx: SerializationContext, value: Any) -> dict[str, Any]:
    """One JSON document per line."""
    if isinstance(value, list):
        return {"data": b"".join(msgspec.json.encode(item) + b"\n" for item in value)}
    return {"data": msgspec.json.encode(value)}


def _instant(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None


@schemathesis.hook("filter_body").apply_to(path_regex="^(/grafana)?/query$")
def bounded_range(ctx: HookContext, body: Any) -> bool:
    """Keep Grafana queries whose range Grafana itself could send."""
    if not isinstance(body, dict) or not isinstance(body.get("range"), dict):
        return True
    first, last = _instant(body["range"].get("from")), _instant(body["range"].get("to"))
    if first is None or last is None or (first.tzinfo is None) != (last.tzinfo is None):
        return True
    return abs(last - first) <= MAX_GRAFANA_RANGE
