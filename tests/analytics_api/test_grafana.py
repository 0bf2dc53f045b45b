"""The Grafana JSON datasource under /grafana, with bodies shaped as simpod-json-datasource sends them."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from analytics_api.app import create_app as create_analytics
from ingestor.app import create_app as create_ingestor
from shared.settings import Settings
from tests.conftest import AiohttpClient
from tests.support.events import make_event
from tests.support.grafana_requests import NOW, data_query_request, target

Served = tuple[TestClient[Any, Any], list[dict[str, Any]]]


@pytest.fixture
async def grafana(aiohttp_client: AiohttpClient, store_config: Settings) -> Served:
    """An analytics API over events spread across the last five hours, and those events (on both stores)."""
    return await serve_events(aiohttp_client, store_config)


@pytest.fixture
async def grafana_sqlite(aiohttp_client: AiohttpClient, config: Settings) -> Served:
    """As ``grafana``, on SQLite only (for what does not read the store)."""
    return await serve_events(aiohttp_client, config)


async def serve_events(aiohttp_client: AiohttpClient, config: Settings) -> Served:
    """Events spread across the last five hours posted to an ingestor; an analytics API over them."""
    ingest = await aiohttp_client(create_ingestor(config))
    rng = random.Random(7)
    events = []
    for i in range(120):
        when = NOW - timedelta(hours=rng.randrange(5), minutes=rng.randrange(25))
        kind = rng.choice(("user", "assistant"))
        events.append(make_event(rng, message_type=kind, created_at=when, session_id=f"s{i % 17}"))
    assert (await ingest.post("/v1/logs", json=events)).status == 202
    await ingest.close()
    return await aiohttp_client(create_analytics(config)), events


def expected_hourly(events: list[dict[str, Any]], collection: str | None) -> Counter[int]:
    """User events per UTC hour start (ms), computed independently of chatlog."""
    counts: Counter[int] = Counter()
    for e in events:
        if e["message_type"] != "user" or (collection and e["collection_name"] != collection):
            continue
        at = datetime.fromisoformat(e["created_at"]).replace(minute=0, second=0, microsecond=0)
        counts[int(at.timestamp() * 1000)] += 1
    return counts


async def test_save_and_test(grafana: Served) -> None:
    """GET /grafana/ answers 200 for the datasource's "Save & test"."""
    client, _ = grafana
    assert (await client.get("/grafana/")).status == 200


async def test_metrics_and_payload_options(grafana: Served) -> None:
    """/metrics lists every metric with a collection_name select filled from the data."""
    client, events = grafana
    body = await (await client.post("/grafana/metrics", json={"metric": "", "payload": {}})).json()
    names = {m["value"] for m in body}
    assert {"queries", "tokens", "errors", "regenerations", "p95_response_time_ms", "top_queries"} <= names
    select = body[0]["payloads"][0]
    assert select["name"] == "collection_name" and select["type"] == "select"
    collections = {e["collection_name"] for e in events}
    assert {o["value"] for o in select["options"]} == collections | {""}
    options = await (await client.post("/grafana/metric-payload-options",
                                       json={"metric": "queries", "payload": {}, "name": "collection_name"})).json()
    assert {o["value"] for o in options} == collections


async def test_hourly_series_match_the_events(grafana: Served) -> None:
    """Hourly query counts equal an independent count, per collection and for all."""
    client, events = grafana
    request = data_query_request([target("queries", ref="A"), target("queries", {"collection_name": "hr-docs"}, "B"),
                                  target("queries", '{"collection_name": "legal-kb"}', "C")])
    resp = await client.post("/grafana/query", json=request)
    assert resp.status == 200, await resp.text()
    series = await resp.json()
    assert [s["refId"] for s in series] == ["A", "B", "C"]
    for s, collection in zip(series, (None, "hr-docs", "legal-kb"), strict=True):
        got = {ms: v for v, ms in s["datapoints"]}
        want = expected_hourly(events, collection)
        assert len(got) == 7  # six hours back to twenty minutes ahead: every bucket, empty ones included
        assert {ms: v for ms, v in got.items() if v} == dict(want)
        assert [ms for _, ms in s["datapoints"]] == sorted(got)


@pytest.mark.parametrize("field", ["filters", "adhocFilters"])
async def test_daily_buckets_and_adhoc_filter(grafana: Served, field: str) -> None:
    """A day-long interval gives daily points; the ad-hoc filter (either name) narrows to one collection."""
    client, events = grafana
    chosen = [{"key": "collection_name", "operator": "=", "value": "it-helpdesk"}]
    request = data_query_request([target("queries")], hours=72, interval_ms=86_400_000, **{field: chosen})
    series = await (await client.post("/grafana/query", json=request)).json()
    points = series[0]["datapoints"]
    assert 3 <= len(points) <= 5
    total = sum(v for v, _ in points)
    assert total == sum(1 for e in events if e["message_type"] == "user" and e["collection_name"] == "it-helpdesk")


async def test_tables(grafana: Served) -> None:
    """top_queries and collections answer Grafana tables with columns and rows."""
    client, events = grafana
    request = data_query_request([target("top_queries", {"top": 3}), target("collections", ref="B")], hours=24)
    top, per_collection = await (await client.post("/grafana/query", json=request)).json()
    assert top["type"] == "table" and [c["text"] for c in top["columns"]] == ["query", "count"]
    assert 1 <= len(top["rows"]) <= 3
    users = Counter(e["collection_name"] for e in events if e["message_type"] == "user")
    assert {row[0]: row[1] for row in per_collection["rows"]} == dict(users)


async def test_variable_and_tags(grafana: Served) -> None:
    """/variable, /tag-keys and /tag-values serve the collection names."""
    client, events = grafana
    collections = {e["collection_name"] for e in events}
    variable = await (await client.post("/grafana/variable", json={"payload": {"target": "collections"},
                                                                 "range": {"from": "now-6h"}})).json()
    assert {v["__value"] for v in variable} == collections
    # The plugin reads __text/__value; its OpenAPI document requires text/value as well.
    assert all(v == {"__text": v["__value"], "__value": v["__value"], "text": v["__value"],
                     "value": v["__value"]} for v in variable)
    keys = await (await client.post("/grafana/tag-keys", json={})).json()
    assert keys == [{"type": "string", "text": "collection_name"}]
    values = await (await client.post("/grafana/tag-values", json={"key": "collection_name"})).json()
    assert {v["text"] for v in values} == collections


@pytest.mark.parametrize(
    "body",
    [
        {"targets": [{"target": "queries"}]},
        {"range": {"from": "yesterday", "to": "now"}, "targets": []},
        data_query_request([target("no_such_metric")]),
        data_query_request([target("queries", payload=[1, 2])]),
        data_query_request([target("queries")], adhocFilters=[{"key": "collection_name", "operator": "=~",
                                                                "value": "h.*"}]),
    ],
)
async def test_malformed_query_is_400(grafana_sqlite: Served, body: dict[str, Any]) -> None:
    """A malformed DataQueryRequest is refused with 400 in the one error shape."""
    client, _ = grafana_sqlite
    resp = await client.post("/grafana/query", json=body)
    assert resp.status == 400
    assert (await resp.json())["error"] == "bad_request"
