"""Alerts through the real ingestor (and its derived-state process), the analytics API and a webhook."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from analytics_api.app import create_app as create_analytics
from ingestor.app import create_app as create_ingestor
from shared.settings import Settings
from tests.conftest import TEST_SECRET, AiohttpClient
from tests.support.full_disk import fill
from tests.support.traffic import BALANCED, Mix, exchange
from tests.support.webhook import webhook_receiver


def _settings(data_dir: Path, url: str, **overrides: object) -> Settings:
    return Settings.for_data_dir(data_dir, ingest_socket="", user_hash_secret=TEST_SECRET, ingest_port=0,
                                 alert_eval_seconds=1, alert_resolve_evaluations=2, alert_webhook_url=(url,),
                                 **overrides)


@pytest.mark.slow
async def test_an_error_incident_is_notified_counted_and_listed(aiohttp_client: AiohttpClient, tmp_path: Path) -> None:
    async with webhook_receiver() as receiver:
        settings = _settings(tmp_path, receiver.url)
        ingest = await aiohttp_client(create_ingestor(settings))
        metrics = await (await ingest.get("/metrics")).text()
        assert 'chatlog_alerts_firing{rule="error_rate"} 0.0' in metrics
        rng = random.Random(3)
        now = datetime.now(UTC) - timedelta(seconds=5)
        failing = Mix(error_rate=0.5, low_score_rate=0.0)
        events = [e for i in range(40) for e in exchange(rng, "hr-docs", now - timedelta(seconds=i), failing)]
        events += [e for i in range(40) for e in exchange(rng, "it-helpdesk", now - timedelta(seconds=i), BALANCED)]
        assert (await ingest.post("/v1/logs", json=events)).status == 202
        await receiver.wait_for(2)
        assert sorted(a["collection_name"] or "" for a in receiver.alerts("firing")) == ["", "hr-docs"]
        for _ in range(50):
            metrics = await (await ingest.get("/metrics")).text()
            if 'chatlog_alerts_firing{rule="error_rate"} 2.0' in metrics:
                break
            await asyncio.sleep(0.1)
        assert 'chatlog_alerts_firing{rule="error_rate"} 2.0' in metrics
        assert "chatlog_alert_deliveries_total 2.0" in metrics
        # The per-collection counters deploy/prometheus/alerts.yml computes the same rules from.
        assert 'chatlog_answers_total{collection="hr-docs"} 40.0' in metrics
        assert 'chatlog_queries_total{collection="it-helpdesk"} 40.0' in metrics
        assert 'chatlog_response_time_seconds_count{collection="hr-docs"} 40.0' in metrics
        analytics = await aiohttp_client(create_analytics(settings))
        answer = await (await analytics.get("/api/analytics/alerts?date_from=&date_to=")).json()
        assert {(a["rule"], a["collection_name"], a["state"]) for a in answer["items"]} == {
            ("error_rate", None, "firing"), ("error_rate", "hr-docs", "firing")}
        item = answer["items"][0]
        assert item["value"] >= item["threshold"] and "error rate" in item["message"]
        assert (await analytics.get("/api/analytics/alerts?date_from=2020-01-02&date_to=2020-01-01")).status == 400


@pytest.mark.slow
async def test_storage_unavailable_comes_from_the_ingestor(
    aiohttp_client: AiohttpClient, small_fs: Path, short_dir: Path,
) -> None:
    """The day files on a full filesystem (the database elsewhere): notified once failing, once resolved."""
    async with webhook_receiver() as receiver:
        settings = _settings(small_fs, receiver.url, db_path=short_dir / "chatlog.sqlite3", alert_storage_seconds=1)
        ingest = await aiohttp_client(create_ingestor(settings))
        rng = random.Random(4)
        filler = small_fs / "filler"
        fill(filler)
        for _ in range(200):
            resp = await ingest.post("/v1/logs", json=exchange(rng, "hr-docs", datetime.now(UTC), BALANCED))
            if resp.status == 503:
                break
        assert resp.status == 503
        await receiver.wait_for(1)
        assert [(a["rule"], a["state"]) for a in receiver.alerts()] == [("storage_unavailable", "firing")]
        assert receiver.alerts()[0]["value"] >= 1
        filler.unlink()
        await receiver.wait_for(2, seconds=60)
        assert [(a["rule"], a["state"]) for a in receiver.alerts()] == [
            ("storage_unavailable", "firing"), ("storage_unavailable", "resolved")]
