"""``chatlog faq export``: the FAQ as Markdown, JSON and CSV, equal to the API's, from a live data directory."""

from __future__ import annotations

import csv
import io
import json
import stat
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from chatlog.cli import main as chatlog_main
from shared.settings import Settings
from tests.support.faq import Reply, exchange, settled
from tests.support.statistics_oracle import post_all

LEAVE = "연차 휴가 신청 방법"
PARAPHRASE = "연차휴가는 어떻게 신청하나요?"
PASSWORD = "How do I reset my password?"


@pytest.fixture
async def asked(client: TestClient[Any, Any], config: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Five leave questions (two paraphrased) with answers, three password questions, one asked once."""
    events: list[dict[str, Any]] = []
    for i in range(3):
        events += exchange(LEAVE, [Reply(f"인사 시스템에서 신청합니다 ({i})\n\n팀장 승인 후 확정", 0.7 + i / 10)])
    for _ in range(2):
        events += exchange(PARAPHRASE, [Reply("짧은 답", 0.5)], collection="legal-kb")
    for _ in range(3):
        events += exchange(PASSWORD, [Reply("failed", 0.2, status="error")], collection="it-helpdesk")
    events += exchange("one-off, \"quoted\" question", [Reply("x", 0.9)])
    await post_all(client, events)
    await settled(config, len(events))
    monkeypatch.setenv("CHATLOG_DATA_DIR", str(config.data_dir))
    monkeypatch.setenv("CHATLOG_TIMEZONE", str(config.timezone))
    monkeypatch.setenv("CHATLOG_USER_HASH_SECRET", config.user_hash_secret)


@pytest.mark.usefixtures("asked")
def test_json_export_is_the_faq(api_client: TestClient[Any, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """The JSON items are the API's FAQ items; groups under the minimum are left out."""
    assert chatlog_main(["faq", "export", "--format", "json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert [(i["question"], i["count"]) for i in body["items"]] == [(LEAVE, 5), (PASSWORD, 3)]
    leave, password = body["items"]
    assert leave["answer"].startswith("인사 시스템에서 신청합니다 (2)") and leave["answer_log_id"]
    assert leave["variants"] == [{"text": LEAVE, "count": 3}, {"text": PARAPHRASE, "count": 2}]
    assert password["answer"] is None
    assert body["min_count"] == 3 and body["collection_name"] is None
    assert chatlog_main(["faq", "export", "--format", "json", "--collection", "it-helpdesk"]) == 0
    assert [i["question"] for i in json.loads(capsys.readouterr().out)["items"]] == [PASSWORD]
    assert chatlog_main(["faq", "export", "--format", "json", "--min-count", "1"]) == 0
    assert len(json.loads(capsys.readouterr().out)["items"]) == 3


@pytest.mark.usefixtures("asked")
def test_markdown_and_csv_exports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Markdown has a section per question with its answer; CSV parses back to the same figures; files are 0640."""
    out = tmp_path / "faq.md"
    assert chatlog_main(["faq", "export", "--output", str(out)]) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    text = out.read_text()
    assert f"## 1. {LEAVE}" in text and f"## 2. {PASSWORD}" in text
    assert "Asked 5 times (55.6% of questions; hr-docs 3, legal-kb 2), mean best retrieval score 0.68" in text
    assert f"Also asked as: {PARAPHRASE} (2)." in text
    assert "인사 시스템에서 신청합니다 (2)\n\n팀장 승인 후 확정" in text
    assert "_No stored answer to show" in text.split(f"## 2. {PASSWORD}")[1]
    assert chatlog_main(["faq", "export", "--format", "csv", "--min-count", "1"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["question"], r["count"]) for r in rows] == [
        (LEAVE, "5"), (PASSWORD, "3"), ('one-off, "quoted" question', "1"),
    ]
    assert rows[0]["variants"] == f"{LEAVE} (3) | {PARAPHRASE} (2)"
    assert rows[0]["collections"] == "hr-docs=3;legal-kb=2" and float(rows[0]["share"]) == pytest.approx(5 / 9)
    assert rows[1]["answer"] == "" and rows[2]["answer"] == "x"


@pytest.mark.usefixtures("asked")
def test_bad_arguments_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """A reversed range or an impossible limit is a one-line error, not a traceback."""
    assert chatlog_main(["faq", "export", "--from", "2026-02-01", "--to", "2026-01-01"]) == 1
    assert "--from 2026-02-01 is after --to 2026-01-01" in capsys.readouterr().err
    assert chatlog_main(["faq", "export", "--limit", "0"]) == 1
