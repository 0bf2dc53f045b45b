"""``GET /api/analytics/report``: the same report as the CLI, in three formats, with its parameters checked."""

from __future__ import annotations

import json
from typing import Any

from aiohttp.test_utils import TestClient

from analytics_api.app import create_app as create_analytics
from ingestor.app import create_app as create_ingestor
from shared.settings import Settings
from tests.chatlog.test_report import ALERT_MESSAGE, stored_traffic
from tests.conftest import AiohttpClient


async def test_report_in_every_format(aiohttp_client: AiohttpClient, store_config: Settings) -> None:
    """Summary, suggestions, the period's alert and the conversations to review, in HTML, JSON and Markdown."""
    config = store_config
    await stored_traffic(await aiohttp_client(create_ingestor(config)), config)
    api = await aiohttp_client(create_analytics(config))
    resp = await api.get("/api/analytics/report")
    assert resp.status == 200 and resp.content_type == "text/html" and resp.charset == "utf-8"
    assert resp.headers["Content-Security-Policy"].startswith("default-src 'none'")
    page = await resp.text()
    assert page.count("<svg") == 5 and ALERT_MESSAGE in page and "<script" not in page
    assert "bad-1" in page  # the errored conversation, to review
    resp = await api.get("/api/analytics/report", params={"format": "json", "collection_name": "low-kb"})
    assert resp.status == 200 and resp.content_type == "application/json"
    body = json.loads(await resp.text())
    assert body["collection_name"] == "low-kb" and body["summary"]["total_queries"] == 40
    assert [s["kind"] for s in body["suggestions"] if s["kind"] != "knowledge_gap"] == ["low_retrieval"]
    resp = await api.get("/api/analytics/report", params={"format": "markdown", "date_from": body["date_to"]})
    assert resp.status == 200 and resp.content_type == "text/markdown"
    text = await resp.text()
    assert f"all collections, {body['date_to']} to {body['date_to']}" in text and ALERT_MESSAGE in text


async def test_report_parameters_are_checked(api_client: TestClient[Any, Any]) -> None:
    """A bad format or a range over 366 days is a 400 naming the parameter; no database yet is an empty report."""
    for params, name in (({"format": "pdf"}, "format"), ({"date_from": "2025-01-01", "date_to": "2026-01-02"},
                                                         "date_from"), ({"date_to": "2026-13-01"}, "date_to")):
        resp = await api_client.get("/api/analytics/report", params=params)
        assert resp.status == 400, params
        assert (await resp.json())["parameter"] == name
    resp = await api_client.get("/api/analytics/report", params={"format": "json", "date_from": "2025-01-01",
                                                                "date_to": "2026-01-01"})
    body = await resp.json()
    assert resp.status == 200 and body["summary"]["total_queries"] == 0 and len(body["timeline"]) == 366
