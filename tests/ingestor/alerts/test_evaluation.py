"""The alert rules on real day files, a real derived state (SQLite) and a real webhook receiver.

Time: the rules' clock is set two hours back, so a week of baseline and the window
are all in the past (the ingestor refuses events from the future) and a test can
move the clock on by a window or two.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from analytics_api.alerts import query_alerts
from ingestor.derived.state import DerivedState
from shared.layout import StorageLayout
from shared.settings import Settings
from tests.conftest import TEST_SECRET
from tests.support.derived import DerivedHarness, until
from tests.support.traffic import BALANCED, stretch
from tests.support.webhook import webhook_receiver

WINDOW = 15


class Clock:
    """The rules' "now", moved by the test."""

    def __init__(self) -> None:
        self.now = (datetime.now(UTC) - timedelta(hours=2)).replace(second=30, microsecond=0)

    def __call__(self) -> float:
        return self.now.timestamp()


def config(data_dir: Path, *urls: str) -> Settings:
    # One evaluation at start, then only those the test asks for.
    return Settings.for_data_dir(data_dir, ingest_socket="", user_hash_secret=TEST_SECRET,
                                 alert_eval_seconds=3600, alert_webhook_url=urls)


@asynccontextmanager
async def running(settings: Settings, clock: Clock) -> AsyncIterator[DerivedHarness]:
    StorageLayout.from_settings(settings).ensure_dirs()
    state = DerivedState(settings, clock=clock)
    await state.start()
    state.delivery.base_delay = 0.2
    harness = DerivedHarness(settings, state)
    try:
        yield harness
    finally:
        harness.files.close()
        await state.stop()


def baseline_week(rng: random.Random, collection: str, now: datetime) -> list[dict[str, Any]]:
    """The same window on each of the 7 previous days, and a few more healthy hours around it."""
    events = []
    for day in range(1, 8):
        events += stretch(rng, collection, now - timedelta(days=day, minutes=45), 60, BALANCED)
    return events


async def feed(harness: DerivedHarness, events: list[dict[str, Any]]) -> None:
    for i in range(0, len(events), 2000):
        await harness.post(events[i : i + 2000])
    await harness.state.applier.flush()


async def evaluate(harness: DerivedHarness) -> list[tuple[str, str | None, str]]:
    changes = await harness.state.alerts.evaluate()
    return sorted(((c["rule"], c["collection_name"], c["state"]) for c in changes), key=lambda c: (c[0], c[1] or ""))


ANOMALIES = {
    "balanced": (BALANCED, []),
    "error_rate": (dataclasses.replace(BALANCED, error_rate=0.25), ["error_rate"]),
    "latency_p95": (dataclasses.replace(BALANCED, latency_ms=(2500, 6000)), ["latency_p95"]),
    "low_score_rate": (dataclasses.replace(BALANCED, low_score_rate=0.6), ["low_score_rate"]),
    "volume_drop": (dataclasses.replace(BALANCED, per_minute=0.3), ["volume_drop"]),
}


@pytest.mark.parametrize("case", list(ANOMALIES))
async def test_each_rule_fires_on_its_anomaly_and_only_there(tmp_path: Path, case: str) -> None:
    """hr-docs gets the anomaly in the last 15 minutes; it-helpdesk stays healthy; a balanced week fires nothing."""
    mix, rules = ANOMALIES[case]
    clock = Clock()
    rng = random.Random(case)
    async with running(config(tmp_path), clock) as harness:
        events = baseline_week(rng, "hr-docs", clock.now) + baseline_week(rng, "it-helpdesk", clock.now)
        events += stretch(rng, "hr-docs", clock.now - timedelta(minutes=WINDOW - 1), WINDOW, mix)
        events += stretch(rng, "it-helpdesk", clock.now - timedelta(minutes=WINDOW - 1), WINDOW, BALANCED)
        await feed(harness, events)
        fired = await evaluate(harness)
        assert [(rule, name) for rule, name, _ in fired if name == "hr-docs"] == [(r, "hr-docs") for r in rules]
        assert not [f for f in fired if f[1] == "it-helpdesk"]
        # Evaluated again with nothing new: nothing starts twice.
        assert await evaluate(harness) == []


async def test_storage_unavailable_fires_after_the_configured_time(tmp_path: Path) -> None:
    clock = Clock()
    async with running(config(tmp_path), clock) as harness:
        alerts = harness.state.alerts
        alerts.storage_down_since = clock() - 30
        assert await evaluate(harness) == []
        alerts.storage_down_since = clock() - 61
        assert await evaluate(harness) == [("storage_unavailable", None, "firing")]
        alerts.storage_down_since = None
        assert await evaluate(harness) == []
        assert await evaluate(harness) == []
        assert await evaluate(harness) == [("storage_unavailable", None, "resolved")]


async def _incident(harness: DerivedHarness, clock: Clock, rng: random.Random) -> None:
    events = baseline_week(rng, "hr-docs", clock.now)
    events += stretch(rng, "hr-docs", clock.now - timedelta(minutes=WINDOW - 1), WINDOW,
                      dataclasses.replace(BALANCED, error_rate=0.3))
    await feed(harness, events)


async def _recover(harness: DerivedHarness, clock: Clock, rng: random.Random) -> None:
    clock.now += timedelta(minutes=WINDOW + 5)
    await feed(harness, stretch(rng, "hr-docs", clock.now - timedelta(minutes=WINDOW - 1), WINDOW, BALANCED))


async def test_one_notification_at_start_one_at_resolve_with_hysteresis(tmp_path: Path) -> None:
    clock = Clock()
    rng = random.Random(7)
    async with webhook_receiver() as receiver, running(config(tmp_path, receiver.url), clock) as harness:
        await _incident(harness, clock, rng)
        assert await evaluate(harness) == [("error_rate", None, "firing"), ("error_rate", "hr-docs", "firing")]
        await receiver.wait_for(2)
        body = receiver.received[0]
        alert = body["alert"]
        assert alert["state"] == "firing" and alert["value"] >= alert["threshold"] >= 0.05
        assert alert["baseline"] < 0.05 and alert["started_at"] and alert["resolved_at"] is None
        assert "오류율" in body["text"] and "error rate" in body["text"] and "dashboard" in body["text"]
        assert f"{alert['value'] * 100:.1f}%" in body["text"]
        assert "http://127.0.0.1:8701/" in body["text"]
        # Healthy again: it resolves only after three clear evaluations in a row.
        await _recover(harness, clock, rng)
        assert await evaluate(harness) == []
        assert await evaluate(harness) == []
        assert await evaluate(harness) == [("error_rate", None, "resolved"), ("error_rate", "hr-docs", "resolved")]
        await receiver.wait_for(4)
        assert await evaluate(harness) == []
        await asyncio.sleep(0.3)
    assert sorted((a["collection_name"] or "", a["state"]) for a in receiver.alerts()) == [
        ("", "firing"), ("", "resolved"), ("hr-docs", "firing"), ("hr-docs", "resolved")]
    resolved = receiver.alerts("resolved")[0]
    assert resolved["resolved_at"] is not None and resolved["started_at"] < resolved["resolved_at"]


async def test_a_restart_mid_incident_sends_nothing_twice(tmp_path: Path) -> None:
    clock = Clock()
    rng = random.Random(8)
    async with webhook_receiver() as receiver:
        settings = config(tmp_path, receiver.url)
        async with running(settings, clock) as harness:
            await _incident(harness, clock, rng)
            assert len(await evaluate(harness)) == 2
            await receiver.wait_for(2)
        async with running(settings, clock) as harness:
            assert await evaluate(harness) == []  # still firing: recorded, not started again
            await _recover(harness, clock, rng)
            assert await evaluate(harness) == []
        async with running(settings, clock) as harness:  # the quiet count survives a restart too
            assert await evaluate(harness) == []
            assert len(await evaluate(harness)) == 2
            await receiver.wait_for(4)
    assert sorted((a["collection_name"] or "", a["state"]) for a in receiver.alerts()) == [
        ("", "firing"), ("", "resolved"), ("hr-docs", "firing"), ("hr-docs", "resolved")]


async def test_pending_deliveries_survive_a_restart(tmp_path: Path) -> None:
    clock = Clock()
    async with webhook_receiver() as receiver:
        settings = config(tmp_path, receiver.url)
        receiver.statuses = [503] * 1000
        async with running(settings, clock) as harness:
            await _incident(harness, clock, random.Random(9))
            await evaluate(harness)
            while receiver.attempts < 2:
                await harness.state.delivery.deliver_due()
        receiver.statuses = []
        async with running(settings, clock) as harness:
            await receiver.wait_for(2)
    assert len(receiver.received) == 2


async def test_a_receiver_answering_500_then_200_gets_the_alert_once(tmp_path: Path) -> None:
    clock = Clock()
    async with webhook_receiver() as receiver, running(config(tmp_path, receiver.url), clock) as harness:
        receiver.statuses = [500, 500]
        await _incident(harness, clock, random.Random(10))
        await evaluate(harness)
        await receiver.wait_for(2)
        await until(lambda: harness.state.status().alert_deliveries == 2)
        assert harness.state.status().alert_delivery_failures == 2
        await asyncio.sleep(0.5)
        await harness.state.delivery.deliver_due()
    assert receiver.attempts == 4
    assert sorted(a["collection_name"] or "" for a in receiver.alerts()) == ["", "hr-docs"]


async def test_a_hanging_webhook_never_slows_the_evaluation(tmp_path: Path) -> None:
    clock = Clock()
    async with webhook_receiver() as receiver, running(config(tmp_path, receiver.url), clock) as harness:
        receiver.hang = True
        await _incident(harness, clock, random.Random(11))
        await evaluate(harness)
        await until(lambda: receiver.attempts >= 2)
        started = time.monotonic()
        for _ in range(5):
            await evaluate(harness)
        assert time.monotonic() - started < 2.0
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 5.0  # the stop abandons the hanging POST, its row stays queued
    with contextlib.closing(sqlite3.connect(tmp_path / "chatlog.sqlite3")) as conn:
        assert conn.execute("SELECT count(*) FROM alert_outbox").fetchone() == (2,)


async def test_the_listing_reads_what_the_evaluation_recorded(tmp_path: Path) -> None:
    clock = Clock()
    async with running(config(tmp_path), clock) as harness:
        await _incident(harness, clock, random.Random(12))
        await evaluate(harness)
    settings = config(tmp_path)
    today = datetime.now(settings.timezone).date()
    with contextlib.closing(sqlite3.connect(tmp_path / "chatlog.sqlite3")) as conn:
        listed = query_alerts(conn, settings.timezone, today - timedelta(days=1), today, None).items
        assert {(a.rule, a.collection_name, a.state) for a in listed} == {
            ("error_rate", None, "firing"), ("error_rate", "hr-docs", "firing")}
        assert all(a.value is not None and a.threshold is not None and a.message for a in listed)
        assert query_alerts(conn, settings.timezone, today - timedelta(days=9), today - timedelta(days=2),
                            None).items == []
        assert len(query_alerts(conn, settings.timezone, today, today, "hr-docs").items) == 1


