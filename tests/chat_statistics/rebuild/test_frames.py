"""Reading day files for the rebuild: fast and careful paths agree; finalised days keep bounded query rows."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec
import pytest

from chat_statistics.rebuild.aggregate import DayRows, aggregate_day
from chat_statistics.rebuild.frames import DayColumns, parse_lines, read_columns, read_day
from chat_statistics.top_queries import QUERY_ROWS_PER_HOUR, TOP_PER_DAY
from shared.wire import LogRecord
from tests.support.statistics_oracle import generate

SEOUL = ZoneInfo("Asia/Seoul")


def stored_lines(count: int, seed: int = 21) -> list[bytes]:
    """Generated events as the ingestor stores them (``LogRecord`` lines)."""
    out = []
    for event in generate(seed, datetime.now(UTC), count=count, days=0.5):
        event["conversation_id"] = event["session_id"]
        record = msgspec.json.decode(msgspec.json.encode(event), type=LogRecord)
        out.append(msgspec.json.encode(record) + b"\n")
    return out


def test_damaged_line_falls_back_without_changing_the_rows() -> None:
    """A day with a damaged line (careful path) gives the rows of the same day without it (fast path)."""
    lines = stored_lines(400)
    day = date(2026, 1, 1)
    fast = aggregate_day(parse_lines(b"".join(lines), SEOUL), day, finalise=False)
    damaged = [
        *lines[:100],
        b'{"log_id": "x", "session_id": 7}\n',
        *lines[100:200],
        b"garbage\n",
        *lines[200:],
    ]
    careful = aggregate_day(parse_lines(b"".join(damaged), SEOUL), day, finalise=False)
    assert fast.events == len(lines) and careful == fast


def test_reader_skips_torn_tail_and_counts_lines(tmp_path: Path) -> None:
    """A torn last line is not part of the day; the first N lines are exactly N lines."""
    lines = stored_lines(50)
    path = tmp_path / "2026-01-01.jsonl"
    path.write_bytes(b"".join(lines) + b'{"log_id": "cut')
    day = read_day(path)
    assert day.lines == len(lines)
    assert day.first(10) == b"".join(lines[:10]) and day.first(0) == b"" and day.first(10**6) == day.data


def test_finalised_day_keeps_bounded_query_rows() -> None:
    """Finalising keeps each hour's top query rows plus the day's top keys; top lists do not change."""
    base = {
        "session_id": "s",
        "conversation_id": "s",
        "collection_name": "c",
        "message_type": "user",
        "created_at": "2026-01-01T03:10:00Z",
    }
    lines = []
    for i in range(400):
        text = f"popular {i % 5}" if i % 2 else f"rare question {i}"
        record = msgspec.json.decode(
            msgspec.json.encode({**base, "log_id": f"l{i}", "message_content": text}), type=LogRecord
        )
        lines.append(msgspec.json.encode(record) + b"\n")
    columns = parse_lines(b"".join(lines), ZoneInfo("UTC"))
    day = date(2026, 1, 1)
    open_day = aggregate_day(columns, day, finalise=False)
    final = aggregate_day(columns, day, finalise=True)
    assert len(open_day.queries) == 205
    assert QUERY_ROWS_PER_HOUR <= len(final.queries) <= QUERY_ROWS_PER_HOUR + TOP_PER_DAY
    assert {r[3] for r in final.queries} >= {f"popular {i}" for i in range(5)}
    assert (final.hourly, final.overall, final.daily) == (open_day.hourly, open_day.overall, open_day.daily)


def test_day_without_user_messages_or_timings() -> None:
    """Days with only assistant events, or without any response time, still give complete rows."""
    lines = [line for line in stored_lines(200) if b'"message_type":"assistant"' in line]
    rows = aggregate_day(parse_lines(b"".join(lines), SEOUL), date(2026, 1, 1), finalise=True)
    assert rows.queries == [] and rows.hourly and all(r[3] == 0 for r in rows.hourly)
    untimed = [line.replace(b'"response_time_ms":', b'"retrieval_time_ms":') for line in lines]
    rows = aggregate_day(parse_lines(b"".join(untimed), SEOUL), date(2026, 1, 1), finalise=True)
    assert all(r[-2] is None and r[-6] is None for r in rows.daily)  # no sketch, no average


def _rows(columns: DayColumns) -> DayRows:
    return aggregate_day(columns, date(2026, 1, 1), finalise=False)


def test_lines_the_replay_rejects_are_skipped_exactly(tmp_path: Path) -> None:
    """Blank, padded and split lines and two events on one line count as the replay counts them."""
    lines = stored_lines(300)
    split = lines[10].index(b",") + 1
    doubled = lines[11].rstrip(b"\n") + lines[11]
    cases = {
        # A value split over two lines and two events on one line: their counts cancel out.
        "split and doubled": ([lines[10][:split] + b"\n", lines[10][split:], doubled], []),
        "blank and whitespace": ([b"\n", b"   \n", lines[10].rstrip(b"\n") + b"garbage\n", lines[11]], [lines[11]]),
        "padded": ([b"  " + lines[10], lines[11]], lines[10:12]),
    }
    for name, (middle, kept) in cases.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_bytes(b"".join([*lines[:10], *middle, *lines[12:]]))
        rebuilt = _rows(read_columns(path, read_day(path).lines, SEOUL))
        assert rebuilt == _rows(parse_lines(b"".join([*lines[:10], *kept, *lines[12:]]), SEOUL)), name


def test_first_lines_of_a_growing_file(tmp_path: Path) -> None:
    """Only the first N (applied) lines count, in the fast path and when a blank line forces the careful one."""
    lines = stored_lines(9000, seed=22)
    path = tmp_path / "2026-01-01.jsonl"
    path.write_bytes(b"".join(lines))
    expected = _rows(parse_lines(b"".join(lines[:7000]), SEOUL))
    assert _rows(read_columns(path, 7000, SEOUL)) == expected
    path.write_bytes(b"".join([*lines[:5000], b"\n", *lines[5000:]]))
    assert _rows(read_columns(path, 7000, SEOUL)) == expected


def test_missing_day_file_raises(tmp_path: Path) -> None:
    """A day file that is gone is an error, not an empty day (the rebuild then keeps its rows)."""
    with pytest.raises(FileNotFoundError):
        read_columns(tmp_path / "2026-01-01.jsonl", 10, SEOUL)
