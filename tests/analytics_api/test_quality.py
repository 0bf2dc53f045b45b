"""``GET /api/analytics/quality`` and the feedback counts, against exact figures from labelled raw events."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from analytics_api.app import create_app as create_analytics
from ingestor.app import create_app as create_ingestor
from shared.settings import Settings
from tests.conftest import AiohttpClient
from tests.support.quality_oracle import check_quality, expected_quality, feedback_for, labelled_answers
from tests.support.statistics_oracle import post_all
from tests.support.stores import rows


async def counted(config: Settings, answers: int, feedback: int, within: float = 15.0) -> None:
    """Wait until the quality rows hold ``answers`` answers and ``feedback`` pieces of feedback."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        found = rows(config, "SELECT coalesce(sum(answers), 0) FROM retrieval_statistics")
        a = found[0][0] if found else 0
        found = rows(config, "SELECT coalesce(sum(positive + negative), 0) FROM feedback_statistics")
        f = found[0][0] if found else 0
        if (a, f) == (answers, feedback):
            return
        assert asyncio.get_running_loop().time() < deadline, f"counted {(a, f)}, want {(answers, feedback)}"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("zone", ["UTC", "Asia/Seoul"])
async def test_quality_equals_the_exact_figures(
    aiohttp_client: AiohttpClient, store_config: Settings, zone: str
) -> None:
    """Every rate, count, bucket and percentile of the answer, all collections and one, live."""
    zoned = dataclasses.replace(store_config, timezone=ZoneInfo(zone))
    ingest = await aiohttp_client(create_ingestor(zoned))
    events = labelled_answers(7, datetime.now(UTC))
    feedback = feedback_for(events, 8)
    await post_all(ingest, events)
    for start in range(0, len(feedback), 50):
        resp = await ingest.post("/v1/feedback", json=feedback[start : start + 50])
        assert resp.status == 202, await resp.text()
    answers = sum(e["message_type"] == "assistant" for e in events)
    await counted(zoned, answers, len(feedback))
    api = await aiohttp_client(create_analytics(zoned))
    today = datetime.now(zoned.timezone).date()
    window = {"date_from": (today - timedelta(days=3)).isoformat(), "date_to": today.isoformat()}
    resp = await api.get("/api/analytics/quality", params=window)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["low_score_threshold"] == 0.5 and body["knowledge_gaps"] == []
    assert (body["collection_name"], body["date_from"], body["date_to"]) == (None, *window.values())
    check_quality(body, expected_quality(events, feedback, None))
    for name in ("hr-docs", "legal-kb"):
        resp = await api.get("/api/analytics/quality", params={**window, "collection_name": name})
        check_quality(await resp.json(), expected_quality(events, feedback, name))
    summary = await (await api.get("/api/analytics/summary", params=window)).json()
    assert summary["positive_feedback"] == sum(f["score"] == 1 for f in feedback)
    assert summary["negative_feedback"] == sum(f["score"] == -1 for f in feedback)


async def test_threshold_is_a_setting_applied_at_read_time(aiohttp_client: AiohttpClient, config: Settings) -> None:
    """CHATLOG_LOW_SCORE_THRESHOLD moves every low-score figure; no stored count depends on it."""
    ingest = await aiohttp_client(create_ingestor(config))
    events = labelled_answers(9, datetime.now(UTC), count=300)
    await post_all(ingest, events)
    await counted(config, sum(e["message_type"] == "assistant" for e in events), 0)
    for threshold in (0.3, 0.57):
        api = await aiohttp_client(create_analytics(dataclasses.replace(config, low_score_threshold=threshold)))
        body = await (await api.get("/api/analytics/quality")).json()
        assert body["low_score_threshold"] == threshold
        check_quality(body, expected_quality(events, [], None, threshold))


async def test_empty_range_answers_zeros(aiohttp_client: AiohttpClient, config: Settings) -> None:
    """Before any answer: zeros, null percentiles, ten empty buckets; bad dates are a 400."""
    await aiohttp_client(create_ingestor(config))  # creates the database
    api = await aiohttp_client(create_analytics(config))
    body: dict[str, Any] = await (await api.get("/api/analytics/quality")).json()
    assert body["answers"] == 0 and body["low_score_rate"] == 0.0 and body["by_collection"] == []
    assert body["best_score_percentiles"] == {"p10": None, "p50": None, "p90": None}
    assert [b["count"] for b in body["best_score_histogram"]] == [0] * 10
    resp = await api.get("/api/analytics/quality", params={"date_from": "2026-13-01"})
    assert resp.status == 400 and (await resp.json())["parameter"] == "date_from"


async def test_feedback_in_the_timeline_and_grafana(aiohttp_client: AiohttpClient, store_config: Settings) -> None:
    """Each timeline point and Grafana bucket counts the feedback given in it, per collection and overall."""
    config = store_config
    from tests.support.grafana_requests import data_query_request, target

    ingest = await aiohttp_client(create_ingestor(config))
    now = datetime.now(UTC)
    items = []
    for i in range(30):
        at = now - timedelta(hours=i % 5, minutes=1)
        items.append({"log_id": f"l{i}", "collection_name": "hr-docs" if i % 3 else "legal-kb",
                      "score": 1 if i % 4 else -1, "created_at": at.isoformat()})
    assert (await ingest.post("/v1/feedback", json=items)).status == 202
    await counted(config, 0, len(items))
    api = await aiohttp_client(create_analytics(config))
    for collection in (None, "hr-docs"):
        mine = [f for f in items if collection is None or f["collection_name"] == collection]
        params = {"period": "hourly", "days": 1} | ({"collection_name": collection} if collection else {})
        body = await (await api.get("/api/analytics/timeline", params=params)).json()
        by_hour = {p["start"][:13]: (p["positive_feedback"], p["negative_feedback"]) for p in body["points"]}
        want: dict[str, list[int]] = {}
        for f in mine:
            pair = want.setdefault(f["created_at"][:13], [0, 0])
            pair[0 if f["score"] == 1 else 1] += 1
        assert {k: v for k, v in by_hour.items() if v != (0, 0)} == {k: tuple(v) for k, v in want.items()}
        payload = {"collection_name": collection} if collection else {}
        request = data_query_request(
            [target("positive_feedback", payload), target("negative_feedback", payload, "B")], hours=8
        )
        positive, negative = await (await api.post("/grafana/query", json=request)).json()
        assert sum(v for v, _ in positive["datapoints"]) == sum(f["score"] == 1 for f in mine)
        assert sum(v for v, _ in negative["datapoints"]) == sum(f["score"] == -1 for f in mine)
    names = [m["value"] for m in await (await api.post("/grafana/metrics", json={})).json()]
    assert {"positive_feedback", "negative_feedback"} <= set(names)
