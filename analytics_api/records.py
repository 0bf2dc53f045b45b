"""Where the analytics API reads a conversation's record: the day files, or PostgreSQL.

With SQLite the API shares the ingestor's data directory: the index row
(``conversations``) gives the record's day, byte offset and length in the day file.
With PostgreSQL an API has no data directory (any number run, anywhere) and a
conversation may have been written by any node: the record's bytes are in
``conversation_records``, stored by the ingestor in the same transaction as the index
row (``ingestor.conversations.store``). ``record_reader`` is the one place that picks.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import date

from aiohttp import web

from analytics_api import keys
from shared.conversation_reader import decode_record, read_conversation
from shared.settings import Settings
from shared.wire import ConversationRecord

RecordReader = Callable[[web.Application, str], Awaitable[ConversationRecord | None]]


def record_reader(settings: Settings) -> RecordReader:
    """How this API reads a stored conversation record by id."""
    return record_from_database if settings.database_url else record_from_files


async def record_from_files(app: web.Application, conversation_id: str) -> ConversationRecord | None:
    """The newest record, read from the day file at the place the index gives."""

    def pointer(conn: sqlite3.Connection) -> tuple[str, int, int] | None:
        row = conn.execute(
            "SELECT day, byte_offset, byte_length FROM conversations WHERE conversation_id = ?", (conversation_id,)
        ).fetchone()
        return (str(row[0]), int(row[1]), int(row[2])) if row is not None else None

    found = await app[keys.database_key].read(pointer, None)
    if found is None:
        return None
    day, offset, length = found
    layout = app[keys.layout_key]
    return await asyncio.to_thread(read_conversation, layout, conversation_id, date.fromisoformat(day), offset, length)


async def record_from_database(app: web.Application, conversation_id: str) -> ConversationRecord | None:
    """The newest record, read from ``conversation_records`` (whichever node stored it)."""

    def stored(conn: sqlite3.Connection) -> bytes | None:
        row = conn.execute(
            "SELECT record FROM conversation_records WHERE conversation_id = ?", (conversation_id,)
        ).fetchone()
        return bytes(row[0]) if row is not None else None

    text = await app[keys.database_key].read(stored, None)
    return decode_record(text) if text is not None else None
