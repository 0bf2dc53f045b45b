"""Two analytics APIs on one PostgreSQL behind one URL (a round-robin proxy): any of them answers the same."""

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
from tests.support.proxy import RoundRobinProxy
from tests.support.stores import on_postgres


async def test_two_apis_behind_one_url_answer_alike(
    aiohttp_client: AiohttpClient, config: Settings, postgres_url: str, tmp_path: Path
) -> None:
    """Every answer through the proxy equals each API's own, and both APIs served through it."""
    ingest_settings = on_postgres(config, postgres_url)
    await stored_traffic(await aiohttp_client(create_ingestor(ingest_settings)), ingest_settings)
    apis = []
    for name in ("one", "two"):
        # Each its own (missing) data directory: they share nothing but the database.
        settings = dataclasses.replace(ingest_settings, data_dir=tmp_path / name, faq_warmup=False)
        apis.append(await aiohttp_client(create_analytics(settings)))
    for api in apis:  # the question groups in both caches, so that no answer is "pending"
        assert (await api.get("/api/analytics/faq")).status == 200  # groups in the request (Kiwi loads once)
        await grouped_quality(api, within=60)
    proxy = RoundRobinProxy([str(api.make_url("")) for api in apis])
    front = await aiohttp_client(proxy.app())
    requests = [(path, None) for path in GETS] + list(POSTS)
    for path, body in requests:
        own = [await answer(api, path, body) for api in apis]
        assert own[0][0] == 200, (path, own[0])
        assert own[0] == own[1], path
        for _ in apis:  # once to each
            assert await answer(front, path, body) == own[0], path
    assert list(proxy.counts.values()) == [len(requests)] * len(apis)
    # What they agree on is the database's content, not zeros (stored_traffic: 400 queries, one alert).
    summary = await answer(front, "/api/analytics/summary")
    assert summary[1]["total_queries"] == 400
    assert len((await answer(front, "/api/analytics/alerts"))[1]["items"]) == 1
    assert not (tmp_path / "one").exists() and not (tmp_path / "two").exists()
