"""Hostile day-file lines never stop the derived state: long lines are applied, bad ones quarantined."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest
from aiohttp.test_utils import TestClient

from chat_statistics.admission import inadmissible
from ingestor import keys
from ingestor.derived.process import DERIVED_LAG_LIMIT_BYTES
from ingestor.derived.status import DerivedStatus
from shared.settings import Settings
from shared.wire import LlmParams, LogRecord, Performance, RetrievalInfo, RetrievedDoc
from tests.support.derived import derived_state, until
from tests.support.events import make_event
from tests.support.hostile import append_raw, counted, every_collection, quarantined, record_line

Line = Callable[[Settings, random.Random], bytes]


def _value(**fields: Any) -> Line:
    return lambda config, rng: record_line(config, rng, **fields)[1]


BAD_LINES: dict[str, tuple[Line, str]] = {
    "response_time_ms of 2^64": (
        _value(performance={"response_time_ms": 2**64, "token_count": 10}), "performance.response_time_ms"
    ),
    "token_count of 2^63": (_value(performance={"token_count": 2**63}), "performance.token_count"),
    "max_tokens past 2^53": (_value(llm_params={"max_tokens": 2**60}), "llm_params.max_tokens"),
    "an instant past year 9999 in UTC": (_value(created_at="9999-12-31T23:00:00-05:00"), "created_at"),
    "not JSON": (lambda config, rng: b'{"log_id": "torn-in-the-middle", "session_', "does not decode"),
    "two records on one line": (
        lambda config, rng: record_line(config, rng)[1] + b"," + record_line(config, rng)[1], "does not decode"
    ),
    "a NUL and odd unicode in strings": (
        _value(message_content="\x00\u202e\U0010ffff\ufeff" * 3, session_id="s-\x00-\U0001f600"), ""
    ),
}


@pytest.mark.parametrize("name", list(BAD_LINES))
async def test_a_line_the_derived_state_cannot_apply_is_quarantined_and_the_rest_flows(
    config: Settings, name: str
) -> None:
    """The line is kept with its reason and raw bytes; every later event of every collection is counted."""
    make_line, reason = BAD_LINES[name]
    rng = random.Random(7)
    async with derived_state(config) as derived:
        before = await derived.post(every_collection(rng))
        day = before[0].day
        line = make_line(config, rng)
        append_raw(config, day, line + b"\n")
        after = derived.write(every_collection(rng))
        derived.state.wake({day})
        good = before + after
        applies = reason == ""  # odd but storable strings are simply applied
        expected = len(good) + (1 if applies else 0)
        await until(lambda: counted(config.db_path)["lines"] == len(good) + 1, seconds=10)
        await until(lambda: counted(config.db_path)["sessions"] == expected, seconds=10)
    held = counted(config.db_path)
    statistics = Counter(r.record.collection_name for r in good)
    if applies:
        assert sum(held["statistics"].values()) == expected
        assert quarantined(config.db_path) == []
        return
    assert held["statistics"] == dict(statistics)
    ((q_day, number, why, raw),) = quarantined(config.db_path)
    assert (q_day, number, raw) == (day.isoformat(), len(before) + 1, line)
    assert reason in why


@pytest.mark.parametrize("name", list(BAD_LINES))
async def test_a_restart_after_a_quarantined_line_goes_on_counting(config: Settings, name: str) -> None:
    """The next start skips the quarantined line again (it is not quarantined twice) and applies the rest."""
    make_line, reason = BAD_LINES[name]
    rng = random.Random(11)
    async with derived_state(config) as derived:
        first = await derived.post(every_collection(rng))
        append_raw(config, first[0].day, make_line(config, rng) + b"\n")
        derived.state.wake({first[0].day})
        await until(lambda: counted(config.db_path)["lines"] == len(first) + 1, seconds=10)
    async with derived_state(config) as derived:
        last = await derived.post(every_collection(rng, 1))
    held = counted(config.db_path)
    assert held["lines"] == len(first) + len(last) + 1
    assert held["sessions"] == len(first) + len(last) + (1 if reason == "" else 0)
    assert len(quarantined(config.db_path)) == (0 if reason == "" else 1)


async def test_a_line_longer_than_one_read_is_applied_and_the_follower_moves_on(config: Settings) -> None:
    """A 1.5 MB message (the ingestor takes bodies up to 5 MiB) counts in sessions and statistics."""
    rng = random.Random(8)
    async with derived_state(config) as derived:
        before = await derived.post(every_collection(rng))
        long = derived.write([make_event(rng, collection_name="legal-kb", message_content="법" * 500_000)])
        assert len(long[0].line) > 1_500_000
        after = derived.write(every_collection(rng))
        derived.state.wake({long[0].day})
        everything = before + long + after
        await until(lambda: counted(config.db_path)["sessions"] == len(everything), seconds=10)
        assert derived.state.status().lag_bytes == 0
    held = counted(config.db_path)
    assert held["lines"] == len(everything)
    assert held["statistics"] == dict(Counter(r.record.collection_name for r in everything))
    assert quarantined(config.db_path) == []


async def test_an_unterminated_tail_is_waited_for_then_applied_once(config: Settings) -> None:
    """A line without its newline yet (being written, any length) is not applied until it ends."""
    rng = random.Random(9)
    async with derived_state(config) as derived:
        before = await derived.post(every_collection(rng))
        day, line = record_line(config, rng, message_content="x" * 3_000_000)
        append_raw(config, day, line[:2_500_000])
        derived.state.wake({day})
        await derived.state.pull()
        await derived.state.pull()
        assert derived.state.applier.lag_bytes([day]) == 2_500_000
        append_raw(config, day, line[2_500_000:] + b"\n")
        derived.state.wake({day})
        await until(lambda: counted(config.db_path)["sessions"] == len(before) + 1, seconds=10)
    assert counted(config.db_path)["lines"] == len(before) + 1


async def _health(client: TestClient[Any, Any]) -> dict[str, Any]:
    resp = await client.get("/healthz")
    assert resp.status == 200  # the ingestor can store: the contract's 200, whatever the derived state does
    body: dict[str, Any] = await resp.json()
    return body


def metric(text: str, name: str) -> float:
    """The value of an unlabelled sample in Prometheus text."""
    (value,) = [line.split()[1] for line in text.splitlines() if line.startswith(name + " ")]
    return float(value)


async def test_a_stalled_derived_state_shows_in_healthz_and_metrics(
    client: TestClient[Any, Any], config: Settings
) -> None:
    """Lines that cannot be read on (a tail a foreign writer never finished) make it stalled, visibly."""
    derived = client.app[keys.derived_key]
    await derived.wait_ready()
    derived.stall_seconds = 3.0  # heartbeats come every second, later under load
    rng = random.Random(10)
    assert (await client.post("/v1/logs", json=every_collection(rng))).status == 202
    await until(lambda: counted(config.db_path)["sessions"] == 6, seconds=10)
    assert (await _health(client))["derived"]["stalled"] is False
    day, line = record_line(config, rng)
    append_raw(config, day, line[:100])
    deadline = time.monotonic() + 20
    while not (body := await _health(client))["derived"]["stalled"]:
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.2)
    assert body["status"] == "ok"
    assert body["derived"]["seconds_without_progress"] >= 3.0
    text = await (await client.get("/metrics")).text()
    assert metric(text, "chatlog_ingest_derived_stalled") == 1.0
    assert metric(text, "chatlog_ingest_derived_seconds_without_progress") >= 3.0
    # Far behind but stalled: refusing events would not help it catch up.
    derived.status = DerivedStatus(
        lag_bytes=DERIVED_LAG_LIMIT_BYTES + 1, applied_lines=0, open_conversations=0, saved=0, dropped=0
    )
    assert not derived.behind()
    append_raw(config, day, line[100:] + b"\n")
    await until(lambda: counted(config.db_path)["sessions"] == 7, seconds=10)
    deadline = time.monotonic() + 10
    while (body := await _health(client))["derived"]["stalled"]:
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.2)
    assert metric(await (await client.get("/metrics")).text(), "chatlog_ingest_derived_stalled") == 0.0


def test_admission_names_each_value_the_derived_state_cannot_hold() -> None:
    """Values no JSON line decodes to (NaN, infinity) but other writers' records may hold are named too."""
    zone = ZoneInfo("Asia/Seoul")
    ok = msgspec.json.decode(record_line(Settings(), random.Random(12))[1], type=LogRecord)
    assert inadmissible(ok, zone) is None
    replace = msgspec.structs.replace
    cases = {
        "$.performance.token_count": replace(ok, performance=Performance(token_count=2**53)),
        "$.llm_params.temperature": replace(ok, llm_params=LlmParams(temperature=math.nan)),
        "$.retrieval_info.top_scores": replace(ok, retrieval_info=RetrievalInfo(top_scores=[0.5, math.inf])),
        "$.retrieved_docs[].score": replace(ok, retrieved_docs=[RetrievedDoc(score=-math.inf)]),
        "created_at": replace(ok, created_at=datetime(9999, 12, 31, 20, tzinfo=UTC)),  # past 9999 in Seoul
        "created_at ": replace(ok, created_at=datetime(1, 1, 1, 1, tzinfo=timezone(timedelta(hours=5)))),
    }
    for path, record in cases.items():
        reason = inadmissible(record, zone)
        assert reason is not None and path.strip() in reason, (path, reason)
    assert inadmissible(replace(ok, performance=Performance(token_count=2**53 - 1)), zone) is None
