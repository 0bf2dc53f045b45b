"""Conversation recovery reads the applied lines in chunks, with each line's place in its file."""

from __future__ import annotations

import json
import random
from datetime import date
from pathlib import Path

import pytest

from ingestor.conversations import service
from ingestor.conversations.service import _first_records
from tests.support.events import make_event


def _day_file(tmp_path: Path, count: int) -> tuple[Path, list[bytes]]:
    rng = random.Random(4)
    lines = []
    for n in range(count):
        event = make_event(rng)
        event.pop("user_id", None)
        event.update(log_id=f"l-{n}", conversation_id=f"c-{n % 7}", created_at="2026-12-01T10:00:00+00:00")
        lines.append(json.dumps(event, ensure_ascii=False).encode())
    path = tmp_path / "2026-12-01.jsonl"
    # A blank line and a torn tail, as a crash leaves them: neither is counted.
    path.write_bytes(b"\n".join(lines[:3]) + b"\n\n" + b"\n".join(lines[3:]) + b'\n{"torn')
    return path, lines


def test_places_point_at_each_line_and_chunks_stay_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "RECOVERY_CHUNK_LINES", 4)
    path, lines = _day_file(tmp_path, 10)
    data = path.read_bytes()
    chunks = list(_first_records(path, date(2026, 12, 1), 9))
    assert [len(c) for c in chunks] == [4, 4, 1]
    items = [item for chunk in chunks for item in chunk]
    assert [i.record.log_id for i in items] == [f"l-{n}" for n in range(9)]
    assert [i.number for i in items] == list(range(9))
    for item, line in zip(items, lines, strict=False):
        assert data[item.offset : item.offset + item.length] == line


def test_all_applied_lines_of_a_file_come_back_once(tmp_path: Path) -> None:
    path, _ = _day_file(tmp_path, 25)
    items = [i for chunk in _first_records(path, date(2026, 12, 1), 1000) for i in chunk]
    assert [i.record.log_id for i in items] == [f"l-{n}" for n in range(25)]
