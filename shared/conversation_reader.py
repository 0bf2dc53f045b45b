"""Reading conversation records: by index pointer, or by scanning a day file.

The conversation index (SQLite ``conversations``) points at the newest record of each
conversation: its day, byte offset and length in the plain day file. After the day
is compressed the offset no longer applies and the day file is scanned instead.
With PostgreSQL the record's bytes are in ``conversation_records`` too (``decode_record``).
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import msgspec

from shared.layout import StorageLayout, Stream
from shared.reader import iter_lines
from shared.wire import ConversationRecord

_decoder = msgspec.json.Decoder(ConversationRecord)


def read_conversation(
    layout: StorageLayout, conversation_id: str, day: date, offset: int, length: int
) -> ConversationRecord | None:
    """The record the index points at, or the newest one of that id in that day's file."""
    files = layout.day_files(Stream.CONVERSATIONS, day)
    if files.plain is not None and files.readable == files.plain:
        record = _read_at(files.plain, offset, length)
        if record is not None and record.conversation_id == conversation_id:
            return record
    if files.readable is None:
        return None
    return newest_in_file(files.readable, conversation_id)


def decode_record(text: bytes) -> ConversationRecord | None:
    """A record from its stored bytes (a day-file line), or None when they are not one."""
    try:
        return _decoder.decode(text)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def _read_at(path: Path, offset: int, length: int) -> ConversationRecord | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        data = os.pread(fd, length, offset)
    finally:
        os.close(fd)
    return decode_record(data)


def newest_in_file(path: Path, conversation_id: str) -> ConversationRecord | None:
    """The last record of a conversation in one day file (a later line is a newer record)."""
    needle = msgspec.json.encode(conversation_id)
    found: ConversationRecord | None = None
    for line in iter_lines(path):
        if needle not in line:
            continue
        try:
            record = _decoder.decode(line)
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
        if record.conversation_id == conversation_id:
            found = record
    return found
