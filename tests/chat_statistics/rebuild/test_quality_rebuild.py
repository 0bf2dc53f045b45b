"""``rebuild-stats`` recomputes the quality and feedback rows exactly as the live path made them."""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from chat_statistics.rebuild.run import rebuild
from ingestor.app import create_app as create_ingestor
from shared.layout import StorageLayout
from shared.settings import Settings
from tests.analytics_api.test_quality import counted
from tests.conftest import AiohttpClient
from tests.support.quality_oracle import feedback_for, labelled_answers
from tests.support.statistics_oracle import post_all


def quality_tables(config: Settings) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    with contextlib.closing(sqlite3.connect(config.db_path)) as conn:
        quality = conn.execute("SELECT * FROM retrieval_statistics ORDER BY 1, 2, 3").fetchall()
        feedback = conn.execute("SELECT * FROM feedback_statistics ORDER BY 1, 2, 3").fetchall()
    return quality, feedback


@pytest.mark.parametrize("workers", [1, 2])
async def test_rebuild_equals_live(aiohttp_client: AiohttpClient, config: Settings, workers: int) -> None:
    """Rows wiped (or wrong) are rebuilt from the day files to exactly the live rows, over several days."""
    zoned = dataclasses.replace(config, timezone=ZoneInfo("Asia/Seoul"))
    ingest = await aiohttp_client(create_ingestor(zoned))
    events = labelled_answers(3, datetime.now(UTC), count=400)
    events += labelled_answers(4, datetime.now(UTC) - timedelta(days=3), count=200)
    feedback = feedback_for(events, 5)
    await post_all(ingest, events)
    assert (await ingest.post("/v1/feedback", json=feedback)).status == 202
    await counted(zoned, sum(e["message_type"] == "assistant" for e in events), len(feedback))
    await ingest.close()
    live = quality_tables(zoned)
    assert len({row[0] for row in live[0]}) >= 3 and live[1]
    with contextlib.closing(sqlite3.connect(zoned.db_path)) as conn, conn:
        conn.execute("DELETE FROM retrieval_statistics WHERE hour % 2 = 0")
        conn.execute("UPDATE retrieval_statistics SET answers = answers + 5")
        conn.execute("DELETE FROM feedback_statistics")
    today = datetime.now(zoned.timezone).date()
    report = rebuild(zoned.db_path, StorageLayout.from_settings(zoned), today - timedelta(days=10), today,
                     workers=workers)
    assert report.feedback == len(feedback)
    assert quality_tables(zoned) == live
