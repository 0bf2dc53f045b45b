"""Hostile query parameters and bodies: strict parsing, bounded work, never a 500."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient

from analytics_api.app import create_app as create_analytics
from chat_statistics.tables import DAILY, BucketStats, insert_sql
from shared.db import connect_writer_sync
from shared.settings import Settings
from tests.conftest import AiohttpClient

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ADMIN_TOKEN = "admin-token-for-bounds"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SUMMARY = "/api/analytics/summary"
TIMELINE = "/api/analytics/timeline"
ADMIN_LIST = "/api/admin/conversations"

# Every query parameter of every endpoint, with one valid value.
PARAMETERS = [
    (SUMMARY, "collection_name", "hr-docs"),
    (SUMMARY, "date_from", "2026-01-01"),
    (SUMMARY, "date_to", "2026-01-02"),
    (SUMMARY, "top", "5"),
    (TIMELINE, "collection_name", "hr-docs"),
    (TIMELINE, "period", "hourly"),
    (TIMELINE, "days", "3"),
    (TIMELINE, "date_to", "2026-01-02"),
    (ADMIN_LIST, "collection_name", "hr-docs"),
    (ADMIN_LIST, "user_hash", "abc"),
    (ADMIN_LIST, "date_from", "2026-01-01"),
    (ADMIN_LIST, "date_to", "2026-01-02"),
    (ADMIN_LIST, "has_error", "true"),
    (ADMIN_LIST, "limit", "5"),
    (ADMIN_LIST, "cursor", "WyIyMDI2LTAxLTAxIiwiYyJd"),
]
INTEGERS = [(SUMMARY, "top"), (TIMELINE, "days"), (ADMIN_LIST, "limit")]
EXTREME_DAYS = ("0001-01-01", "0001-01-02", "1969-12-31", "9999-12-31")


@pytest.fixture
async def api(aiohttp_client: AiohttpClient, config: Settings) -> TestClient[Any, Any]:
    """An analytics API with admin endpoints enabled (no database yet: every answer is cheap)."""
    return await aiohttp_client(create_analytics(dataclasses.replace(config, admin_token=ADMIN_TOKEN)))


async def bad_parameter(resp: Any, name: str) -> None:
    """A 400 in the one error shape, naming ``name``."""
    body = await resp.json()
    assert resp.status == 400, (name, resp.status, body)
    assert body["error"] == "bad_parameter" and body["parameter"] == name, body
    assert name in body["message"]


@pytest.mark.parametrize(("path", "name"), INTEGERS)
@pytest.mark.parametrize("raw", ["  5", "5 ", "\u096b", "\u0665", "+5", "5_0", "0x5", "1e2", "-1", "99999999999"])
async def test_integers_are_ascii_digits_only(api: TestClient[Any, Any], path: str, name: str, raw: str) -> None:
    """``int()`` takes spaces, other scripts' digits and underscores: the API takes none of them."""
    await bad_parameter(await api.get(path, params={name: raw}, headers=AUTH), name)


@pytest.mark.parametrize(("path", "name", "value"), PARAMETERS)
async def test_repeated_parameter_is_refused(api: TestClient[Any, Any], path: str, name: str, value: str) -> None:
    """A parameter given twice is a 400 naming it, not silently its first value."""
    assert (await api.get(path, params=[(name, value)], headers=AUTH)).status == 200
    await bad_parameter(await api.get(path, params=[(name, value), (name, value)], headers=AUTH), name)


@pytest.mark.parametrize("path", [SUMMARY, ADMIN_LIST])
@pytest.mark.parametrize("name", ["date_from", "date_to"])
@pytest.mark.parametrize("day", EXTREME_DAYS)
async def test_extreme_dates_are_never_a_500(api: TestClient[Any, Any], path: str, name: str, day: str) -> None:
    """Dates at the ends of the calendar get a 400 naming the parameter (no OverflowError)."""
    await bad_parameter(await api.get(path, params={name: day}, headers=AUTH), name)


@pytest.mark.parametrize("day", EXTREME_DAYS)
async def test_extreme_timeline_end_is_never_a_500(api: TestClient[Any, Any], day: str) -> None:
    """The timeline's end date is bounded like every other date."""
    for period in ("daily", "hourly"):
        resp = await api.get(TIMELINE, params={"date_to": day, "period": period, "days": "366"})
        await bad_parameter(resp, "date_to")


async def test_dates_at_the_supported_ends_answer(api: TestClient[Any, Any]) -> None:
    """The first and last supported dates answer 200 everywhere."""
    for first, last in (("1970-01-01", "1970-01-07"), ("9999-12-24", "9999-12-30")):
        query = {"date_from": first, "date_to": last}
        assert (await api.get(SUMMARY, params=query)).status == 200
        assert (await api.get(ADMIN_LIST, params=query, headers=AUTH)).status == 200
        for period in ("daily", "hourly"):
            resp = await api.get(TIMELINE, params={"date_to": last, "period": period, "days": "366"})
            assert resp.status == 200
            assert (await resp.json())["points"]


@pytest.mark.parametrize(
    ("path", "query", "name"),
    [
        (SUMMARY, {"top": "101"}, "top"),
        (SUMMARY, {"top": "0"}, "top"),
        (SUMMARY, {"date_from": "1990-01-01", "date_to": "2026-01-01"}, "date_from"),
        (SUMMARY, {"date_from": "2026-01-02", "date_to": "2026-01-01"}, "date_from"),
        (TIMELINE, {"days": "367"}, "days"),
        (TIMELINE, {"period": "weekly"}, "period"),
        (ADMIN_LIST, {"limit": "501"}, "limit"),
        (ADMIN_LIST, {"cursor": "x" * 5000}, "cursor"),
        (ADMIN_LIST, {"cursor": "%%%garbage"}, "cursor"),
        (ADMIN_LIST, {"cursor": "bm90IGpzb24"}, "cursor"),
        (ADMIN_LIST, {"cursor": "WzEsMl0"}, "cursor"),
        (ADMIN_LIST, {"cursor": "\u00e9\u00e9\u00e9\u00e9"}, "cursor"),
        (ADMIN_LIST, {"user_hash": "u" * 129}, "user_hash"),
        (ADMIN_LIST, {"has_error": "maybe"}, "has_error"),
    ],
)
async def test_limits(api: TestClient[Any, Any], path: str, query: dict[str, str], name: str) -> None:
    """Every size and range has a documented bound; past it, a 400 naming the parameter."""
    await bad_parameter(await api.get(path, params=query, headers=AUTH), name)


# --- Grafana -------------------------------------------------------------------------------

GRAFANA_POSTS = ("metrics", "metric-payload-options", "variable", "tag-keys", "tag-values", "query")
EXTREME_RANGES = [
    ("0001-01-01T00:00:00+14:00", "2026-01-01T00:00:00Z", "range.from"),
    ("2026-01-01T00:00:00Z", "9999-12-31T23:59:59-14:00", "range.to"),
    ("0001-01-01T00:00:00Z", "0001-01-02T00:00:00Z", "range.from"),
    ("9999-12-31T00:00:00Z", "9999-12-31T23:59:59Z", "range.from"),
    ("1990-01-01T00:00:00Z", "2090-01-01T00:00:00Z", "range"),
]


def grafana_query(first: str, last: str, **extra: Any) -> dict[str, Any]:
    """A DataQueryRequest for two series over ``[first, last]``."""
    targets = [{"refId": "A", "target": "queries"}, {"refId": "B", "target": "p95_response_time_ms"}]
    return {"range": {"from": first, "to": last}, "intervalMs": 60_000, "maxDataPoints": 1200,
            "targets": targets, **extra}


@pytest.mark.parametrize(("first", "last", "name"), EXTREME_RANGES)
async def test_grafana_extreme_ranges_are_never_a_500(api: TestClient[Any, Any], first: str, last: str,
                                                      name: str) -> None:
    """Ranges at the ends of the calendar, with extreme offsets, are a 400 naming the field on
    /query and are ignored (200) by the endpoints that take no range."""
    body = grafana_query(first, last)
    for endpoint in GRAFANA_POSTS:
        resp = await api.post(f"/grafana/{endpoint}", json=body)
        if endpoint == "query":
            await bad_parameter(resp, name)
        else:
            assert resp.status == 200, (endpoint, await resp.text())


async def test_grafana_oversize_query_is_a_fast_400(api: TestClient[Any, Any]) -> None:
    """100 years with maxDataPoints 10^12 once took 30 s and 46 MB; now a 400 at once."""
    body = grafana_query("1990-01-01T00:00:00Z", "2090-01-01T00:00:00Z", maxDataPoints=10**12)
    started = time.monotonic()
    resp = await api.post("/grafana/query", json=body)
    await bad_parameter(resp, "range")
    assert time.monotonic() - started < 1.0


async def test_grafana_largest_allowed_query_is_bounded(api: TestClient[Any, Any], config: Settings) -> None:
    """The largest allowed requests answer at most a year of hourly points, or ten years of days."""
    connect_writer_sync(config.db_path).close()
    year = grafana_query("2025-01-01T00:00:00Z", "2025-12-31T23:00:00Z", maxDataPoints=10**12)
    body = await (await api.post("/grafana/query", json=year)).json()
    assert [len(s["datapoints"]) for s in body] == [8760, 8760]
    decade = grafana_query("2016-01-04T00:00:00Z", "2026-01-01T00:00:00Z", maxDataPoints=10**12)
    body = await (await api.post("/grafana/query", json=decade)).json()
    assert [len(s["datapoints"]) for s in body] == [3651, 3651]
    many = grafana_query("2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z")
    many["targets"] = [{"refId": f"R{i}", "target": "queries"} for i in range(21)]
    await bad_parameter(await api.post("/grafana/query", json=many), "targets")
    await bad_parameter(await api.post("/grafana/query", json={**year, "maxDataPoints": 0}), "maxDataPoints")


@pytest.mark.parametrize("zone", ["America/New_York", "Pacific/Kiritimati"])
async def test_collections_with_instants_at_the_calendar_ends(aiohttp_client: AiohttpClient, config: Settings,
                                                              zone: str) -> None:
    """First and last seen at the ends of the calendar answer 200 in zones on either side of UTC."""
    stats = BucketStats(total_queries=1, message_count=1,
                        first_at_us=int((datetime(1, 1, 1, tzinfo=UTC) - EPOCH).total_seconds()) * 10**6,
                        last_at_us=int((datetime(9999, 12, 31, 23, tzinfo=UTC) - EPOCH).total_seconds()) * 10**6)
    with contextlib.closing(connect_writer_sync(config.db_path)) as conn:
        conn.execute(insert_sql(DAILY), ("hr-docs", "2026-01-01", *stats.row_values([])))
    api = await aiohttp_client(create_analytics(dataclasses.replace(config, timezone=ZoneInfo(zone))))
    resp = await api.get("/api/analytics/collections")
    assert resp.status == 200
    (item,) = (await resp.json())["collections"]
    assert item["first_seen"].startswith("0001-01-01") and item["last_seen"].startswith("9999-12-31")
