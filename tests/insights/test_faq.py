"""The FAQ and the knowledge gaps over real ingested events: groups, shares, the answer shown, min_count."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from analytics_api.app import create_app as create_analytics
from ingestor.app import create_app as create_ingestor
from shared.settings import Settings
from tests.conftest import AiohttpClient
from tests.support.faq import Reply, exchange, grouped_quality, settled
from tests.support.statistics_oracle import post_all

LEAVE = "연차 휴가 신청 방법"
LEAVE_PARAPHRASE = "연차휴가는 어떻게 신청하나요?"
PARENTAL = "육아휴직 기간은 얼마나 되나요?"
CARD = "법인카드 분실 신고"


async def faq(api: Any, **params: str) -> list[dict[str, Any]]:
    resp = await api.get("/api/analytics/faq", params=params)
    assert resp.status == 200, await resp.text()
    items: list[dict[str, Any]] = (await resp.json())["items"]
    return items


async def test_paraphrases_are_one_entry_with_its_best_answer(
    aiohttp_client: AiohttpClient, store_config: Settings
) -> None:
    """Paraphrases group, unrelated questions stay apart, small groups are left out, shares add up."""
    config = store_config
    ingest = await aiohttp_client(create_ingestor(config))
    events: list[dict[str, Any]] = []
    for i in range(3):
        events += exchange(LEAVE, [Reply(f"leave answer {i}", 0.6 + i / 10)])
    for i in range(2):
        events += exchange(LEAVE_PARAPHRASE, [Reply(f"paraphrase answer {i}", 0.5)], collection="legal-kb")
    for i in range(4):
        events += exchange(PARENTAL, [Reply(f"parental answer {i}", 0.3)])
    events += exchange(CARD, [Reply("card answer", 0.9)])
    await post_all(ingest, events)
    await settled(config, len(events))
    api = await aiohttp_client(create_analytics(config))
    items = await faq(api)
    assert [(i["question"], i["count"]) for i in items] == [(LEAVE, 5), (PARENTAL, 4)]
    leave, parental = items
    assert leave["variants"] == [{"text": LEAVE, "count": 3}, {"text": LEAVE_PARAPHRASE, "count": 2}]
    assert leave["collections"] == {"hr-docs": 3, "legal-kb": 2}
    assert leave["share"] == pytest.approx(5 / 10) and parental["share"] == pytest.approx(4 / 10)
    assert leave["answer"] == "leave answer 2" and leave["answer_conversation_id"]
    assert leave["avg_best_score"] == pytest.approx((0.6 + 0.7 + 0.8 + 0.5 + 0.5) / 5)
    assert parental["avg_best_score"] == pytest.approx(0.3)
    only_legal = await faq(api, collection_name="legal-kb")
    assert only_legal == []  # two questions there: under CHATLOG_FAQ_MIN_COUNT
    lowered = await aiohttp_client(create_analytics(dataclasses.replace(config, faq_min_count=1)))
    assert [i["question"] for i in await faq(lowered)] == [LEAVE, PARENTAL, CARD]
    assert [i["question"] for i in await faq(lowered, limit="1")] == [LEAVE]
    legal = await faq(lowered, collection_name="legal-kb")
    assert [(i["question"], i["count"], i["share"]) for i in legal] == [(LEAVE_PARAPHRASE, 2, 1.0)]


async def test_the_answer_shown_follows_the_rules(aiohttp_client: AiohttpClient, store_config: Settings) -> None:
    """Regenerations, regenerated answers and errors are never shown; good feedback comes before the score."""
    config = store_config
    ingest = await aiohttp_client(create_ingestor(config))
    events = exchange(LEAVE, [Reply("error answer", 0.99, status="error")])
    events += exchange(LEAVE, [Reply("rejected answer", 0.98), Reply("regenerated answer", 0.97, regeneration=True)])
    events += exchange(LEAVE, [Reply("plain answer", 0.7)])
    events += exchange(LEAVE, [Reply("liked answer", 0.4, log_id="liked-answer")])
    events += exchange(LEAVE, [Reply("disputed answer", 0.45, log_id="disputed-answer")])
    await post_all(ingest, events)
    await settled(config, len(events))
    api = await aiohttp_client(create_analytics(config))
    (item,) = await faq(api)
    assert (item["count"], item["answer"]) == (5, "plain answer")
    # Every scored answer counts in the mean, the rejected and the failed ones too.
    assert item["avg_best_score"] == pytest.approx((0.99 + 0.98 + 0.97 + 0.7 + 0.4 + 0.45) / 6)
    feedback = [
        {"log_id": "disputed-answer", "collection_name": "hr-docs", "score": 1},
        {"log_id": "disputed-answer", "collection_name": "hr-docs", "score": -1},
        {"log_id": "liked-answer", "collection_name": "hr-docs", "score": 1},
    ]
    assert (await ingest.post("/v1/feedback", json=feedback)).status == 202
    await settled(config, len(events), len(feedback))
    (item,) = await faq(api)
    assert (item["answer"], item["answer_log_id"]) == ("liked answer", "liked-answer")


async def test_a_question_without_a_usable_answer_has_none(aiohttp_client: AiohttpClient, config: Settings) -> None:
    """Only errors and regenerations: the group is listed with no answer; answers in other sessions do not pair."""
    ingest = await aiohttp_client(create_ingestor(config))
    events: list[dict[str, Any]] = []
    for _ in range(3):
        events += exchange(CARD, [Reply("failed", 0.9, status="error")])
    events += exchange(CARD, [])
    stray = exchange("unrelated", [Reply("stray answer", 0.95)])[1:]  # an answer in a session with no question
    await post_all(ingest, events + stray)
    await settled(config, len(events) + len(stray))
    api = await aiohttp_client(create_analytics(config))
    (item,) = await faq(api)
    assert (item["question"], item["count"], item["answer"], item["answer_log_id"]) == (CARD, 4, None, None)
    assert item["avg_best_score"] == pytest.approx(0.9)


async def test_an_answer_pairs_with_a_question_committed_before(
    aiohttp_client: AiohttpClient, config: Settings
) -> None:
    """The question and its answer arrive in different requests (and commits): still paired."""
    ingest = await aiohttp_client(create_ingestor(config))
    posted = 0
    for i in range(3):
        question, answer = exchange(PARENTAL, [Reply(f"answer {i}", 0.2 + i / 10)])
        await post_all(ingest, [question])
        await settled(config, posted + 1)
        await post_all(ingest, [answer])
        posted += 2
        await settled(config, posted)
    api = await aiohttp_client(create_analytics(config))
    (item,) = await faq(api)
    assert (item["answer"], item["avg_best_score"]) == ("answer 2", pytest.approx(0.3))


async def test_knowledge_gaps_are_the_low_scored_groups_lowest_first(
    aiohttp_client: AiohttpClient, store_config: Settings
) -> None:
    """Groups of at least min_count under the threshold, lowest mean first; the quality answer carries them."""
    config = store_config
    ingest = await aiohttp_client(create_ingestor(config))
    events: list[dict[str, Any]] = []
    for question, score, times in ((LEAVE, 0.45, 3), (PARENTAL, 0.2, 3), (CARD, 0.1, 2), ("VPN 접속 오류", 0.9, 5)):
        for _ in range(times):
            events += exchange(question, [Reply("answer", score)], collection="it-helpdesk")
    await post_all(ingest, events)
    await settled(config, len(events))
    api = await aiohttp_client(create_analytics(config))
    gaps = (await grouped_quality(api))["knowledge_gaps"]
    assert [(g["question"], g["count"], g["collection_name"]) for g in gaps] == [
        (PARENTAL, 3, "it-helpdesk"), (LEAVE, 3, "it-helpdesk"),
    ]
    assert [g["avg_best_score"] for g in gaps] == [pytest.approx(0.2), pytest.approx(0.45)]
    assert gaps[0]["variants"] == [{"text": PARENTAL, "count": 3}]
    strict = await aiohttp_client(create_analytics(dataclasses.replace(config, low_score_threshold=0.3)))
    gaps = (await grouped_quality(strict))["knowledge_gaps"]
    assert [g["question"] for g in gaps] == [PARENTAL]
