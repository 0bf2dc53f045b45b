"""The analytics process's question groupings: warm-up, stale-while-revalidate, shutdown, quality never waiting."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from analytics_api import keys
from analytics_api.app import create_app as create_analytics
from analytics_api.groupings import Groupings
from ingestor.app import create_app as create_ingestor
from shared.settings import Settings
from tests.conftest import AiohttpClient
from tests.support.faq import Reply, exchange, settled
from tests.support.statistics_oracle import post_all

LEAVE = "연차 휴가 신청 방법"
PARENTAL = "육아휴직 기간은 얼마나 되나요?"
CARD = "법인카드 분실 신고"


async def until(check: Callable[[], bool], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "not within the bound"
        await asyncio.sleep(0.05)


async def get(api: Any, path: str, **params: str) -> Any:
    resp = await api.get(path, params=params)
    assert resp.status == 200, await resp.text()
    return await resp.json()


def groupings(api: Any) -> Groupings:
    found: Groupings = api.server.app[keys.groupings_key]
    return found


def questions(*asked: tuple[str, float]) -> list[dict[str, Any]]:
    """Each question asked three times (the default FAQ min_count), answered with ``score``."""
    events: list[dict[str, Any]] = []
    for question, score in asked:
        for _ in range(3):
            events += exchange(question, [Reply(f"{question} answer", score)])
    return events


def month(api: Any) -> dict[str, str]:
    today = api.server.app[keys.layout_key].today()
    return {"date_from": (today - timedelta(days=29)).isoformat(), "date_to": today.isoformat()}


async def test_the_warm_up_serves_the_first_requests_from_the_cache(
    aiohttp_client: AiohttpClient, config: Settings
) -> None:
    """After start the default ranges are grouped in the background: the first FAQ and quality
    requests are answered from the cache, none groups in the request."""
    ingest = await aiohttp_client(create_ingestor(config))
    events = questions((LEAVE, 0.3))
    await post_all(ingest, events)
    await settled(config, len(events))
    api = await aiohttp_client(create_analytics(config))
    assert (await api.get("/healthz")).status == 200  # startup does not wait for the warm-up
    cache = groupings(api)
    await until(lambda: cache.counts["done:warmup"] == 2)
    assert [i["question"] for i in (await get(api, "/api/analytics/faq"))["items"]] == [LEAVE]
    quality = await get(api, "/api/analytics/quality", **month(api))
    assert [g["question"] for g in quality["knowledge_gaps"]] == [LEAVE]
    assert quality["knowledge_gaps_pending"] is False
    assert (cache.counts["fresh"], cache.counts["cold"], cache.counts["pending"]) == (2, 0, 0)
    # The warm-up also looked up the answers shown: the FAQ's first read found them memoised.
    warmed = await cache.groups(None, *days(api), wait=False)
    assert warmed is not None and warmed.groups[0].answer_known


async def test_stale_groups_are_served_then_refreshed_within_the_bound(
    aiohttp_client: AiohttpClient, store_config: Settings
) -> None:
    """Once a range is grouped, new events get the cached answer at once and one background
    regrouping brings them in well within 10 s."""
    config = store_config
    ingest = await aiohttp_client(create_ingestor(config))
    events = questions((LEAVE, 0.3))
    await post_all(ingest, events)
    await settled(config, len(events))
    api = await aiohttp_client(create_analytics(dataclasses.replace(config, faq_warmup=False)))
    cache = groupings(api)
    cache.sync_below = 0.0  # treat every grouping as slow, as a month of questions is
    assert [i["question"] for i in (await get(api, "/api/analytics/faq"))["items"]] == [LEAVE]
    assert cache.counts["cold"] == 1
    more = questions((PARENTAL, 0.2))
    await post_all(ingest, more)
    await settled(config, len(events) + len(more))
    # The data changed: the cached groups answer at once, and several reads start one refresh.
    # (The refresh of two questions can end before the last of them is answered: those are fresh.)
    answers = await asyncio.gather(*(get(api, "/api/analytics/faq") for _ in range(3)))
    shown = [[i["question"] for i in a["items"]] for a in answers]
    assert all(s in ([LEAVE], [LEAVE, PARENTAL]) for s in shown)
    assert cache.counts["stale"] == shown.count([LEAVE]) >= 1
    started = asyncio.get_running_loop().time()
    while [i["question"] for i in (await get(api, "/api/analytics/faq"))["items"]] != [LEAVE, PARENTAL]:
        assert asyncio.get_running_loop().time() - started < 10, "still stale after 10 s"
        await asyncio.sleep(0.05)
    assert cache.counts["done:refresh"] == 1 and cache.counts["cold"] == 1


async def test_a_quick_grouping_is_redone_in_the_request(aiohttp_client: AiohttpClient, config: Settings) -> None:
    """A small deployment's grouping costs nothing: a change shows in the very next answer."""
    ingest = await aiohttp_client(create_ingestor(config))
    events = questions((LEAVE, 0.3))
    await post_all(ingest, events)
    await settled(config, len(events))
    api = await aiohttp_client(create_analytics(dataclasses.replace(config, faq_warmup=False)))
    assert len((await get(api, "/api/analytics/faq"))["items"]) == 1
    more = questions((CARD, 0.9))
    await post_all(ingest, more)
    await settled(config, len(events) + len(more))
    groupings(api).sync_below = 60.0  # whatever this machine's speed
    assert len((await get(api, "/api/analytics/faq"))["items"]) == 2


async def test_quality_never_waits_for_the_grouping(aiohttp_client: AiohttpClient, config: Settings) -> None:
    """A range not grouped yet: the quality answer comes at once with its gaps pending, and the
    gaps follow once the background grouping is done."""
    ingest = await aiohttp_client(create_ingestor(config))
    events = questions((LEAVE, 0.3), (CARD, 0.9))
    await post_all(ingest, events)
    await settled(config, len(events))
    api = await aiohttp_client(create_analytics(dataclasses.replace(config, faq_warmup=False)))
    cache = groupings(api)
    first = await get(api, "/api/analytics/quality", **month(api))
    assert first["knowledge_gaps"] == [] and first["knowledge_gaps_pending"] is True
    assert first["answers"] == 6  # the rest of the answer is complete
    await until(lambda: cache.cached(None, *days(api)))
    later = await get(api, "/api/analytics/quality", **month(api))
    assert [g["question"] for g in later["knowledge_gaps"]] == [LEAVE] and later["knowledge_gaps_pending"] is False
    assert cache.counts["cold"] == 0 and cache.counts["pending"] == 1


def days(api: Any) -> tuple[date, date]:
    window = month(api)
    return date.fromisoformat(window["date_from"]), date.fromisoformat(window["date_to"])


async def test_shutdown_stops_and_awaits_the_tasks(aiohttp_client: AiohttpClient, config: Settings) -> None:
    """Closing the app while the warm-up waits for a database that does not exist yet, and while
    a background grouping runs, ends every task promptly."""
    api = await aiohttp_client(create_analytics(config))  # no database: the warm-up waits for it
    cache = groupings(api)
    await asyncio.sleep(0.1)
    assert cache.busy()  # the warm-up is waiting for the database
    started = asyncio.get_running_loop().time()
    await api.close()
    assert not cache.busy() and cache.closed
    assert asyncio.get_running_loop().time() - started < 5
