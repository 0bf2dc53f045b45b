"""``GET /api/analytics/suggestions`` on ingested traffic built to trigger each kind; balanced traffic triggers none."""

from __future__ import annotations

import contextlib
import sqlite3
from typing import Any

import pytest

from analytics_api.app import create_app as create_analytics
from chat_statistics.rebuild.run import rebuild
from ingestor.app import create_app as create_ingestor
from shared.layout import StorageLayout
from shared.settings import Settings
from tests.analytics_api.test_quality import counted
from tests.conftest import AiohttpClient
from tests.support.faq import Reply, exchange, settled
from tests.support.statistics_oracle import post_all
from tests.support.suggestion_traffic import SCENARIOS, Traffic, scenario


async def suggestions_of(aiohttp_client: AiohttpClient, config: Settings, traffic: Traffic) -> list[dict[str, Any]]:
    """Post the traffic through a real ingestor, wait until it is counted, and ask the analytics API.

    Knowledge gaps are left out: they come from the question groups of ``insights.faq``
    (the questions here are drawn at random, so a collection of weak retrieval can form
    gaps too); their rule is tested on given gaps in ``test_suggestion_rules``.
    """
    ingest = await aiohttp_client(create_ingestor(config))
    await post_all(ingest, traffic.events)
    if traffic.feedback:
        assert (await ingest.post("/v1/feedback", json=traffic.feedback)).status == 202
    await counted(config, traffic.answers, len(traffic.feedback))
    await ingest.close()
    api = await aiohttp_client(create_analytics(config))
    resp = await api.get("/api/analytics/suggestions")
    assert resp.status == 200, await resp.text()
    items: list[dict[str, Any]] = (await resp.json())["items"]
    return [item for item in items if item["kind"] != "knowledge_gap"]


@pytest.mark.parametrize("name", ["balanced", "too_little_data"])
async def test_balanced_traffic_and_thin_data_trigger_nothing(
    aiohttp_client: AiohttpClient, config: Settings, name: str
) -> None:
    """Healthy figures suggest nothing; a collection and a model of 19 answers, all bad, neither."""
    assert await suggestions_of(aiohttp_client, config, scenario(name)) == []


@pytest.mark.parametrize("name", [*SCENARIOS, "negative_feedback"])
async def test_each_kind_is_triggered_by_its_traffic(
    aiohttp_client: AiohttpClient, config: Settings, name: str
) -> None:
    """Exactly one suggestion, of the kind the added traffic pushes past its threshold, with its numbers."""
    items = await suggestions_of(aiohttp_client, config, scenario(name))
    assert len(items) == 1, items
    (item,) = items
    kind, collection = SCENARIOS[name][1] if name in SCENARIOS else ("negative_feedback", "feedback-kb")
    assert (item["kind"], item["collection_name"]) == (kind, collection)
    assert item["severity"] in {"high", "medium", "low"} and " / " in item["message"]
    evidence = item["evidence"]
    if name == "low_retrieval":
        assert evidence["answers_with_retrieval"] == 40 and evidence["low_score_rate"] == pytest.approx(0.6)
        assert item["severity"] == "high" and "low-kb: 60%" in item["message"]  # 0.6 / 0.3 = 2.0
    elif name == "regeneration_by_collection":
        assert evidence["answers"] == 40 and evidence["regeneration_rate"] == pytest.approx(0.4)
        assert item["severity"] == "high"
    elif name == "regeneration_by_model":
        assert evidence["llm_model"] == "flaky-model" and evidence["answers"] == 30 and evidence["regenerations"] == 15
        assert evidence["others_regeneration_rate"] < 0.05 and "model flaky-model" in item["message"]
    elif name == "regeneration_by_level":
        assert evidence["reasoning_level"] == "low" and evidence["regenerations"] >= 24
        assert evidence["regeneration_rate"] >= 0.15 > evidence["others_regeneration_rate"]
    elif name == "slow_responses":
        assert evidence["llm_model"] == "big-model" and evidence["answers"] == 30
        assert 9000 <= evidence["p95_response_time_ms"] <= 12100 and item["severity"] == "high"
    elif name == "errors":
        assert evidence["answers"] == 40 and evidence["errors"] == 10
        assert evidence["top_error_types"][0] == {"type": "timeout", "count": 6}
        assert {e["type"] for e in evidence["top_error_types"]} == {"timeout", "rate_limit", "unknown"}
    else:
        assert (evidence["feedback"], evidence["negative"]) == (25, 15) and item["severity"] == "high"


async def test_rebuild_recomputes_the_answer_rows(aiohttp_client: AiohttpClient, config: Settings) -> None:
    """Rows by model and level and error types, wiped or wrong, are rebuilt exactly as the live path made them."""
    traffic = scenario("errors")
    traffic.block("hr-docs", 30, models=("big-model",), latency=(9000, 12000))
    ingest = await aiohttp_client(create_ingestor(config))
    await post_all(ingest, traffic.events)
    await counted(config, traffic.answers, 0)
    await ingest.close()

    def tables() -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
        with contextlib.closing(sqlite3.connect(config.db_path)) as conn:
            return (conn.execute("SELECT * FROM answer_statistics ORDER BY 1, 2, 3, 4").fetchall(),
                    conn.execute("SELECT * FROM error_statistics ORDER BY 1, 2, 3").fetchall())

    live = tables()
    assert sum(int(row[4]) for row in live[0]) == traffic.answers  # type: ignore[call-overload]
    assert {row[2] for row in live[1]} == {"timeout", "rate_limit", ""}
    with contextlib.closing(sqlite3.connect(config.db_path)) as conn, conn:
        conn.execute("DELETE FROM answer_statistics WHERE llm_model = 'big-model'")
        conn.execute("UPDATE answer_statistics SET answers = answers + 3")
        conn.execute("DELETE FROM error_statistics")
    layout = StorageLayout.from_settings(config)
    today = layout.today()
    rebuild(config.db_path, layout, today, today, workers=1)
    assert tables() == live


async def test_a_frequent_question_answered_from_low_scores_is_a_knowledge_gap(
    aiohttp_client: AiohttpClient, config: Settings
) -> None:
    """Ingested exchanges: a question group asked 6 times (in three wordings) whose answers came
    from scores under the threshold is one ``knowledge_gap`` suggestion naming its collection and
    numbers; a question as often asked but well answered is none."""
    events: list[dict[str, Any]] = []
    for wording in ("육아휴직 기간은 얼마나 되나요?", "육아휴직 기간", "육아 휴직 기간이 어떻게 되나요") * 2:
        events += exchange(wording, [Reply("규정 문서를 찾지 못했습니다.", score=0.3)])
    for _ in range(6):
        events += exchange("연차 휴가 신청 방법", [Reply("인사 포털에서 신청합니다.", score=0.9)])
    ingest = await aiohttp_client(create_ingestor(config))
    assert (await ingest.post("/v1/logs", json=events)).status == 202
    await settled(config, len(events))
    await ingest.close()
    api = await aiohttp_client(create_analytics(config))
    resp = await api.get("/api/analytics/suggestions")
    assert resp.status == 200, await resp.text()
    gaps = [item for item in (await resp.json())["items"] if item["kind"] == "knowledge_gap"]
    assert len(gaps) == 1, gaps
    (gap,) = gaps
    assert gap["collection_name"] == "hr-docs" and " / " in gap["message"]
    assert gap["evidence"]["question"] in gap["message"] and "육아" in gap["evidence"]["question"]
    assert gap["evidence"]["count"] == 6 and len(gap["evidence"]["variants"]) == 3
    assert gap["evidence"]["avg_best_score"] == pytest.approx(0.3)
