"""Writing realistic day files straight to disk and reading back what readers see."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import msgspec

from shared.layout import StorageLayout, Stream
from shared.reader import ReadCounts, iter_records
from tests.support.events import make_event


class _LogId(msgspec.Struct):
    log_id: str


def day_events(day: date, count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` realistic stored log records of one day (Korean and English text)."""
    rng = random.Random(seed)
    start = datetime.combine(day, time(0, 0), tzinfo=UTC)
    events = []
    for i in range(count):
        kind = "assistant" if i % 2 else "user"
        event = make_event(rng, message_type=kind, created_at=start + timedelta(seconds=i))
        event["conversation_id"] = event["session_id"]
        event["message_content"] += f" #{i} 질문 번호 {rng.randrange(10**6)}"
        events.append(event)
    return events


def write_day(layout: StorageLayout, stream: Stream, day: date, events: list[dict[str, Any]]) -> Path:
    """Write a plain day file holding ``events``, one JSON line each."""
    path = layout.day_path(stream, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(msgspec.json.encode(e) + b"\n" for e in events))
    return path


def read_ids(layout: StorageLayout, stream: Stream = Stream.LOGS, counts: ReadCounts | None = None) -> list[str]:
    """The log_id of every record a reader sees in a stream, in file order."""
    paths = [f.readable for f in layout.days(stream).values() if f.readable is not None]
    return [r.log_id for r in iter_records(paths, _LogId, counts)]
