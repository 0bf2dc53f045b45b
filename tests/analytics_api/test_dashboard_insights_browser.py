"""The dashboard's insight views (quality, FAQ, suggestions) and its banner of firing alerts, in headless Chromium.

Data goes through a real ingestor as in ``test_dashboard_browser``; the firing alert is
raised by the ingestor's own alert evaluator from a burst of failing answers. The FAQ
view lists the API's groups of the generated week (the suggestions view its items, or its
empty state when the week triggers none); the list rendering is also driven with items
built from real data (the service's top questions grouped by ``insights.grouping``, its
quality figures, a hostile text), fed to the page's own render functions.
``CHATLOG_SCREENSHOTS=1`` also writes ``docs/quality.png``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import random
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from analytics_api.app import create_app as create_analytics
from ingestor.app import create_app as create_ingestor
from insights.grouping import QuestionGrouper
from shared.serving import Listener, start
from shared.settings import Settings
from tests.analytics_api import test_dashboard_browser as dashboard
from tests.analytics_api.test_dashboard_browser import (
    ADMIN_TOKEN,
    DOCS_DIR,
    SCREENSHOTS,
    TRANSCRIPT_ID,
    XSS,
    Site,
    choose,
    generated_events,
    port_of,
    sign_in,
    texts,
)
from tests.support.browser import Browser, Page
from tests.support.events import ANSWER
from tests.support.traffic import Mix, exchange

pytestmark = pytest.mark.slow

# The dashboard tests' fixtures: the generated week behind a real analytics service, and Chromium.
site = dashboard.site
browser = dashboard.browser


async def open_view(page: Page, site: Site, view: str, query: str = "") -> str:
    """Open the dashboard on one view; return what it rendered (``view|collection|from|to``)."""
    await page.goto(f"{site.base}/?view={view}{query}")
    rendered: str = await page.wait_for(
        f"(document.documentElement.dataset.rendered || '').startsWith({json.dumps(view + '|')})"
        " && document.documentElement.dataset.rendered"
    )
    return rendered


async def quality_shown(page: Page) -> dict[str, Any]:
    """What the quality view shows, read from the page."""
    shown: dict[str, Any] = await page.evaluate(
        "({low: document.getElementById('q-low').dataset.value,"
        " noResult: document.getElementById('q-noresult').dataset.value,"
        " percentiles: document.getElementById('q-percentiles').textContent,"
        " buckets: [...document.querySelectorAll('#q-histogram .hist-bar')].map((b) => Number(b.dataset.count)),"
        " low_buckets: document.querySelectorAll('#q-histogram .hist-bar.low').length,"
        " rows: [...document.querySelectorAll('#q-collections tbody tr:not(.empty)')]"
        "   .map((r) => [r.dataset.name, Number(r.dataset.answers)]),"
        " gaps: document.querySelector('#q-gaps').textContent})"
    )
    return shown


def assert_quality_matches(shown: dict[str, Any], answer: dict[str, Any]) -> None:
    """The quality view's figures are the API answer's."""
    assert float(shown["low"]) == pytest.approx(answer["low_score_rate"])
    assert float(shown["noResult"]) == pytest.approx(answer["no_result_rate"])
    assert shown["buckets"] == [b["count"] for b in answer["best_score_histogram"]]
    assert shown["low_buckets"] == sum(b["to"] <= answer["low_score_threshold"] for b in answer["best_score_histogram"])
    p = answer["best_score_percentiles"]
    assert shown["percentiles"] == " · ".join(f"{p[k]:.2f}" for k in ("p10", "p50", "p90"))
    assert shown["rows"] == [[c["collection_name"], c["answers"]] for c in answer["by_collection"]]


async def test_quality_view_shows_the_api_figures_and_follows_the_filters(site: Site, browser: Browser) -> None:
    """Histogram, rates, per-collection table and the gaps' empty state; collection and date filters apply."""
    page = await browser.new_page()
    rendered = await open_view(page, site, "quality")
    answer = await site.api("/api/analytics/quality")
    assert rendered == f"quality||{answer['date_from']}|{answer['date_to']}"
    assert answer["answers_with_retrieval"] > 0
    shown = await quality_shown(page)
    assert_quality_matches(shown, answer)
    if not answer["knowledge_gaps"]:
        # Or, when the page asked before the warm-up had grouped the range, "still grouping".
        assert "No knowledge gaps found" in shown["gaps"] or "Grouping this range" in shown["gaps"]
    assert await page.evaluate("document.getElementById('view-overview').hidden")
    assert await page.evaluate("document.querySelector('.tab.active').dataset.view") == "quality"
    assert await page.evaluate("document.getElementById('alerts').dataset.firing") == "0"
    assert "Nothing firing" in await page.evaluate("document.getElementById('alerts').textContent")

    # A collection of the table filters the whole view (and the URL keeps the view).
    await page.evaluate("document.querySelector('#q-collections tr[data-name=\"hr-docs\"] button').click()")
    await page.wait_for("document.documentElement.dataset.rendered.startsWith('quality|hr-docs|')")
    hr_docs = await site.api("/api/analytics/quality", collection_name="hr-docs")
    assert_quality_matches(await quality_shown(page), hr_docs)
    assert await page.evaluate("location.search") == "?view=quality&collection_name=hr-docs"
    today = answer["date_to"]
    await choose(page, "f-from", today)
    await page.wait_for(f"document.documentElement.dataset.rendered === 'quality|hr-docs|{today}|{today}'")
    one_day = await site.api("/api/analytics/quality", collection_name="hr-docs", date_from=today, date_to=today)
    assert_quality_matches(await quality_shown(page), one_day)

    # Back to the overview: it renders the same selection.
    await page.evaluate("document.querySelector('.tab[data-view=\"overview\"]').click()")
    await page.wait_for(f"document.documentElement.dataset.loaded === 'hr-docs|{today}|{today}'")
    assert not await page.evaluate("document.getElementById('view-overview').hidden")
    assert page.errors == [] and page.network_errors == []


async def test_faq_and_suggestion_views_show_the_api_answer_or_their_empty_state(site: Site, browser: Browser) -> None:
    """Each view lists exactly the API's items, and says so plainly when there are none."""
    page = await browser.new_page()
    for view, path, selector, empty in (
        ("faq", "/api/analytics/faq", "#faq-list", "No FAQ yet"),
        ("suggestions", "/api/analytics/suggestions", "#suggestion-list", "Nothing to suggest"),
    ):
        rendered = await open_view(page, site, view)
        _, _, first, last = rendered.split("|")
        items = (await site.api(path, date_from=first, date_to=last))["items"]
        entries = await page.evaluate(f"document.querySelectorAll('{selector} .entry').length")
        assert entries == len(items), view
        if view == "faq":
            # The generated week asks its questions many times: the FAQ has groups to show.
            assert items, "the FAQ of the generated week is empty"
            shown = await page.evaluate(
                "[...document.querySelectorAll('#faq-list .entry .entry-title')].map((e) => e.textContent)")
            assert shown == [item["question"] for item in items]
        if not items:
            assert empty in await page.evaluate(f"document.querySelector('{selector} li.empty').textContent")
        assert await page.evaluate(f"!document.getElementById('view-{view}').hidden")
    assert page.errors == [] and page.network_errors == []


async def render_with(page: Page, function: str, items: list[dict[str, Any]]) -> None:
    """Pause the page's refresh and render ``items`` with one of its own render functions."""
    await page.evaluate("document.getElementById('live-toggle').click()")
    await page.evaluate(
        f"import('/static/insights.js').then((m) => m.{function}({json.dumps(items, ensure_ascii=False)}))"
    )


async def test_faq_list_renders_grouped_questions_and_links_to_the_conversation(
    site: Site, browser: Browser
) -> None:
    """FAQ entries built from the service's questions (grouped for real) show their variants and answer link."""
    summary = await site.api("/api/analytics/summary", top="50")
    quality = await site.api("/api/analytics/quality")
    counts = {item["query"]: item["count"] for item in summary["top_queries"]}
    counts["연차휴가 신청 방법"] = 2  # a paraphrase of a generated question: grouped with it
    groups = QuestionGrouper().group(counts)
    assert any(len(g.variants) > 1 for g in groups)
    total = sum(counts.values())
    items = [{"question": g.question, "count": g.count, "share": g.count / total,
              "variants": [{"text": t, "count": c} for t, c in g.variants],
              "collections": summary["collections"], "answer": ANSWER if n else None,
              "answer_log_id": f"log-{n}" if n else None, "conversation_id": TRANSCRIPT_ID if n else None,
              "avg_best_score": quality["best_score_percentiles"]["p50"]} for n, g in enumerate(groups)]
    page = await browser.new_page()
    await sign_in(page, site, ADMIN_TOKEN)  # the token lives in this tab's sessionStorage
    await page.wait_for("document.documentElement.dataset.listed")
    await open_view(page, site, "faq")
    await render_with(page, "renderFaq", items)
    shown: list[dict[str, Any]] = await page.evaluate(
        "[...document.querySelectorAll('#faq-list .entry')].map((e) => ({"
        " question: e.querySelector('.entry-title').textContent, count: Number(e.dataset.count),"
        " variants: [...e.querySelectorAll('.variant-text')].map((v) => v.textContent),"
        " answer: e.querySelector('.answer-text')?.textContent ?? null,"
        " link: e.querySelector('a.answer-link')?.getAttribute('href') ?? null}))"
    )
    assert [(s["question"], s["count"]) for s in shown] == [(i["question"], i["count"]) for i in items]
    for entry, item in zip(shown, items, strict=True):
        texts_ = [v["text"] for v in item["variants"]]
        assert entry["variants"] == (texts_ if len(texts_) > 1 else [])
        assert entry["answer"] == item["answer"]
    assert XSS in [s["question"] for s in shown]
    assert await page.evaluate("window.__xss === undefined"
                               " && !document.querySelector('#faq-list img, #faq-list script')")
    assert shown[0]["link"] is None
    link = shown[1]["link"]
    assert link == f"/admin/conversations#{TRANSCRIPT_ID}"
    await page.evaluate(f"document.querySelector('#faq-list a.answer-link[href={json.dumps(link)}]').click()")
    # A navigation: the new page may not have its document yet when first polled.
    await page.wait_for(f"document.documentElement?.dataset.opened === {json.dumps(TRANSCRIPT_ID)}")
    assert await page.evaluate("location.pathname") == "/admin/conversations"
    assert page.errors == []


async def test_suggestion_list_renders_kinds_severities_and_evidence(site: Site, browser: Browser) -> None:
    """Suggestions built from the service's quality figures show their kind, severity, message and numbers."""
    quality = await site.api("/api/analytics/quality")
    worst = max(quality["by_collection"], key=lambda c: c["low_score_rate"])
    items = [
        {"kind": "low_retrieval", "severity": "high", "collection_name": worst["collection_name"],
         "message": f"{worst['collection_name']}: 답변의 {worst['low_score_rate']:.0%}가 낮은 점수 · add documents",
         "evidence": {"answers": worst["answers"], "low_score_rate": worst["low_score_rate"],
                      "threshold": quality["low_score_threshold"]}},
        {"kind": "errors", "severity": "low", "collection_name": None, "message": XSS,
         "evidence": {"error_rate": worst["error_rate"], "top_errors": [{"type": "Timeout", "count": 2}]}},
    ]
    page = await browser.new_page()
    await open_view(page, site, "suggestions")
    await render_with(page, "renderSuggestions", items)
    shown: list[dict[str, Any]] = await page.evaluate(
        "[...document.querySelectorAll('#suggestion-list .entry')].map((e) => ({kind: e.dataset.kind,"
        " severity: e.dataset.severity, message: e.querySelector('.suggestion-message').textContent,"
        " scope: e.querySelector('.pill').textContent,"
        " evidence: Object.fromEntries([...e.querySelectorAll('.evidence dd')]"
        "   .map((d) => [d.dataset.key, d.textContent]))}))"
    )
    assert [(s["kind"], s["severity"], s["message"]) for s in shown] == [
        (i["kind"], i["severity"], i["message"]) for i in items]
    assert shown[0]["scope"] == worst["collection_name"] and "all" in shown[1]["scope"]
    assert shown[0]["evidence"]["low_score_rate"] == f"{worst['low_score_rate'] * 100:.1f}%"
    assert shown[0]["evidence"]["answers"] == f"{worst['answers']:,}"
    assert json.loads(shown[1]["evidence"]["top_errors"]) == [{"type": "Timeout", "count": 2}]
    assert await page.evaluate("window.__xss === undefined && !document.querySelector('#suggestion-list img')")
    assert page.errors == []


def firing(config: Settings) -> list[tuple[str, str]]:
    """The (rule, scope) of every firing alert in the database."""
    with contextlib.closing(sqlite3.connect(f"file:{config.db_path}?mode=ro", uri=True)) as conn:
        try:
            return conn.execute("SELECT rule, scope FROM alerts WHERE state = 'firing'").fetchall()
        except sqlite3.OperationalError:
            return []


@pytest.fixture
async def alerting_site(config: Settings) -> AsyncIterator[Site]:
    """The generated week plus a burst of failing hr-docs answers: the ingestor's evaluator fires error_rate."""
    settings = dataclasses.replace(config, admin_token=ADMIN_TOKEN, timezone=ZoneInfo("Asia/Seoul"),
                                   alert_eval_seconds=1)
    rng = random.Random(11)
    now = datetime.now(UTC) - timedelta(seconds=5)
    burst = [e for i in range(40) for e in exchange(rng, "hr-docs", now - timedelta(seconds=i), Mix(error_rate=0.6))]
    # Hours before the window, a spread of retrieval quality (legal-kb's documents cover it badly) and feedback.
    earlier = [e for i in range(240) for e in exchange(
        rng, ("legal-kb", "it-helpdesk", "hr-docs")[i % 3], now - timedelta(hours=1, minutes=i * 3),
        Mix(low_score_rate=(0.45, 0.1, 0.05)[i % 3]))]
    answers = [e for e in earlier if e["message_type"] == "assistant"]
    feedback = [{"log_id": a["log_id"], "collection_name": a["collection_name"],
                 "score": -1 if a["retrieval_info"]["top_scores"][0] < 0.5 else 1} for a in answers[::6]]
    async with aiohttp.ClientSession() as http:
        (ingestor,) = await start([Listener("ingestor", create_ingestor(settings), host="127.0.0.1", port=0)])
        try:
            url = f"http://127.0.0.1:{port_of(ingestor)}/v1/logs"
            async with http.post(url, json=generated_events() + earlier + burst) as response:
                assert response.status == 202, await response.text()
            async with http.post(url.replace("/v1/logs", "/v1/feedback"), json=feedback) as response:
                assert response.status == 202, await response.text()
            deadline = asyncio.get_running_loop().time() + 30
            while ("error_rate", "hr-docs") not in firing(settings):
                assert asyncio.get_running_loop().time() < deadline, "error_rate never fired"
                await asyncio.sleep(0.2)
        finally:
            await ingestor.cleanup()
        (analytics,) = await start([Listener("analytics", create_analytics(settings), host="127.0.0.1", port=0)])
        try:
            yield Site(f"http://127.0.0.1:{port_of(analytics)}", http, settings)
        finally:
            await analytics.cleanup()


async def test_firing_alerts_show_on_every_view(alerting_site: Site, browser: Browser) -> None:
    """The banner lists each firing alert with rule, collection, value, threshold and start, on every view."""
    site = alerting_site
    alerts = [a for a in (await site.api("/api/analytics/alerts"))["items"] if a["state"] == "firing"]
    page = await browser.new_page()
    for view in ("overview", "quality", "faq", "suggestions"):
        await open_view(page, site, view)
        assert await page.evaluate("document.getElementById('alerts').dataset.firing") == str(len(alerts))
        shown: list[dict[str, str]] = await page.evaluate(
            "[...document.querySelectorAll('#alerts .alert')].map((a) => ({rule: a.dataset.rule,"
            " collection: a.dataset.collection, value: a.querySelector('.alert-now').textContent,"
            " text: a.textContent, since: a.querySelector('time').getAttribute('datetime')}))"
        )
        want = [(a["rule"], a["collection_name"] or "") for a in alerts]
        assert [(s["rule"], s["collection"]) for s in shown] == want
        mine = next(s for s, a in zip(shown, alerts, strict=True) if a["collection_name"] == "hr-docs")
        alert = next(a for a in alerts if a["collection_name"] == "hr-docs")
        assert mine["value"] == f"{alert['value'] * 100:.1f}%"
        assert f"{alert['threshold'] * 100:.1f}%" in mine["text"] and "error rate" in mine["text"]
        assert mine["since"] == alert["started_at"]
        assert await page.evaluate("getComputedStyle(document.getElementById('alerts')).display") != "none"
    assert page.errors == [] and page.network_errors == []
    if SCREENSHOTS:
        await open_view(page, site, "quality")
        await page.screenshot(DOCS_DIR / "quality.png")


async def test_the_overview_is_the_first_of_the_views(site: Site, browser: Browser) -> None:
    """The overview still renders beside the new views (tabs present, overview first)."""
    page = await browser.new_page()
    await page.goto(f"{site.base}/")
    await page.wait_for("document.documentElement.dataset.loaded")
    assert [t.split()[-1] for t in await texts(page, "#views .tab")] == ["Overview", "Quality", "FAQ", "Suggestions"]
    assert await page.evaluate("document.querySelector('.tab.active').dataset.view") == "overview"
