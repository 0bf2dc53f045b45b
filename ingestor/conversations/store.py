"""Storing conversation records durably and keeping the conversation index current."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, date, datetime

import aiosqlite
import msgspec

from ingestor.dayfiles import DayFileWriter, DayKey
from shared.conversation_reader import read_conversation
from shared.layout import StorageLayout, Stream
from shared.wire import ConversationRecord

_encoder = msgspec.json.Encoder()

_UPSERT = """
INSERT INTO conversations (conversation_id, collection_name, user_hash, started_at, last_message_at,
                           closed_at, total_turns, has_error, retention_priority, summary, day,
                           byte_offset, byte_length)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (conversation_id) DO UPDATE SET
    collection_name = excluded.collection_name, user_hash = excluded.user_hash,
    started_at = excluded.started_at, last_message_at = excluded.last_message_at,
    closed_at = excluded.closed_at, total_turns = excluded.total_turns, has_error = excluded.has_error,
    retention_priority = excluded.retention_priority, summary = excluded.summary, day = excluded.day,
    byte_offset = excluded.byte_offset, byte_length = excluded.byte_length
WHERE excluded.closed_at >= conversations.closed_at
"""


def iso(instant: datetime) -> str:
    """Fixed-width RFC 3339 text of an aware datetime in UTC (sorts as text)."""
    return instant.astimezone(UTC).isoformat(timespec="microseconds")


class ConversationStore:
    """Appends records to ``conversations/<day>.jsonl`` (fsynced) and indexes them in SQLite."""

    def __init__(
        self,
        layout: StorageLayout,
        files: DayFileWriter,
        conn: aiosqlite.Connection,
        db_lock: asyncio.Lock,
    ) -> None:
        self._layout = layout
        self._files = files
        self._conn = conn
        self._lock = db_lock

    async def save(self, records: Sequence[ConversationRecord]) -> None:
        """Write records durably, then point the index at them."""
        if not records:
            return
        groups: dict[DayKey, list[bytes]] = {}
        sizes: dict[DayKey, int] = {}
        placed: list[tuple[ConversationRecord, DayKey, int, int]] = []
        for record in records:
            key = (Stream.CONVERSATIONS, self._layout.day_of(record.closed_at))
            line = _encoder.encode(record) + b"\n"
            groups.setdefault(key, []).append(line)
            before = sizes.get(key, 0)
            sizes[key] = before + len(line)
            placed.append((record, key, before, len(line) - 1))
        result = await asyncio.to_thread(self._files.append, groups)
        rows = []
        for record, key, relative, length in placed:
            kind, start = result.starts[key]
            # A compressed day has no byte offsets into plain text: readers scan it instead.
            offset = start + relative if kind == ".jsonl" else -1
            rows.append(_row(record, key[1], offset, length))
        async with self._lock:
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
                await self._conn.executemany(_UPSERT, rows)
                await self._conn.commit()
            except BaseException:
                await self._conn.rollback()
                raise

    async def latest(self, conversation_ids: Sequence[str]) -> dict[str, ConversationRecord]:
        """The newest stored record of each given conversation that has one."""
        found: dict[str, ConversationRecord] = {}
        for start in range(0, len(conversation_ids), 500):
            chunk = list(conversation_ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            async with self._conn.execute(
                f"SELECT conversation_id, day, byte_offset, byte_length FROM conversations "
                f"WHERE conversation_id IN ({marks})",
                chunk,
            ) as cursor:
                pointers = [tuple(row) async for row in cursor]
            for cid, day, offset, length in pointers:
                record = await asyncio.to_thread(
                    read_conversation, self._layout, cid, date.fromisoformat(day), offset, length
                )
                if record is not None:
                    found[cid] = record
        return found


def _row(record: ConversationRecord, day: date, offset: int, length: int) -> tuple[object, ...]:
    return (
        record.conversation_id, record.collection_name, record.user_hash, iso(record.started_at),
        iso(record.last_message_at), iso(record.closed_at), record.metadata.total_turns,
        int(any(m.error for m in record.messages)), record.metadata.retention_priority,
        record.metadata.summary, day.isoformat(), offset, length,
    )
