"""Guide-format lines to contract events: what is mapped, what is validated, and the derived log_id."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from chatlog.importing.guide import Accepted, GuideLineReader, Problem
from shared.layout import StorageLayout
from shared.settings import Settings

SEOUL = ZoneInfo("Asia/Seoul")


def reader(tmp_path: Path, naive: ZoneInfo = SEOUL, unknown: Any = "reject", retention: int = 3650) -> GuideLineReader:
    settings = Settings.for_data_dir(tmp_path, timezone=SEOUL)
    return GuideLineReader(StorageLayout.from_settings(settings), retention, naive, unknown)


def line(**fields: Any) -> bytes:
    base: dict[str, Any] = {
        "session_id": "s-1", "collection_name": "hr-docs", "message_type": "user",
        "message_content": "연차 휴가는 어떻게 신청하나요?", "created_at": "2026-06-14 09:12:33.123456",
    }
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not ...}).encode()


def accepted(result: Accepted | list[Problem]) -> Accepted:
    assert isinstance(result, Accepted), result
    return result


def test_a_naive_datetime_is_read_in_the_naive_zone_with_a_space_or_a_t(tmp_path: Path) -> None:
    for text in ("2026-06-14 09:12:33.123456", "2026-06-14T09:12:33.123456"):
        event = accepted(reader(tmp_path).read(line(created_at=text))).event
        assert event.created_at == datetime(2026, 6, 14, 0, 12, 33, 123456, tzinfo=UTC)
    utc = accepted(reader(tmp_path, naive=ZoneInfo("UTC")).read(line())).event
    assert utc.created_at == datetime(2026, 6, 14, 9, 12, 33, 123456, tzinfo=UTC)
    # An offset in the line wins over the naive zone.
    given = accepted(reader(tmp_path).read(line(created_at="2026-06-14T09:12:33+00:00"))).event
    assert given.created_at == datetime(2026, 6, 14, 9, 12, 33, tzinfo=UTC)


def test_the_guide_shapes_are_mapped(tmp_path: Path) -> None:
    result = accepted(reader(tmp_path).read(line(
        message_type="assistant", user_id=1042, status=None, is_regeneration=None, llm_model=None,
        response_time_ms=2345.6, token_count=512,
    )))
    event = result.event
    assert event.user_id == "1042"
    assert event.status == "ok" and event.is_regeneration is False and event.llm_model is None
    assert event.performance is not None
    assert (event.performance.response_time_ms, event.performance.token_count) == (2346, 512)


def test_a_derived_log_id_depends_on_the_content_only(tmp_path: Path) -> None:
    r = reader(tmp_path)
    first = accepted(r.read(line()))
    assert first.derived_id
    reordered = json.dumps(dict(reversed(list(json.loads(line()).items()))), indent=1).replace("\n", " ")
    assert accepted(r.read(reordered.encode())).event.log_id == first.event.log_id
    other = accepted(r.read(line(message_content="다른 질문")))
    assert other.event.log_id != first.event.log_id
    given = accepted(r.read(line(log_id="my-own-id")))
    assert given.event.log_id == "my-own-id" and not given.derived_id


def test_unknown_fields_are_rejected_or_kept_in_metadata(tmp_path: Path) -> None:
    refused = reader(tmp_path).read(line(request_id="req-7"))
    assert refused == [Problem("$.request_id", "Object contains unknown field `request_id`")]
    kept = accepted(reader(tmp_path, unknown="metadata").read(line(request_id="req-7", metadata={"a": 1})))
    assert kept.event.metadata == {"a": 1, "imported_fields": {"request_id": "req-7"}}


@pytest.mark.parametrize(
    ("raw", "path", "reason"),
    [
        (b'{"session_id": "s", "collection', "$", "not JSON"),
        (b"[1, 2]", "$", "not a JSON object"),
        (line(created_at=...), "$.created_at", "created_at is missing"),
        (line(created_at="yesterday"), "$.created_at", "Invalid RFC3339"),
        (line(message_type="bot"), "$.message_type", "Invalid enum value 'bot'"),
        (line(performance={"response_time_ms": -5}), "$.performance.response_time_ms", ">= 0"),
        (line(session_id=...), "$.session_id", "missing required field"),
    ],
)
def test_bad_lines_are_named(tmp_path: Path, raw: bytes, path: str, reason: str) -> None:
    problems = reader(tmp_path).read(raw)
    assert isinstance(problems, list) and len(problems) == 1
    assert problems[0].path == path and reason in problems[0].reason


def test_the_ingest_bounds_hold_as_for_post_v1_logs(tmp_path: Path) -> None:
    old = (datetime.now(SEOUL) - timedelta(days=40)).replace(tzinfo=None).isoformat()
    problems = reader(tmp_path, retention=30).read(line(created_at=old))
    assert problems == [Problem("$.created_at", "created_at is older than the log retention")]
    ahead = (datetime.now(SEOUL) + timedelta(days=3)).replace(tzinfo=None).isoformat()
    assert reader(tmp_path).read(line(created_at=ahead)) == [
        Problem("$.created_at", "created_at is more than a day in the future")
    ]
