"""The derived state run in-process, fed by events written straight into real day files."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec

from ingestor.dayfiles import DayFileWriter, DayKey
from ingestor.derived.state import DerivedState
from ingestor.records import EncodedRecord, RecordBuilder
from ingestor.redaction import content_redactor
from shared.layout import StorageLayout, Stream
from shared.privacy import UserHasher
from shared.settings import Settings
from shared.wire import LogEventIn


class DerivedHarness:
    """Writes events as the ingestor would (user ids hashed, PII redacted), then lets the derived state read them."""

    def __init__(self, config: Settings, state: DerivedState) -> None:
        layout = StorageLayout.from_settings(config)
        self.state = state
        self.builder = RecordBuilder(
            layout, UserHasher(config.user_hash_secret.encode()), config.log_retention_days,
            redact=content_redactor(config),
        )
        self.files = DayFileWriter(layout)

    def write(self, events: list[dict[str, Any]]) -> list[EncodedRecord]:
        """Append events to their day files (fsynced), without telling the derived state."""
        records = self.builder.build([msgspec.convert(e, LogEventIn) for e in events])
        groups: dict[DayKey, list[bytes]] = {}
        for r in records:
            groups.setdefault((Stream.LOGS, r.day), []).append(r.line)
        self.files.append(groups)
        return records

    async def post(self, events: list[dict[str, Any]]) -> list[EncodedRecord]:
        """Write events and have the derived state read and fold them."""
        records = self.write(events)
        self.state.wake({r.day for r in records})
        await self.state.pull()
        return records


def totals(data_dir: Path) -> tuple[int, int]:
    """Lines the derived state has applied, and messages counted in chat_sessions."""
    with contextlib.closing(sqlite3.connect(data_dir / "chatlog.sqlite3")) as conn:
        (applied,) = conn.execute("SELECT coalesce(sum(lines), 0) FROM ingest_offsets").fetchone()
        (messages,) = conn.execute("SELECT coalesce(sum(message_count), 0) FROM chat_sessions").fetchone()
    return int(applied), int(messages)


async def until(predicate: Callable[[], bool], seconds: float = 30.0) -> None:
    """Poll until ``predicate()`` is true (the derived process applies lines within a second or so)."""
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.1)


@asynccontextmanager
async def derived_state(config: Settings) -> AsyncIterator[DerivedHarness]:
    """A started DerivedState over ``config``'s data directory, stopped in order at the end."""
    StorageLayout.from_settings(config).ensure_dirs()
    state = DerivedState(config)
    await state.start()
    harness = DerivedHarness(config, state)
    try:
        yield harness
    finally:
        harness.files.close()
        await state.stop()
