"""The Grafana JSON datasource (simpod-json-datasource, v0.6+) under ``/grafana``.

``GET /`` answers "Save & test"; ``POST /metrics`` lists the metrics with their payload
options; ``POST /query`` answers time series (hourly or daily buckets in
CHATLOG_TIMEZONE, chosen from ``intervalMs``) and tables; ``POST /variable`` lists
collections; ``POST /tag-keys`` and ``/tag-values`` serve the ad-hoc filter on
collection_name. Grafana sends whole DataQueryRequests: fields not used here are
ignored, malformed ones are refused with 400.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from aiohttp import web

from analytics_api import keys
from chat_statistics.reads import query_rows, query_summary
from chat_statistics.tables import DAILY
from shared.errors import BadRequest, json_response

SERIES = {
    "queries": ("total_queries", "Queries"),
    "unique_sessions": ("unique_sessions", "Active sessions"),
    "tokens": ("total_tokens", "Tokens"),
    "errors": ("error_count", "Errors"),
    "regenerations": ("regeneration_count", "Regenerations"),
    "avg_response_time_ms": ("avg_response_time_ms", "Average response time (ms)"),
    "p50_response_time_ms": ("p50_response_time_ms", "p50 response time (ms)"),
    "p95_response_time_ms": ("p95_response_time_ms", "p95 response time (ms)"),
}
TABLES = {"top_queries": "Top queries", "collections": "Queries per collection"}
# Counts are 0 in an empty bucket; latencies have no value there.
_COUNTS = {"total_queries", "unique_sessions", "total_tokens", "error_count", "regeneration_count"}
DAY_MS = 86_400_000
HOUR_MS = 3_600_000


class _Range(msgspec.Struct):
    to: datetime
    from_: datetime = msgspec.field(name="from")


class _Target(msgspec.Struct):
    target: str | None = None
    refId: str | None = None
    payload: Any = None
    hide: bool = False


class _AdhocFilter(msgspec.Struct):
    key: str
    value: Any = None
    operator: str = "="


class QueryRequest(msgspec.Struct):
    """The parts of Grafana's DataQueryRequest this datasource uses."""

    range: _Range
    targets: list[_Target]
    intervalMs: float | None = None
    maxDataPoints: int | None = None
    adhocFilters: list[_AdhocFilter] = msgspec.field(default_factory=list)


async def _body(request: web.Request, type_: type[Any]) -> Any:
    raw = await request.read()
    try:
        return msgspec.json.decode(raw or b"{}", type=type_)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise BadRequest(f"malformed {request.path} request: {exc}") from None


def _payload(raw: Any) -> dict[str, Any]:
    """A target's payload: an object, or its JSON text (how dashboards often store it)."""
    if isinstance(raw, str):
        try:
            raw = msgspec.json.decode(raw) if raw.strip() else {}
        except msgspec.DecodeError:
            raise BadRequest("payload is neither an object nor JSON text") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise BadRequest("payload must be an object")
    return raw


def _collection(payload: dict[str, Any], filters: list[_AdhocFilter]) -> str | None:
    """One collection, or None for all ("All", empty, or several selected in Grafana)."""
    value: Any = payload.get("collection_name")
    for f in filters:
        if f.key != "collection_name":
            continue
        if f.operator != "=":
            raise BadRequest(f"ad-hoc filter operator {f.operator!r} is not supported; use '='")
        value = f.value
    if isinstance(value, list):
        value = value[0] if len(value) == 1 else None
    if value is None or value in ("", "$__all", "All"):
        return None
    if not isinstance(value, str) or len(value) > 128:
        raise BadRequest("collection_name must be a collection name")
    return value


def hourly_buckets(first: datetime, last: datetime, tz: ZoneInfo) -> list[tuple[str, int, int]]:
    """(date, hour, epoch ms) of every wall-clock hour overlapping ``[first, last]``."""
    start = first.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    out = []
    while start <= last:
        local = start.astimezone(tz)
        out.append((local.date().isoformat(), local.hour, int(start.timestamp() * 1000)))
        start += timedelta(hours=1)
    return out


def daily_buckets(first: datetime, last: datetime, tz: ZoneInfo) -> list[tuple[str, int, int]]:
    """(date, -1, epoch ms of local midnight) of every day overlapping ``[first, last]``."""
    day, end = first.astimezone(tz).date(), last.astimezone(tz).date()
    out = []
    while day <= end:
        out.append((day.isoformat(), -1, int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp() * 1000)))
        day += timedelta(days=1)
    return out


def _rows(conn: sqlite3.Connection, collection: str | None, daily: bool, a: str, b: str) -> dict[tuple[str, int], Any]:
    columns = ", ".join(column for column, _ in SERIES.values())
    return query_rows(conn, collection, "daily" if daily else "hourly", a, b, columns)


def _series(name: str, buckets: list[tuple[str, int, int]], rows: dict[tuple[str, int], Any]) -> list[list[Any]]:
    column, _ = SERIES[name]
    index = list(SERIES).index(name)
    points: list[list[Any]] = []
    for day, hour, ms in buckets:
        row = rows.get((day, hour))
        value = row[index] if row is not None else None
        if value is None and column in _COUNTS:
            value = 0
        points.append([value, ms])
    return points


def _table(conn: sqlite3.Connection, name: str, collection: str | None, first: date, last: date,
           payload: dict[str, Any]) -> dict[str, Any]:
    if name == "top_queries":
        top = payload.get("top", 10)
        if not isinstance(top, int) or not 1 <= top <= 100:
            raise BadRequest("payload.top must be an integer from 1 to 100")
        summary = query_summary(conn, collection, first, last, top)
        return {
            "type": "table",
            "columns": [{"text": "query", "type": "string"}, {"text": "count", "type": "number"}],
            "rows": [[q.query, q.count] for q in summary.top_queries],
        }
    rows = conn.execute(
        f"SELECT scope, sum(total_queries), sum(total_tokens), sum(error_count) FROM {DAILY} "
        "WHERE date BETWEEN ? AND ? AND scope <> '' GROUP BY scope ORDER BY 2 DESC, scope",
        (first.isoformat(), last.isoformat()),
    ).fetchall()
    return {
        "type": "table",
        "columns": [
            {"text": "collection", "type": "string"}, {"text": "queries", "type": "number"},
            {"text": "tokens", "type": "number"}, {"text": "errors", "type": "number"},
        ],
        "rows": [list(row) for row in rows if collection is None or row[0] == collection],
    }


async def health(request: web.Request) -> web.Response:
    """``GET /grafana/``: 200 for the datasource's "Save & test"."""
    return json_response({"status": "ok", "service": "chatlog"})


async def _collection_names(request: web.Request) -> list[str]:
    sql = f"SELECT DISTINCT scope FROM {DAILY} WHERE scope <> '' ORDER BY scope"
    none: list[str] = []
    return await request.app[keys.database_key].read(lambda conn: [r[0] for r in conn.execute(sql)], none)


async def metrics(request: web.Request) -> web.Response:
    """``POST /grafana/metrics``: every metric, each with the collection_name payload option."""
    await _body(request, dict[str, Any])
    options = [{"label": "All collections", "value": ""}] + [
        {"label": name, "value": name} for name in await _collection_names(request)
    ]
    payloads = [{"label": "Collection", "name": "collection_name", "type": "select", "options": options}]
    answer = [{"label": label, "value": name, "payloads": payloads} for name, (_, label) in SERIES.items()]
    answer += [{"label": label, "value": name, "payloads": payloads} for name, label in TABLES.items()]
    return json_response(answer)


async def metric_payload_options(request: web.Request) -> web.Response:
    """``POST /grafana/metric-payload-options``: the collections, for the collection_name select."""
    body = await _body(request, dict[str, Any])
    if body.get("name", "collection_name") != "collection_name":
        return json_response([])
    return json_response([{"label": n, "value": n} for n in await _collection_names(request)])


async def variable(request: web.Request) -> web.Response:
    """``POST /grafana/variable``: collection names for a dashboard variable."""
    await _body(request, dict[str, Any])
    return json_response([{"__text": n, "__value": n} for n in await _collection_names(request)])


async def tag_keys(request: web.Request) -> web.Response:
    """``POST /grafana/tag-keys``: the one ad-hoc filter key."""
    return json_response([{"type": "string", "text": "collection_name"}])


async def tag_values(request: web.Request) -> web.Response:
    """``POST /grafana/tag-values``: collection names for the collection_name filter."""
    body = await _body(request, dict[str, Any])
    if body.get("key") != "collection_name":
        return json_response([])
    return json_response([{"text": n} for n in await _collection_names(request)])


async def query(request: web.Request) -> web.Response:
    """``POST /grafana/query``: time series and tables for the requested range."""
    body: QueryRequest = await _body(request, QueryRequest)
    first, last = body.range.from_, body.range.to
    if first.tzinfo is None or last.tzinfo is None or first > last:
        raise BadRequest("range.from and range.to must be RFC 3339 instants with from <= to")
    tz = request.app[keys.layout_key].tz
    interval = body.intervalMs or HOUR_MS
    hours = (last - first).total_seconds() / 3600
    daily = interval >= DAY_MS or (body.maxDataPoints is not None and hours > body.maxDataPoints)
    buckets = daily_buckets(first, last, tz) if daily else hourly_buckets(first, last, tz)
    a, b = buckets[0][0], buckets[-1][0]
    day_a, day_b = date.fromisoformat(a), date.fromisoformat(b)
    wanted = []
    for target in body.targets:
        if target.hide or not target.target:
            continue
        if target.target not in SERIES and target.target not in TABLES:
            raise BadRequest(f"unknown target {target.target!r}; see POST /grafana/metrics")
        payload = _payload(target.payload)
        wanted.append((target, payload, _collection(payload, body.adhocFilters)))

    def answer(conn: sqlite3.Connection) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        cache: dict[str | None, dict[tuple[str, int], Any]] = {}
        for target, payload, collection in wanted:
            name = target.target or ""
            if name in TABLES:
                out.append(_table(conn, name, collection, day_a, day_b, payload))
                continue
            if collection not in cache:
                cache[collection] = _rows(conn, collection, daily, a, b)
            label = name if collection is None else f"{name} {collection}"
            points = _series(name, buckets, cache[collection])
            out.append({"target": label, "refId": target.refId, "datapoints": points})
        return out

    empty: list[dict[str, Any]] = []
    result = await request.app[keys.database_key].read(answer, empty)
    if not result and wanted:
        # No database yet: empty series of the right shape, so panels render.
        result = [{"target": t.target, "refId": t.refId, "datapoints": []} for t, _, _ in wanted]
    return json_response(result)


def setup_grafana_routes(app: web.Application) -> None:
    """Register the datasource's endpoints under ``/grafana``."""
    app.router.add_get("/grafana", health)
    app.router.add_get("/grafana/", health)
    app.router.add_post("/grafana/metrics", metrics)
    app.router.add_post("/grafana/metric-payload-options", metric_payload_options)
    app.router.add_post("/grafana/variable", variable)
    app.router.add_post("/grafana/tag-keys", tag_keys)
    app.router.add_post("/grafana/tag-values", tag_values)
    app.router.add_post("/grafana/query", query)
