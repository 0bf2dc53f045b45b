"""The same events give the same answers on SQLite and on PostgreSQL, at every statistics endpoint."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from analytics_api.app import create_app as create_analytics
from ingestor.app import create_app as create_ingestor
from shared.settings import Settings
from tests.chatlog.test_report import stored_traffic
from tests.conftest import AiohttpClient
from tests.support.analytics import GETS, POSTS, answer
from tests.support.faq import grouped_quality
from tests.support.stores import on_postgres
from tests.support.suggestion_traffic import scenario

# The collections of ``stored_traffic``, and one that has nothing.
COLLECTIONS = ("hr-docs", "it-helpdesk", "low-kb", "nope")


async def test_every_endpoint_answers_alike(
    aiohttp_client: AiohttpClient, config: Settings, postgres_url: str, tmp_path: Path
) -> None:
    lite = config
    pg = on_postgres(dataclasses.replace(config, data_dir=tmp_path / "pg-node"), postgres_url)
    traffic = scenario("low_retrieval")
    apis = []
    for settings in (lite, pg):
        await stored_traffic(await aiohttp_client(create_ingestor(settings)), settings, traffic)
        api = await aiohttp_client(create_analytics(dataclasses.replace(settings, faq_warmup=False)))
        assert (await api.get("/api/analytics/faq")).status == 200  # groups now: no answer "pending"
        await grouped_quality(api, within=60)
        apis.append(api)
    paths = [
        *GETS,
        *(f"/api/analytics/quality?collection_name={c}" for c in COLLECTIONS),
        *(f"/api/analytics/summary?collection_name={c}&date_from=2020-01-01" for c in COLLECTIONS),
        "/api/analytics/timeline?period=daily&days=30",
        "/api/analytics/report?format=json&collection_name=low-kb",
    ]
    requests = [(path, None) for path in paths] + list(POSTS)
    for path, body in requests:
        on_sqlite, on_postgresql = [await answer(api, path, body) for api in apis]
        assert on_sqlite[0] == 200, (path, on_sqlite)
        if path == "/healthz":
            assert (on_sqlite[1].pop("store"), on_postgresql[1].pop("store")) == ("sqlite", "postgresql")
        assert on_postgresql == on_sqlite, path
    assert (await answer(apis[1], "/api/analytics/summary"))[1]["total_queries"] == 400
