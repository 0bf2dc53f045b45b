"""The HTML report in a real headless Chromium: it renders, its charts are drawn, it asks for nothing.

A week of generated traffic goes through a real ingestor; ``chatlog report --format
html`` writes the file; Chromium opens it from disk with the Network domain watched.
``CHATLOG_SCREENSHOTS=1`` also writes ``docs/report.png`` (the README's screenshot).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from chatlog.cli import main as chatlog_main
from shared.settings import Settings
from tests.analytics_api.test_quality import counted
from tests.support.browser import Browser
from tests.support.statistics_oracle import post_all
from tests.support.suggestion_traffic import Traffic

DOCS_DIR = Path(__file__).resolve().parents[2] / "docs"
SCREENSHOTS = os.environ.get("CHATLOG_SCREENSHOTS") == "1"
CHARTS = ["questions", "latency", "problems", "collections", "best-scores"]
XSS = '<img src=x onerror="window.__xss = 1"><script>window.__xss = 2</script> 출장비 정산'



def week_of_traffic() -> Traffic:
    """Seven days of two healthy collections, one with weak retrieval, a slow model and some bad feedback."""
    rng = random.Random(5)
    traffic = Traffic(rng=rng)
    base = datetime.now(UTC) - timedelta(minutes=5)
    for days_ago in range(7):
        traffic.now = base - timedelta(days=days_ago)
        traffic.block("hr-docs", rng.randrange(40, 90), failed=0.01 + 0.05 * (days_ago == 2))
        traffic.block("it-helpdesk", rng.randrange(20, 60), regenerated=0.05)
        traffic.block("legal-kb", rng.randrange(10, 25), low=0.55, models=("gpt-4o",), latency=(2500, 9000))
    for event in traffic.events[:6:2]:
        event["message_content"] = XSS  # asked 3 times: among the report's most asked questions
    for name, negative in (("hr-docs", 0.1), ("it-helpdesk", 0.2), ("legal-kb", 0.45)):
        traffic.rate(name, 30, negative)
    return traffic


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """A headless Chromium (fails, never skips, when it is not installed)."""
    async with await Browser.launch() as chromium:
        yield chromium


async def test_html_report_renders_its_charts_offline(
    client: TestClient[Any, Any], config: Settings, monkeypatch: pytest.MonkeyPatch, browser: Browser
) -> None:
    traffic = week_of_traffic()
    await post_all(client, traffic.events)
    assert (await client.post("/v1/feedback", json=traffic.feedback)).status == 202
    await counted(config, traffic.answers, len(traffic.feedback))
    await client.close()  # closes every open conversation: they are stored and indexed
    started = (datetime.now(UTC) - timedelta(days=2)).isoformat(timespec="seconds")
    resolved = (datetime.now(UTC) - timedelta(days=2, hours=-1)).isoformat(timespec="seconds")
    with contextlib.closing(sqlite3.connect(config.db_path)) as conn, conn:
        conn.execute(
            "INSERT INTO alerts (rule, scope, state, started_at, resolved_at, value, threshold, baseline, message) "
            "VALUES ('error_rate', 'hr-docs', 'resolved', ?, ?, 0.09, 0.05, 0.01, ?)",
            (started, resolved, "hr-docs: 오류율 9% (기준 5%) / error rate 9% (threshold 5%)"))
    monkeypatch.setenv("CHATLOG_DATA_DIR", str(config.data_dir))
    monkeypatch.setenv("CHATLOG_USER_HASH_SECRET", config.user_hash_secret)
    out = config.data_dir / "reports" / "week.html"
    assert await asyncio.to_thread(chatlog_main, ["report", "--format", "html", "--output", str(out)]) == 0

    page = await browser.new_page(width=1100, height=900)
    await page.send("Network.enable")
    await page.goto(out.resolve().as_uri())
    drawn = await page.evaluate("""[...document.querySelectorAll('figure.chart')].map((f) => ({
        name: f.dataset.chart, width: f.querySelector('svg').getBoundingClientRect().width,
        bars: f.querySelectorAll('.bar').length, points: f.querySelectorAll('.point').length}))""")
    assert [c["name"] for c in drawn] == CHARTS
    assert all(c["width"] > 500 for c in drawn)
    by = {c["name"]: c for c in drawn}
    assert by["questions"]["bars"] == 7 and by["best-scores"]["bars"] == 10 and by["collections"]["bars"] == 3
    assert by["latency"]["points"] == 14 and by["problems"]["points"] == 14
    headings = await page.evaluate("[...document.querySelectorAll('h2')].map((h) => h.textContent)")
    assert headings == ["Usage", "Retrieval quality", "FAQ", "Knowledge gaps", "Suggestions", "Alerts",
                        "Conversations to review"]
    kinds = await page.evaluate("[...document.querySelectorAll('li[data-kind]')].map((li) => li.dataset.kind)")
    assert {"low_retrieval", "slow_responses", "negative_feedback"} <= set(kinds)
    assert await page.evaluate("document.querySelectorAll('table[data-table=alerts] tbody tr').length") == 1
    assert await page.evaluate("document.querySelectorAll('table[data-table=review] tbody tr').length") > 0
    asked = await page.evaluate(
        "[...document.querySelectorAll('table[data-table=top-queries] tbody tr')].map((r) => r.cells[0].textContent)")
    assert XSS in asked and await page.evaluate("window.__xss") is None
    assert await page.evaluate("document.querySelectorAll('main img, main script').length") == 0
    assert page.requests == [out.resolve().as_uri()], page.requests
    assert page.errors == [] and page.network_errors == []
    if SCREENSHOTS:
        await page.screenshot(DOCS_DIR / "report.png")
