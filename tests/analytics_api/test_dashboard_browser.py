"""The built-in dashboard and admin page, driven in headless Chromium against real services.

Events go through a real ingestor; closing it writes the statistics and conversation
records; then the analytics service (which serves the pages) starts on the same data.
The figures on the pages must equal the API's answers. ``CHATLOG_SCREENSHOTS=1`` also
writes ``docs/dashboard.png`` and ``docs/admin.png``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from analytics_api.app import create_app as create_analytics
from ingestor.app import create_app as create_ingestor
from shared.serving import Listener, start
from shared.settings import Settings
from tests.support.browser import Browser, Page
from tests.support.events import COLLECTIONS, QUESTIONS, make_event

ADMIN_TOKEN = "admin-token-for-browser-tests"
XSS = '<img src=x onerror="window.__xss = 1"><script>window.__xss = 2</script> 출장비 정산'
TRANSCRIPT_ID = "conv-transcript"
DOCS_DIR = Path(__file__).resolve().parents[2] / "docs"
SCREENSHOTS = os.environ.get("CHATLOG_SCREENSHOTS") == "1"


@dataclass(frozen=True)
class Site:
    """A running analytics service over generated data, and a client of its API."""

    base: str
    http: aiohttp.ClientSession
    settings: Settings

    async def api(self, path: str, token: str | None = None, **params: str) -> Any:
        """A JSON answer of the service (2xx only)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.http.get(f"{self.base}{path}", params=params, headers=headers) as response:
            assert response.status == 200, await response.text()
            return await response.json()


def generated_events() -> list[dict[str, Any]]:
    """A week of chat traffic, a multi-turn conversation with documents, and one hostile message."""
    rng = random.Random(20261124)
    now = datetime.now(UTC) - timedelta(seconds=5)
    events: list[dict[str, Any]] = []
    for days_ago in range(7):
        for n in range(rng.randrange(3, 9)):
            session = f"s-{days_ago}-{n}"
            collection = rng.choice(COLLECTIONS)
            at = now - timedelta(days=days_ago, minutes=n)
            for turn in range(rng.randrange(1, 3)):
                at += timedelta(seconds=1)
                kind = "error" if rng.random() < 0.08 else "ok"
                events.append(make_event(rng, session_id=session, collection_name=collection, created_at=at))
                events.append(make_event(rng, session_id=session, collection_name=collection, created_at=at,
                                         message_type="assistant", status=kind,
                                         is_regeneration=turn > 0 and rng.random() < 0.3))
    at = now - timedelta(minutes=20)
    docs = [{"doc_id": "hr-012", "title": "취업규칙 제12조 (연차휴가)", "score": 0.912,
             "source": "https://wiki.example.com/hr/12"},
            {"doc_id": "hr-031", "title": "Leave request guide", "score": 0.774, "source": "javascript:alert(1)"}]
    for turn, question in enumerate((QUESTIONS[0], QUESTIONS[1], XSS)):
        at += timedelta(seconds=30)
        events.append(make_event(rng, session_id=TRANSCRIPT_ID, collection_name="hr-docs", created_at=at,
                                 message_content=question, user_id="employee-1042"))
        events.append(make_event(rng, session_id=TRANSCRIPT_ID, collection_name="hr-docs", message_type="assistant",
                                 created_at=at + timedelta(seconds=2), retrieved_docs=docs[: turn + 1]))
    return events


def transcript_feedback(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A good and a bad verdict (one commented, with markup) on the transcript's first two answers."""
    answers = [e for e in events if e["session_id"] == TRANSCRIPT_ID and e["message_type"] == "assistant"]
    return [
        {"feedback_id": "fb-good", "log_id": answers[0]["log_id"], "collection_name": "hr-docs", "score": 1},
        {"feedback_id": "fb-bad", "log_id": answers[1]["log_id"], "collection_name": "hr-docs", "score": -1,
         "comment": XSS},
    ]


def port_of(runner: Any) -> int:
    """The TCP port a runner's only site is bound to."""
    return int(runner.addresses[0][1])


@pytest.fixture
async def site(config: Settings) -> AsyncIterator[Site]:
    """Generated events stored by a real ingestor, then the analytics service on the same data."""
    settings = dataclasses.replace(config, admin_token=ADMIN_TOKEN, timezone=ZoneInfo("Asia/Seoul"))
    async with aiohttp.ClientSession() as http:
        (ingestor,) = await start([Listener("ingestor", create_ingestor(settings), host="127.0.0.1", port=0)])
        try:
            url = f"http://127.0.0.1:{port_of(ingestor)}/v1/logs"
            events = generated_events()
            async with http.post(url, json=events) as response:
                assert response.status == 202, await response.text()
            async with http.post(url.replace("/v1/logs", "/v1/feedback"), json=transcript_feedback(events)) as response:
                assert response.status == 202, await response.text()
        finally:
            await ingestor.cleanup()  # flushes statistics and closes every conversation
        (analytics,) = await start([Listener("analytics", create_analytics(settings), host="127.0.0.1", port=0)])
        try:
            yield Site(f"http://127.0.0.1:{port_of(analytics)}", http, settings)
        finally:
            await analytics.cleanup()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """A headless Chromium (fails, never skips, when it is not installed)."""
    async with await Browser.launch() as chromium:
        yield chromium


async def texts(page: Page, selector: str) -> list[str]:
    """The text of every element matching a CSS selector."""
    result: list[str] = await page.evaluate(
        f"[...document.querySelectorAll({json.dumps(selector)})].map((e) => e.textContent.trim())"
    )
    return result


async def figure(page: Page, element_id: str) -> dict[str, str]:
    """A dashboard figure: its text and its raw value."""
    result: dict[str, str] = await page.evaluate(
        f"(() => {{ const e = document.getElementById({json.dumps(element_id)});"
        " return {text: e.textContent, value: e.dataset.value, total: e.dataset.total}; })()"
    )
    return result


async def load_dashboard(page: Page, site: Site) -> None:
    """Open the dashboard and wait for its first complete render."""
    await page.goto(f"{site.base}/")
    await page.wait_for("document.documentElement.dataset.loaded")


async def assert_figures_match(page: Page, summary: dict[str, Any]) -> None:
    """The cards and the top-queries table show exactly the summary's figures."""
    queries, latency, users = [await figure(page, name) for name in ("card-queries", "card-latency", "card-users")]
    days = (date.fromisoformat(summary["date_to"]) - date.fromisoformat(summary["date_from"])).days + 1
    per_day = summary["total_queries"] / days
    # The "daily queries" card shows queries per day in big type, the range total beside it.
    assert float(queries["value"]) == pytest.approx(per_day)
    if days == 1:
        assert queries["text"] == f"{summary['total_queries']:,}"
    else:
        assert float(queries["text"].replace(",", "")) == pytest.approx(per_day, abs=0.051)
    assert queries["total"] == str(summary["total_queries"])
    assert float(latency["value"]) == pytest.approx(summary["avg_response_time_ms"])
    assert latency["text"] == f"{int(summary['avg_response_time_ms'] + 0.5):,} ms"
    assert (users["text"], users["value"]) == (f"{summary['unique_sessions']:,}", str(summary["unique_sessions"]))
    rows: list[list[str]] = await page.evaluate(
        "[...document.querySelectorAll('#top-queries tbody tr:not(.empty)')]"
        ".map((r) => [r.querySelector('.query').textContent, r.dataset.count])"
    )
    assert rows == [[item["query"], str(item["count"])] for item in summary["top_queries"]]


async def choose(page: Page, element_id: str, value: str) -> None:
    """Set a form control's value as a user would and fire its change event."""
    await page.evaluate(
        f"(() => {{ const e = document.getElementById({json.dumps(element_id)}); e.value = {json.dumps(value)};"
        " e.dispatchEvent(new Event('change', {bubbles: true})); })()"
    )


async def sign_in(page: Page, site: Site, token: str) -> None:
    """Open the admin page and submit a token."""
    await page.goto(f"{site.base}/admin/conversations")
    await page.wait_for("!document.getElementById('login').hidden")
    await page.evaluate(
        f"document.getElementById('token').value = {json.dumps(token)};"
        " document.getElementById('login-form').requestSubmit()"
    )


async def test_service_serves_the_pages_with_safe_headers(site: Site) -> None:
    """``/``, ``/admin/conversations`` and ``/static/`` are served with CSP and cache headers."""
    for path, kind in (("/", "text/html"), ("/admin/conversations", "text/html"),
                       ("/static/app.js", "javascript"), ("/static/vendor/uplot/uPlot.iife.min.js", "javascript"),
                       ("/static/style.css", "text/css")):
        async with site.http.get(f"{site.base}{path}") as response:
            assert response.status == 200, path
            assert kind in response.headers["Content-Type"], path
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            if kind == "text/html":
                assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    async with site.http.get(f"{site.base}/admin/conversations") as response:
        assert response.headers["Cache-Control"] == "no-store"
    async with site.http.get(f"{site.base}/static/../app.py") as response:
        assert response.status in (403, 404)


@pytest.mark.slow
async def test_dashboard_shows_the_api_figures(site: Site, browser: Browser) -> None:
    """Cards, top queries, timeline and collection usage equal the API's answers; no script errors."""
    page = await browser.new_page()
    await load_dashboard(page, site)
    summary = await site.api("/api/analytics/summary")
    assert summary["total_queries"] > 0
    await assert_figures_match(page, summary)
    assert XSS in await texts(page, "#top-queries .query")  # shown as text, not markup
    assert await page.evaluate("window.__xss === undefined && !document.querySelector('main img, main script')")
    timeline = await site.api("/api/analytics/timeline", period="daily", days="7")
    assert await page.evaluate("document.getElementById('timeline-chart').dataset.points") == "7"
    assert await page.evaluate("!!document.querySelector('#timeline-chart canvas')")
    legend = await texts(page, "#timeline-chart .u-legend .u-value")
    assert legend[1] == f"{timeline['points'][-1]['total_queries']:,}"  # idle legend: the latest bucket
    bars: dict[str, str] = await page.evaluate(
        "Object.fromEntries([...document.querySelectorAll('#collection-chart .bar-row')]"
        ".map((r) => [r.dataset.name, r.dataset.count]))"
    )
    assert {name: int(count) for name, count in bars.items() if int(count)} == summary["collections"]
    assert await page.evaluate("document.getElementById('f-from').value") == summary["date_from"]
    assert page.errors == [] and page.network_errors == []
    if SCREENSHOTS:
        await page.screenshot(DOCS_DIR / "dashboard.png")


@pytest.mark.slow
async def test_collection_filter_and_date_range_change_the_figures(site: Site, browser: Browser) -> None:
    """Choosing a collection, then a one-day range, shows that selection's figures (hourly timeline)."""
    page = await browser.new_page()
    await load_dashboard(page, site)
    options = await texts(page, "#f-collection option")
    known = await site.api("/api/analytics/collections")
    assert options[1:] == [c["name"] for c in known["collections"]]
    everything = await site.api("/api/analytics/summary")
    await choose(page, "f-collection", "hr-docs")
    await page.wait_for("document.documentElement.dataset.loaded.startsWith('hr-docs|')")
    filtered = await site.api("/api/analytics/summary", collection_name="hr-docs")
    assert filtered["total_queries"] != everything["total_queries"]
    await assert_figures_match(page, filtered)
    assert "collection_name=hr-docs" in await page.evaluate("location.search")

    today = filtered["date_to"]
    await choose(page, "f-from", today)
    await page.wait_for(f"document.documentElement.dataset.loaded === 'hr-docs|{today}|{today}'")
    one_day = await site.api("/api/analytics/summary", collection_name="hr-docs", date_from=today, date_to=today)
    await assert_figures_match(page, one_day)
    assert await page.evaluate("document.getElementById('timeline-chart').dataset.period") == "hourly"
    assert page.errors == [] and page.network_errors == []


@pytest.mark.slow
async def test_dashboard_refreshes_itself_with_new_events(site: Site, browser: Browser) -> None:
    """An open dashboard shows newly ingested events without a reload (it polls every 5 seconds)."""
    page = await browser.new_page()
    await load_dashboard(page, site)
    before = int((await figure(page, "card-queries"))["total"])
    (ingestor,) = await start([Listener("ingestor", create_ingestor(site.settings), host="127.0.0.1", port=0)])
    try:
        fresh = [make_event(random.Random(n), collection_name="legal-kb") for n in range(3)]
        async with site.http.post(f"http://127.0.0.1:{port_of(ingestor)}/v1/logs", json=fresh) as response:
            assert response.status == 202, await response.text()
        await page.wait_for(f"document.getElementById('card-queries').dataset.total === '{before + 3}'", seconds=20)
    finally:
        await ingestor.cleanup()
    assert page.errors == [] and page.network_errors == []


@pytest.mark.slow
async def test_admin_page_refuses_a_wrong_token_and_a_disabled_admin(site: Site, browser: Browser) -> None:
    """401 shows "wrong token" and stores nothing; 403 says admin is disabled."""
    page = await browser.new_page()
    await sign_in(page, site, "not-the-token")
    shown = await page.wait_for("!document.getElementById('login-error').hidden"
                                " && document.getElementById('login-error').textContent")
    assert "wrong token" in shown
    assert await page.evaluate("document.getElementById('workspace').hidden")
    assert await page.evaluate("sessionStorage.length + localStorage.length") == 0

    disabled = dataclasses.replace(site.settings, admin_token="")
    (runner,) = await start([Listener("analytics", create_analytics(disabled), host="127.0.0.1", port=0)])
    try:
        await sign_in(page, Site(f"http://127.0.0.1:{port_of(runner)}", site.http, disabled), ADMIN_TOKEN)
        shown = await page.wait_for("!document.getElementById('login-error').hidden"
                                    " && document.getElementById('login-error').textContent")
    finally:
        await runner.cleanup()
    assert "admin is disabled (no CHATLOG_ADMIN_TOKEN)" in shown
    assert page.errors == []


@pytest.mark.slow
async def test_admin_page_lists_conversations_and_shows_a_transcript(site: Site, browser: Browser) -> None:
    """With the right token the list equals the API's and a conversation shows as its messages."""
    page = await browser.new_page()
    await sign_in(page, site, ADMIN_TOKEN)
    listed = await site.api("/api/admin/conversations", ADMIN_TOKEN)
    await page.wait_for(f"document.documentElement.dataset.listed === '{len(listed['items'])}'")
    ids = await page.evaluate("[...document.querySelectorAll('button.conv')].map((b) => b.dataset.id)")
    assert ids == [item["conversation_id"] for item in listed["items"]]
    assert TRANSCRIPT_ID in ids
    assert await page.evaluate("sessionStorage.getItem('chatlog.adminToken')") == ADMIN_TOKEN
    assert await page.evaluate("localStorage.length") == 0

    await page.evaluate(f"document.querySelector('button.conv[data-id={json.dumps(TRANSCRIPT_ID)}]').click()")
    await page.wait_for(f"document.documentElement.dataset.opened === {json.dumps(TRANSCRIPT_ID)}")
    record = await site.api(f"/api/admin/conversations/{TRANSCRIPT_ID}", ADMIN_TOKEN)
    shown: list[dict[str, Any]] = await page.evaluate(
        "[...document.querySelectorAll('.transcript .msg')].map((m) => ({role: m.dataset.role,"
        " content: m.querySelector('.msg-content').textContent, time: m.querySelector('time').textContent,"
        " docs: [...m.querySelectorAll('.doc-title')].map((d) => d.textContent)}))"
    )
    assert [(m["role"], m["content"]) for m in shown] == [(m["role"], m["content"]) for m in record["messages"]]
    assert [m["docs"] for m in shown] == [[d["title"] for d in m.get("retrieved_docs", [])] for m in record["messages"]]
    verdicts: list[list[list[str]]] = await page.evaluate(
        "[...document.querySelectorAll('.transcript .msg')].map((m) => [...m.querySelectorAll('.fb')]"
        ".map((f) => [f.dataset.score, f.querySelector('.fb-comment')?.textContent ?? '']))"
    )
    assert verdicts == [[[str(f["score"]), f["comment"] or ""] for f in m["feedback"]] for m in record["messages"]]
    assert verdicts[1] == [["1", ""]] and verdicts[3] == [["-1", XSS]]
    assert all(m["time"][:2] == "20" for m in shown)
    assert XSS in [m["content"] for m in shown]
    assert await page.evaluate("window.__xss === undefined && !document.querySelector('#detail img, #detail script')")
    assert await page.evaluate("!document.querySelector('.doc a[href^=\"javascript\"]')")
    summary = await page.evaluate("document.querySelector('.detail-summary').textContent")
    assert summary == record["metadata"]["summary"]
    assert page.errors == []
    if SCREENSHOTS:
        await page.screenshot(DOCS_DIR / "admin.png")
