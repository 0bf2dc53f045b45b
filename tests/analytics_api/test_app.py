"""The analytics API (CONTRACT.md "Analytics API") against DuckDB over the same raw events."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import os
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient

from analytics_api import keys
from analytics_api.app import create_app as create_analytics
from ingestor.app import create_app as create_ingestor
from shared.errors import Unavailable
from shared.settings import Settings
from tests.conftest import AiohttpClient
from tests.support.statistics_oracle import (
    applied,
    close_to,
    expected_buckets,
    expected_summary,
    frame,
    generate,
    post_all,
)
from tests.support.stores import rows

ZONES = ("UTC", "Asia/Seoul")
# Sketch percentiles are within 0.5% of the exact nearest-rank value.
PERCENTILE_ERROR = 0.01


async def loaded(
    aiohttp_client: AiohttpClient, config: Settings, zone: str, seed: int = 1
) -> tuple[Settings, TestClient[Any, Any], list[dict[str, Any]]]:
    """Post generated events to a real ingestor; return the settings, an API client and the events."""
    zoned = dataclasses.replace(config, timezone=ZoneInfo(zone))
    ingest = await aiohttp_client(create_ingestor(zoned))
    events = generate(seed, datetime.now(UTC))
    await post_all(ingest, events)
    await applied(zoned, len(events))
    return zoned, await aiohttp_client(create_analytics(zoned)), events


def check_summary(body: dict[str, Any], expected: dict[str, Any]) -> None:
    """Every field of a summary answer equals the independent figure (percentiles within 1%)."""
    for name in (
        "total_queries",
        "unique_sessions",
        "total_tokens",
        "error_count",
        "regeneration_count",
        "top_queries",
        "collections",
    ):
        assert body[name] == expected[name], name
    for name in ("error_rate", "regeneration_rate"):
        assert body[name] == pytest.approx(expected[name]), name
    assert close_to(body["avg_response_time_ms"], expected["avg_response_time_ms"], 1e-4)
    for name in ("p50_response_time_ms", "p95_response_time_ms", "p99_response_time_ms"):
        assert close_to(body[name], expected[name], PERCENTILE_ERROR), (name, body[name], expected[name])


@pytest.mark.parametrize("zone", ZONES)
async def test_summary_matches_duckdb(aiohttp_client: AiohttpClient, store_config: Settings, zone: str) -> None:
    """Every summary field, for several ranges and collections, equals DuckDB over the raw events."""
    settings, api, events = await loaded(aiohttp_client, store_config, zone)
    raw = frame(events, settings.timezone)
    today = datetime.now(settings.timezone).date()
    ranges = [
        (today - timedelta(days=6), today),
        (today - timedelta(days=1), today - timedelta(days=1)),
        (today - timedelta(days=3), today - timedelta(days=1)),
        (today, today),
        (today - timedelta(days=30), today - timedelta(days=20)),
    ]
    for collection in (None, "hr-docs", "legal-kb"):
        for first, last in ranges:
            query = {"date_from": first.isoformat(), "date_to": last.isoformat()}
            if collection:
                query["collection_name"] = collection
            resp = await api.get("/api/analytics/summary", params=query)
            assert resp.status == 200
            body = await resp.json()
            assert (body["collection_name"], body["date_from"], body["date_to"]) == (
                collection,
                first.isoformat(),
                last.isoformat(),
            )
            check_summary(body, expected_summary(raw, collection, first, last))
    resp = await api.get("/api/analytics/summary", params={"top": "3"})
    body = await resp.json()
    assert (body["date_from"], body["date_to"]) == (
        (today - timedelta(days=6)).isoformat(),
        today.isoformat(),
    )
    check_summary(body, expected_summary(raw, None, today - timedelta(days=6), today, top=3))
    assert len(body["top_queries"]) == 3


async def test_day_boundary_follows_the_time_zone(aiohttp_client: AiohttpClient, config: Settings) -> None:
    """In Asia/Seoul an event at 15:00 UTC belongs to the next day; at 14:59:59.999 UTC to the same day."""
    settings, api, events = await loaded(aiohttp_client, config, "Asia/Seoul")
    boundary = [e for e in events if e["session_id"] == "s-boundary" and e["message_type"] == "user"]
    days = sorted(
        {datetime.fromisoformat(e["created_at"]).astimezone(settings.timezone).date() for e in boundary}
    )
    assert len(days) == 2
    for day, expected in zip(days, (1, 2), strict=True):
        params = {"collection_name": "legal-kb", "date_from": day.isoformat(), "date_to": day.isoformat()}
        body = await (await api.get("/api/analytics/summary", params=params)).json()
        raw = frame(events, settings.timezone)
        assert body["total_queries"] == expected_summary(raw, "legal-kb", day, day)["total_queries"]
        boundary_on_day = [
            e
            for e in boundary
            if datetime.fromisoformat(e["created_at"]).astimezone(settings.timezone).date() == day
        ]
        assert len(boundary_on_day) == expected


@pytest.mark.parametrize("zone", ZONES)
async def test_timeline_has_every_bucket(aiohttp_client: AiohttpClient, store_config: Settings, zone: str) -> None:
    """Daily and hourly timelines list every bucket oldest first, empty ones as zeros, all as DuckDB."""
    settings, api, events = await loaded(aiohttp_client, store_config, zone)
    raw = frame(events, settings.timezone)
    for period, days in (("daily", 7), ("hourly", 5)):
        for collection in (None, "it-helpdesk"):
            query: dict[str, str] = {"period": period, "days": str(days)}
            if collection:
                query["collection_name"] = collection
            before = datetime.now(settings.timezone)
            body = await (await api.get("/api/analytics/timeline", params=query)).json()
            assert (body["collection_name"], body["period"]) == (collection, period)
            points = body["points"]
            step = timedelta(days=1) if period == "daily" else timedelta(hours=1)
            assert len(points) == days * (1 if period == "daily" else 24)
            starts = [datetime.fromisoformat(p["start"]) for p in points]
            assert all(s.utcoffset() == settings.timezone.utcoffset(s.replace(tzinfo=None)) for s in starts)
            assert all(b - a == step for a, b in itertools.pairwise(starts))
            current = before.replace(minute=0, second=0, microsecond=0)
            if period == "daily":
                current = current.replace(hour=0)
            assert starts[-1] in (current, current + step)
            expected = expected_buckets(raw, collection, hourly=period == "hourly")
            empty = 0
            for point, start in zip(points, starts, strict=True):
                key = (start.date().isoformat(), start.hour if period == "hourly" else -1)
                want = expected.get(key)
                if want is None:
                    empty += 1
                    assert point == {
                        "start": point["start"],
                        "total_queries": 0,
                        "unique_sessions": 0,
                        "total_tokens": 0,
                        "avg_response_time_ms": None,
                        "p95_response_time_ms": None,
                        "error_count": 0,
                        "regeneration_count": 0,
                        "positive_feedback": 0,
                        "negative_feedback": 0,
                    }
                    continue
                for name in (
                    "total_queries",
                    "unique_sessions",
                    "total_tokens",
                    "error_count",
                    "regeneration_count",
                ):
                    assert point[name] == want[name], (key, name)
                assert close_to(point["avg_response_time_ms"], want["avg_response_time_ms"], 1e-3)
                assert close_to(point["p95_response_time_ms"], want["p95_response_time_ms"], PERCENTILE_ERROR)
            assert empty > 0  # the range reaches back before the first event


async def test_collections_lists_totals_and_first_last_seen(
    aiohttp_client: AiohttpClient, store_config: Settings
) -> None:
    """/collections lists each collection with its all-time queries and first/last event times."""
    _settings, api, events = await loaded(aiohttp_client, store_config, "Asia/Seoul")
    body = await (await api.get("/api/analytics/collections")).json()
    names = [c["name"] for c in body["collections"]]
    assert names == sorted({e["collection_name"] for e in events})
    for entry in body["collections"]:
        mine = [e for e in events if e["collection_name"] == entry["name"]]
        assert entry["total_queries"] == sum(e["message_type"] == "user" for e in mine)
        instants = sorted(datetime.fromisoformat(e["created_at"]) for e in mine)
        first, last = datetime.fromisoformat(entry["first_seen"]), datetime.fromisoformat(entry["last_seen"])
        assert (first, last) == (instants[0], instants[-1])
        assert first.utcoffset() == timedelta(hours=9)


async def test_unknown_collection_gets_zeros(aiohttp_client: AiohttpClient, config: Settings) -> None:
    """An unknown collection answers 200 with zeros and empty lists, not an error."""
    _, api, _ = await loaded(aiohttp_client, config, "UTC")
    body = await (await api.get("/api/analytics/summary", params={"collection_name": "nope"})).json()
    assert body["total_queries"] == body["unique_sessions"] == body["total_tokens"] == 0
    assert body["avg_response_time_ms"] is None and body["p95_response_time_ms"] is None
    assert body["error_rate"] == 0.0 and body["top_queries"] == [] and body["collections"] == {}
    resp = await api.get("/api/analytics/timeline", params={"collection_name": "nope", "period": "hourly"})
    points = (await resp.json())["points"]
    assert len(points) == 7 * 24 and all(p["total_queries"] == 0 for p in points)


@pytest.mark.parametrize(
    ("path", "query", "parameter"),
    [
        ("summary", {"date_from": "2026-13-01"}, "date_from"),
        ("summary", {"date_to": "yesterday"}, "date_to"),
        ("summary", {"date_from": "2026-W01-1"}, "date_from"),
        ("summary", {"date_from": "2026-03-02", "date_to": "2026-03-01"}, "date_from"),
        ("summary", {"top": "0"}, "top"),
        ("summary", {"top": "101"}, "top"),
        ("summary", {"top": "ten"}, "top"),
        ("timeline", {"period": "weekly"}, "period"),
        ("timeline", {"days": "0"}, "days"),
        ("timeline", {"days": "367"}, "days"),
        ("timeline", {"days": "1.5"}, "days"),
    ],
)
async def test_bad_parameters_are_400_naming_them(
    api_client: TestClient[Any, Any], path: str, query: dict[str, str], parameter: str
) -> None:
    """Malformed or out-of-range parameters answer 400 in the one error shape, naming the parameter."""
    resp = await api_client.get(f"/api/analytics/{path}", params=query)
    assert resp.status == 400
    body = await resp.json()
    assert body["error"] == "bad_parameter" and body["parameter"] == parameter
    assert parameter in body["message"]


async def test_unknown_route_uses_the_one_error_shape(api_client: TestClient[Any, Any]) -> None:
    """A route that does not exist answers 404 with the JSON error shape."""
    resp = await api_client.get("/api/analytics/nothing")
    assert resp.status == 404
    assert (await resp.json())["error"] == "not_found"


async def test_starts_without_database_and_never_creates_it(
    aiohttp_client: AiohttpClient, store_config: Settings
) -> None:
    """Before the ingestor has created (or migrated) the database the API answers zeros and creates nothing."""
    config = store_config
    api = await aiohttp_client(create_analytics(config))
    summary = await (await api.get("/api/analytics/summary")).json()
    assert summary["total_queries"] == 0 and summary["collections"] == {}
    timeline = await (await api.get("/api/analytics/timeline", params={"days": "3"})).json()
    assert len(timeline["points"]) == 3
    assert (await (await api.get("/api/analytics/collections")).json()) == {"collections": []}
    health = await api.get("/healthz")
    assert health.status == 200
    assert await health.json() == {
        "status": "ok", "service": "analytics", "database": "not created yet",
        "store": "postgresql" if config.database_url else "sqlite",
    }
    assert not config.data_dir.exists()
    assert rows(config, "SELECT count(*) FROM chat_statistics_daily") == []  # no table yet: nothing created
    # The ingestor creates the database later: the API opens it then.
    ingest = await aiohttp_client(create_ingestor(config))
    events = generate(2, datetime.now(UTC), count=60)
    await post_all(ingest, events)
    await applied(config, len(events))
    summary = await (await api.get("/api/analytics/summary")).json()
    assert summary["total_queries"] == sum(e["message_type"] == "user" for e in events)
    assert (await (await api.get("/healthz")).json())["database"] == "ready"


async def test_api_connection_cannot_write(
    client: TestClient[Any, Any], api_client: TestClient[Any, Any], config: Settings
) -> None:
    """The API's SQLite connection is read-only: every write attempt fails and changes nothing."""
    await post_all(client, generate(3, datetime.now(UTC), count=30))
    await applied(config, 30)
    database = api_client.app[keys.database_key]
    before = os.stat(config.db_path).st_mtime_ns
    for statement in (
        "INSERT INTO meta VALUES ('x', 'y')",
        "DELETE FROM chat_statistics",
        "CREATE TABLE t (a)",
        "PRAGMA user_version = 99",
    ):
        with pytest.raises(Unavailable, match=r"readonly|read-only"):
            await database.read(lambda conn, sql=statement: conn.execute(sql).fetchall(), None)
    assert os.stat(config.db_path).st_mtime_ns == before
    assert (await (await api_client.get("/api/analytics/summary")).json())["total_queries"] > 0


async def test_event_shows_within_seconds(
    client: TestClient[Any, Any], api_client: TestClient[Any, Any]
) -> None:
    """An accepted event shows in the summary, timeline and collections well within 10 seconds."""
    assert (await api_client.get("/api/analytics/summary")).status == 200  # API up before the event
    loop_time = asyncio.get_running_loop().time
    event = generate(4, datetime.now(UTC), count=1, days=0.001)[0] | {
        "message_type": "user",
        "collection_name": "fresh",
    }
    started = loop_time()
    assert (await client.post("/v1/logs", json=event)).status == 202
    while loop_time() - started < 10:
        summary = await (
            await api_client.get("/api/analytics/summary", params={"collection_name": "fresh"})
        ).json()
        if summary["total_queries"] == 1:
            break
        await asyncio.sleep(0.02)
    elapsed = loop_time() - started
    assert summary["total_queries"] == 1 and summary["unique_sessions"] == 1
    assert elapsed < 2.0, elapsed
    timeline = await (
        await api_client.get(
            "/api/analytics/timeline", params={"collection_name": "fresh", "period": "hourly"}
        )
    ).json()
    assert sum(p["total_queries"] for p in timeline["points"]) == 1
    names = [
        c["name"] for c in (await (await api_client.get("/api/analytics/collections")).json())["collections"]
    ]
    assert "fresh" in names


async def test_retried_log_ids_counted_once(
    client: TestClient[Any, Any], api_client: TestClient[Any, Any], config: Settings
) -> None:
    """Posting the same events three times (same log_ids) counts each once in every statistic."""
    events = generate(5, datetime.now(UTC), count=120, days=0.5)
    for _ in range(3):
        await post_all(client, events, per_request=40)
    await post_all(client, events[:10] + events[:10], per_request=20)
    await applied(config, len(events))
    today = datetime.now(ZoneInfo("UTC")).date()
    body = await (
        await api_client.get(
            "/api/analytics/summary", params={"date_from": (today - timedelta(days=1)).isoformat()}
        )
    ).json()
    check_summary(
        body, expected_summary(frame(events, ZoneInfo("UTC")), None, today - timedelta(days=1), today)
    )


async def test_healthz_and_metrics(api_client: TestClient[Any, Any]) -> None:
    """/healthz answers ok and /metrics counts requests by route in Prometheus text."""
    resp = await api_client.get("/healthz")
    assert resp.status == 200 and (await resp.json())["status"] == "ok"
    await api_client.get("/api/analytics/summary")
    await api_client.get("/api/analytics/summary", params={"top": "x"})
    text = await (await api_client.get("/metrics")).text()
    assert 'chatlog_analytics_requests_total{route="/api/analytics/summary",status="200"} 1.0' in text
    assert 'chatlog_analytics_requests_total{route="/api/analytics/summary",status="400"} 1.0' in text
    assert "chatlog_analytics_request_seconds_bucket" in text


async def test_damaged_database_answers_503(aiohttp_client: AiohttpClient, config: Settings) -> None:
    """A database file that is not SQLite makes /healthz and the endpoints answer 503, not 500."""
    config.db_path.parent.mkdir(parents=True)
    config.db_path.write_bytes(b"this is not a database" * 100)
    api = await aiohttp_client(create_analytics(config))
    for path in (
        "/healthz",
        "/api/analytics/summary",
        "/api/analytics/timeline",
        "/api/analytics/collections",
    ):
        resp = await api.get(path)
        assert resp.status == 503, path
        assert (await resp.json())["error"] == "unavailable" and resp.headers["Retry-After"] == "5"
