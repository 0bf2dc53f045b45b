"""Storing conversation records durably and keeping the conversation index current.

Every record is appended to ``conversations/<day>.jsonl`` (fsynced: each node's day
files are its durable log) and indexed in ``conversations`` by its place there. Which
store holds the record for readers is this module's one decision
(``conversation_store``): with SQLite the readers share the data directory and read
the line at its place; with PostgreSQL the readers (analytics APIs of any number, on
any machine) have no data directory, so the same bytes are also stored in
``conversation_records``, in the same transaction as the index row.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, date, datetime

import aiosqlite
import msgspec

from ingestor.dayfiles import DayFileWriter, DayKey
from shared.conversation_reader import decode_record, read_conversation
from shared.layout import StorageLayout, Stream
from shared.settings import Settings
from shared.wire import ConversationRecord

_encoder = msgspec.json.Encoder()

INDEX_UPSERT = """
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

# The record goes in only where its index row is the one just written: an older record
# (the index kept a newer one) leaves the stored record as it is.
RECORD_UPSERT = """
INSERT INTO conversation_records (conversation_id, node_id, record)
SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM conversations WHERE conversation_id = ? AND closed_at = ?)
ON CONFLICT (conversation_id) DO UPDATE SET node_id = excluded.node_id, record = excluded.record
"""


def iso(instant: datetime) -> str:
    """Fixed-width RFC 3339 text of an aware datetime in UTC (sorts as text)."""
    return instant.astimezone(UTC).isoformat(timespec="microseconds")


class ConversationStore:
    """Appends records to ``conversations/<day>.jsonl`` (fsynced) and indexes them (SQLite: readers read the files)."""

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
        placed: list[tuple[ConversationRecord, DayKey, int, bytes]] = []
        for record in records:
            key = (Stream.CONVERSATIONS, self._layout.day_of(record.closed_at))
            line = _encoder.encode(record) + b"\n"
            groups.setdefault(key, []).append(line)
            before = sizes.get(key, 0)
            sizes[key] = before + len(line)
            placed.append((record, key, before, line[:-1]))
        result = await asyncio.to_thread(self._files.append, groups)
        rows = []
        for record, key, relative, text in placed:
            kind, start = result.starts[key]
            # A compressed day has no byte offsets into plain text: readers scan it instead.
            offset = start + relative if kind == ".jsonl" else -1
            rows.append(_row(record, key[1], offset, len(text)))
        async with self._lock:
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
                await self._conn.executemany(INDEX_UPSERT, rows)
                await self._keep_records([(record, text) for record, _, _, text in placed])
                await self._conn.commit()
            except BaseException:
                await self._conn.rollback()
                raise

    async def _keep_records(self, lines: list[tuple[ConversationRecord, bytes]]) -> None:
        """Inside the index's transaction: store the records where readers read them (here: the files, done)."""

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


class SharedConversationStore(ConversationStore):
    """The PostgreSQL variant: the records themselves are in ``conversation_records`` too.

    Readers have no data directory, and a conversation may have been closed last on
    another node (its record's place is in that node's files): both read the record
    from the database.
    """

    def __init__(
        self,
        layout: StorageLayout,
        files: DayFileWriter,
        conn: aiosqlite.Connection,
        db_lock: asyncio.Lock,
        node: str,
    ) -> None:
        super().__init__(layout, files, conn, db_lock)
        self._node = node

    async def _keep_records(self, lines: list[tuple[ConversationRecord, bytes]]) -> None:
        await self._conn.executemany(
            RECORD_UPSERT,
            [(r.conversation_id, self._node, text, r.conversation_id, iso(r.closed_at)) for r, text in lines],
        )

    async def latest(self, conversation_ids: Sequence[str]) -> dict[str, ConversationRecord]:
        found: dict[str, ConversationRecord] = {}
        for start in range(0, len(conversation_ids), 500):
            chunk = list(conversation_ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            async with self._conn.execute(
                f"SELECT record FROM conversation_records WHERE conversation_id IN ({marks})", chunk
            ) as cursor:
                stored = [bytes(row[0]) async for row in cursor]
            for text in stored:
                record = decode_record(text)
                if record is not None:
                    found[record.conversation_id] = record
        return found


def conversation_store(
    settings: Settings, layout: StorageLayout, files: DayFileWriter, conn: aiosqlite.Connection, lock: asyncio.Lock
) -> ConversationStore:
    """The conversation store of ``settings``' derived state: records in the files only, or in PostgreSQL too."""
    if settings.database_url:
        return SharedConversationStore(layout, files, conn, lock, settings.node)
    return ConversationStore(layout, files, conn, lock)


def _row(record: ConversationRecord, day: date, offset: int, length: int) -> tuple[object, ...]:
    return (
        record.conversation_id, record.collection_name, record.user_hash, iso(record.started_at),
        iso(record.last_message_at), iso(record.closed_at), record.metadata.total_turns,
        int(any(m.error for m in record.messages)), record.metadata.retention_priority,
        record.metadata.summary, day.isoformat(), offset, length,
    )
