"""The Grafana JSON datasource (simpod-json-datasource, v0.6+) under ``/grafana``.

``GET /`` answers "Save & test"; ``POST /metrics`` lists the metrics with their payload
options; ``POST /query`` answers time series (hourly or daily buckets in
CHATLOG_TIMEZONE, chosen from ``intervalMs``) and tables; ``POST /variable`` lists
collections; ``POST /tag-keys`` and ``/tag-values`` serve the ad-hoc filter on
collection_name. Grafana sends whole DataQueryRequests: fields not used here are
ignored, malformed ones are refused with 400, and so is a query past the bounds below
(named in the answer's ``parameter``), so that every answer is bounded work.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from aiohttp import web

from analytics_api import keys
from analytics_api.buckets import Slot, day_slots, epoch_ms, hour_slots, wall_hour
from analytics_api.params import MAX_RANGE_DAYS, MAX_TOP
from chat_statistics.quality_reads import feedback_rows
from chat_statistics.reads import query_rows, query_summary
from chat_statistics.tables import DAILY
from shared.errors import BadParameter, BadRequest, json_response

SERIES = {
    "queries": ("total_queries", "Queries"),
    "unique_sessions": ("unique_sessions", "Active sessions"),
    "tokens": ("total_tokens", "Tokens"),
    "errors": ("error_count", "Errors"),
    "regenerations": ("regeneration_count", "Regenerations"),
    "avg_response_time_ms": ("avg_response_time_ms", "Average response time (ms)"),
    "p50_response_time_ms": ("p50_response_time_ms", "p50 response time (ms)"),
    "p95_response_time_ms": ("p95_response_time_ms", "p95 response time (ms)"),
    # Not columns of the usage rows: read from feedback_statistics and appended (keep them last).
    "positive_feedback": ("positive_feedback", "Positive feedback"),
    "negative_feedback": ("negative_feedback", "Negative feedback"),
}
_FEEDBACK_SERIES = ("positive_feedback", "negative_feedback")
TABLES = {"top_queries": "Top queries", "collections": "Queries per collection"}
# Counts are 0 in an empty bucket; latencies have no value there.
_COUNTS = {"total_queries", "unique_sessions", "total_tokens", "error_count", "regeneration_count", *_FEEDBACK_SERIES}
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
# Bounded work for any request: hourly series up to a leap year of points (longer ranges,
# or a smaller maxDataPoints, get daily buckets), ranges up to MAX_RANGE_DAYS days of
# instants the zone arithmetic can represent, and a panel's worth of targets.
MAX_HOURLY_POINTS = 366 * 24
MAX_TARGETS = 20
MIN_INSTANT = datetime(1970, 1, 1, tzinfo=UTC)
MAX_INSTANT = datetime(9999, 12, 30, tzinfo=UTC)


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
    # The plugin's protocol names them ``filters`` (current Grafana); older ones sent ``adhocFilters``.
    filters: list[_AdhocFilter] = msgspec.field(default_factory=list)


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


def _instant(value: datetime, name: str) -> datetime:
    """An instant of the request's range, in UTC, within what the API answers for."""
    if value.tzinfo is None:
        raise BadParameter(name, "must be an RFC 3339 instant with an offset")
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = MIN_INSTANT - timedelta(days=1)
    if not MIN_INSTANT <= utc <= MAX_INSTANT:
        raise BadParameter(name, f"must lie between {MIN_INSTANT.isoformat()} and {MAX_INSTANT.isoformat()}")
    return utc


Series = tuple[list[Slot], list[int]]  # buckets and their first instants as epoch ms


def series_slots(first: datetime, last: datetime, daily: bool, tz: ZoneInfo) -> Series:
    """The local hours or days overlapping ``[first, last]``, each existing bucket once."""
    if daily:
        found = day_slots(first.astimezone(tz).date(), last.astimezone(tz).date(), tz)
    else:
        # Clocks set back by more than the range can put ``last`` in an earlier wall hour.
        start, end = wall_hour(first, tz), wall_hour(last, tz)
        found = hour_slots(min(start, end), max(start, end), tz)
    return found, [epoch_ms(instant) for _, instant in found]


def _rows(conn: sqlite3.Connection, collection: str | None, daily: bool, a: str, b: str) -> dict[tuple[str, int], Any]:
    period = "daily" if daily else "hourly"
    columns = [column for column, _ in SERIES.values() if column not in _FEEDBACK_SERIES]
    rows = query_rows(conn, collection, period, a, b, ", ".join(columns))
    feedback = feedback_rows(conn, collection, period, a, b)
    blank = (None,) * len(columns)
    return {key: (*rows.get(key, blank), *feedback.get(key, (0, 0))) for key in rows.keys() | feedback.keys()}


def _series(name: str, buckets: Series, rows: dict[tuple[str, int], Any]) -> list[list[Any]]:
    column, _ = SERIES[name]
    index = list(SERIES).index(name)
    points: list[list[Any]] = []
    for (key, _), ms in zip(*buckets, strict=True):
        row = rows.get(key)
        value = row[index] if row is not None else None
        if value is None and column in _COUNTS:
            value = 0
        points.append([value, ms])
    return points


def _table(
    conn: sqlite3.Connection, name: str, collection: str | None, first: date, last: date, payload: dict[str, Any]
) -> dict[str, Any]:
    if name == "top_queries":
        top = payload.get("top", 10)
        if not isinstance(top, int) or isinstance(top, bool) or not 1 <= top <= MAX_TOP:
            raise BadParameter("payload.top", f"must be an integer from 1 to {MAX_TOP}")
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
            {"text": "collection", "type": "string"},
            {"text": "queries", "type": "number"},
            {"text": "tokens", "type": "number"},
            {"text": "errors", "type": "number"},
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
    # __text/__value is what the plugin reads; text/value is what its OpenAPI document requires.
    names = await _collection_names(request)
    return json_response([{"__text": n, "__value": n, "text": n, "value": n} for n in names])


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
    first, last = _instant(body.range.from_, "range.from"), _instant(body.range.to, "range.to")
    if first > last:
        raise BadParameter("range.from", "is after range.to")
    tz = request.app[keys.layout_key].tz
    day_a, day_b = first.astimezone(tz).date(), last.astimezone(tz).date()
    if (day_b - day_a).days + 1 > MAX_RANGE_DAYS:
        raise BadParameter("range", f"may cover at most {MAX_RANGE_DAYS} days")
    if body.maxDataPoints is not None and body.maxDataPoints < 1:
        raise BadParameter("maxDataPoints", "must be a positive integer")
    if sum(1 for t in body.targets if t.target and not t.hide) > MAX_TARGETS:
        raise BadParameter("targets", f"at most {MAX_TARGETS} visible targets per query")
    interval = body.intervalMs or HOUR_MS
    hours = (last - first).total_seconds() / 3600
    most_points = min(body.maxDataPoints or MAX_HOURLY_POINTS, MAX_HOURLY_POINTS)
    daily = interval >= DAY_MS or hours > most_points
    # Up to a year of hours of zone arithmetic: off the event loop.
    buckets = await asyncio.to_thread(series_slots, first, last, daily, tz)
    # Rows of the dates the buckets cover (a range inside a skipped day has no bucket).
    a, b = (buckets[0][0][0][0], buckets[0][-1][0][0]) if buckets[0] else (day_a.isoformat(), day_b.isoformat())
    wanted = []
    for target in body.targets:
        if target.hide or not target.target:
            continue
        if target.target not in SERIES and target.target not in TABLES:
            raise BadRequest(f"unknown target {target.target!r}; see POST /grafana/metrics")
        payload = _payload(target.payload)
        wanted.append((target, payload, _collection(payload, [*body.filters, *body.adhocFilters])))

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
