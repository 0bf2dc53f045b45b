"""``chatlog report``: usage, FAQ candidates and flagged conversations, read only, from a live data directory."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from chatlog.cli import main as chatlog_main
from shared.settings import Settings
from tests.support.derived import totals, until
from tests.support.events import make_event


def _env(monkeypatch: pytest.MonkeyPatch, config: Settings) -> None:
    monkeypatch.setenv("CHATLOG_DATA_DIR", str(config.data_dir))
    monkeypatch.setenv("CHATLOG_TIMEZONE", str(config.timezone))
    monkeypatch.setenv("CHATLOG_USER_HASH_SECRET", config.user_hash_secret)


async def test_report_lists_usage_faq_and_flagged(
    client: TestClient[Any, Any], config: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A question asked 4 times is an FAQ candidate, one asked once is not; an errored conversation is flagged."""
    rng = random.Random(9)
    events = [make_event(rng, collection_name="hr-docs", message_content="연차는 며칠인가요?") for _ in range(4)]
    events += [make_event(rng, collection_name="it-docs", message_content="one-off question")]
    assert (await client.post("/v1/logs", json=events)).status == 202
    now = datetime.now(UTC).isoformat()
    posted = {"conversation_id": "bad-1", "collection_name": "hr-docs", "messages": [
        {"role": "user", "content": "q", "timestamp": now},
        {"role": "assistant", "content": "a", "timestamp": now, "error": True}]}
    assert (await client.post("/v1/conversations", json=posted)).status == 202
    await until(lambda: totals(config.data_dir)[0] >= 5, seconds=15)
    _env(monkeypatch, config)
    assert await asyncio.to_thread(chatlog_main, ["report", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["overall"]["total_queries"] == 5
    assert report["faq_candidates"] == [["연차는 며칠인가요?", 4]]
    assert {c["collection_name"]: c["total_queries"] for c in report["collections"]} == {"hr-docs": 4, "it-docs": 1}
    assert [f["conversation_id"] for f in report["flagged"]] == ["bad-1"]
    assert report["conversations_by_priority"] == {"high": 1}
    assert await asyncio.to_thread(chatlog_main, ["report", "--collection", "hr-docs"]) == 0
    text = capsys.readouterr().out
    assert "# chatlog usage report: hr-docs" in text and "| 연차는 며칠인가요? | 4 |" in text and "bad-1" in text


def test_report_refuses_bad_ranges_and_a_missing_database(
    config: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad input gets a one-line error and exit 1; the report never creates the database."""
    _env(monkeypatch, config)
    assert chatlog_main(["report", "--from", "2026-03-02", "--to", "2026-03-01"]) == 1
    assert "--from 2026-03-02 is after --to 2026-03-01" in capsys.readouterr().err
    assert chatlog_main(["report"]) == 1
    assert "no database" in capsys.readouterr().err
    assert not config.db_path.exists()
