"""``chatlog report``: every section, in JSON, Markdown and self-contained HTML, read only, from live data."""

from __future__ import annotations

import asyncio
import json
import stat
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from chatlog.cli import main as chatlog_main
from ingestor.app import create_app as create_ingestor
from shared.settings import Settings
from tests.analytics_api.test_quality import counted
from tests.conftest import AiohttpClient
from tests.support.statistics_oracle import post_all
from tests.support.stores import rows, write
from tests.support.suggestion_traffic import Traffic, scenario


def _env(monkeypatch: pytest.MonkeyPatch, config: Settings) -> None:
    monkeypatch.setenv("CHATLOG_DATA_DIR", str(config.data_dir))
    monkeypatch.setenv("CHATLOG_TIMEZONE", str(config.timezone))
    monkeypatch.setenv("CHATLOG_USER_HASH_SECRET", config.user_hash_secret)
    if config.database_url:
        monkeypatch.setenv("CHATLOG_DATABASE_URL", config.database_url)


ALERT_MESSAGE = "low-kb: 62% 저점수 답변 / low-score answers"


async def stored_traffic(client: TestClient[Any, Any], config: Settings, traffic: Traffic | None = None) -> None:
    """Balanced traffic plus a collection of weak retrieval, an errored conversation and one recorded alert.

    ``traffic`` (default: a new ``scenario("low_retrieval")``) fixes every instant: the same
    traffic stored twice gives equal stores.
    """
    traffic = traffic or scenario("low_retrieval")
    await post_all(client, traffic.events)
    assert (await client.post("/v1/feedback", json=traffic.feedback)).status == 202
    now = traffic.now.isoformat()
    posted = {"conversation_id": "bad-1", "collection_name": "hr-docs", "messages": [
        {"role": "user", "content": "q", "timestamp": now},
        {"role": "assistant", "content": "a", "timestamp": now, "error": True}]}
    assert (await client.post("/v1/conversations", json=posted)).status == 202
    await counted(config, traffic.answers, len(traffic.feedback))
    started = (traffic.now - timedelta(hours=1)).isoformat(timespec="seconds")
    write(config, "INSERT INTO alerts (rule, scope, state, started_at, value, threshold, baseline, message) "
                  "VALUES ('low_score_rate', 'low-kb', 'firing', ?, 0.62, 0.3, 0.1, ?)", (started, ALERT_MESSAGE))


async def test_report_has_every_section(
    aiohttp_client: AiohttpClient, store_config: Settings, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Usage, timeline, quality, FAQ, gaps, suggestions, the period's alerts and the conversations to review."""
    config = store_config
    await stored_traffic(await aiohttp_client(create_ingestor(config)), config)
    _env(monkeypatch, config)
    assert await asyncio.to_thread(chatlog_main, ["report", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["summary"]["total_queries"] == 400
    assert {c["collection_name"]: c["total_queries"] for c in report["collections"]} == {
        "hr-docs": 180, "it-helpdesk": 180, "low-kb": 40}
    assert len(report["timeline"]) == 7 and report["timeline"][-1]["total_queries"] == 400
    assert report["quality"]["answers"] == 400 and report["quality"]["answers_with_retrieval"] == 400
    # Knowledge gaps (from the question groups) may join: the questions are drawn at random.
    assert [(s["kind"], s["collection_name"]) for s in report["suggestions"] if s["kind"] != "knowledge_gap"] == [
        ("low_retrieval", "low-kb")]
    assert [(a["rule"], a["collection_name"], a["message"]) for a in report["alerts"]] == [
        ("low_score_rate", "low-kb", ALERT_MESSAGE)]
    review = report["conversations_to_review"]
    assert review[0]["conversation_id"] == "bad-1" and review[0]["reason"] == "error"
    assert isinstance(report["faq"], list) and isinstance(report["knowledge_gaps"], list)

    assert await asyncio.to_thread(chatlog_main, ["report", "--collection", "low-kb"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("# chatlog report: low-kb, ")
    for heading in ("Usage", "Retrieval quality", "FAQ", "Knowledge gaps", "Suggestions", "Alerts",
                    "Conversations to review"):
        assert f"\n## {heading}\n" in text
    assert "`low_retrieval`: low-kb: 검색된 답변의 60%" in text and ALERT_MESSAGE in text
    assert "hr-docs" not in text.split("## Usage")[1].split("## Retrieval quality")[0]


async def test_html_report_is_one_private_file(
    client: TestClient[Any, Any], config: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--output`` writes one 0640 file atomically: charts inline, nothing to fetch, every section."""
    await stored_traffic(client, config)
    _env(monkeypatch, config)
    out = config.data_dir.parent / "out" / "week.html"
    assert await asyncio.to_thread(chatlog_main, ["report", "--format", "html", "--output", str(out)]) == 0
    assert "wrote the html report" in capsys.readouterr().out
    assert stat.S_IMODE(out.stat().st_mode) == 0o640 and [p.name for p in out.parent.iterdir()] == ["week.html"]
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 5
    assert "default-src 'none'" in page and "<script" not in page
    for attribute in ("src=", "href=", "url(", "@import"):
        assert attribute not in page
    assert ALERT_MESSAGE in page and 'data-kind="low_retrieval"' in page


def test_report_refuses_bad_ranges_and_a_missing_database(
    store_config: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad input gets a one-line error and exit 1; the report never creates the database."""
    config = store_config
    _env(monkeypatch, config)
    assert chatlog_main(["report", "--from", "2026-03-02", "--to", "2026-03-01"]) == 1
    assert "--from 2026-03-02 is after --to 2026-03-01" in capsys.readouterr().err
    assert chatlog_main(["report", "--from", "2025-01-01", "--to", "2026-03-01"]) == 1
    assert "at most 366 days" in capsys.readouterr().err
    assert chatlog_main(["report"]) == 1
    assert "no database" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        chatlog_main(["report", "--format", "pdf"])
    assert not config.db_path.exists()
    assert rows(config, "SELECT count(*) FROM meta") == []  # nor, on PostgreSQL, a table
