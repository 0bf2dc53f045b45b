"""Where an open conversation's messages live: their lines in the log day files.

An open conversation holds, per message, either the message encoded (posted
conversations, or events read back from a compressed file) or just the place of the
event's line in its plain day file: 21 bytes instead of the whole text. Thousands of
conversations stay open for CHATLOG_CONVERSATION_IDLE_MINUTES, so this is most of
the derived process's memory. When a conversation closes, its lines are read back
(from the page cache, usually), and a line whose plain file was compressed meanwhile
is found in the compressed file by its line number.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Callable, Sequence
from datetime import date

import msgspec

from shared.layout import StorageLayout, Stream
from shared.reader import iter_lines
from shared.wire import ConversationMessage, LogRecord

log = logging.getLogger("chatlog.ingestor.conversations")

_PLACE = struct.Struct("<BiiqI")  # marker, day ordinal, line number, byte offset, length
_MARKER = 0xFF  # never the first byte of a JSON text
_records = msgspec.json.Decoder(LogRecord)
_messages = msgspec.json.Decoder(ConversationMessage)


def pack_place(day: date, number: int, offset: int, length: int) -> bytes:
    """The place of one line of a plain log day file."""
    return _PLACE.pack(_MARKER, day.toordinal(), number, offset, length)


def is_place(held: bytes) -> bool:
    """Whether a held message is a place (not an encoded message)."""
    return held[0] == _MARKER


def resolve(
    layout: StorageLayout | None,
    conversation_id: str,
    held: Sequence[bytes],
    message_of: Callable[[LogRecord], ConversationMessage],
) -> list[ConversationMessage]:
    """The messages, in order; a line that cannot be read any more (retention) is left out.

    ``layout`` may be None when nothing is held as a place (an assembler without storage).
    """
    out: list[ConversationMessage | None] = [None] * len(held)
    by_day: dict[date, list[tuple[int, int, int, int]]] = {}
    for index, item in enumerate(held):
        if is_place(item):
            _, ordinal, number, offset, length = _PLACE.unpack(item)
            by_day.setdefault(date.fromordinal(ordinal), []).append((index, number, offset, length))
        else:
            out[index] = _messages.decode(item)
    if by_day and layout is None:
        raise ValueError("message places held without the storage they point into")
    for day, places in by_day.items():
        assert layout is not None  # checked above; tells the type checker
        for index, record in _read_day(layout, day, places, conversation_id):
            out[index] = message_of(record)
    missing = sum(1 for m in out if m is None)
    if missing:
        log.warning("%d message(s) of an open conversation were no longer in the day files", missing)
    return [m for m in out if m is not None]


def _read_day(
    layout: StorageLayout, day: date, places: list[tuple[int, int, int, int]], conversation_id: str
) -> list[tuple[int, LogRecord]]:
    found: list[tuple[int, LogRecord]] = []
    wanted: dict[int, int] = {}
    path = layout.day_path(Stream.LOGS, day)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        fd = -1
    try:
        for index, number, offset, length in places:
            record = _decode(os.pread(fd, length, offset)) if fd >= 0 else None
            if record is None or record.conversation_id != conversation_id:
                wanted[number] = index
            else:
                found.append((index, record))
    finally:
        if fd >= 0:
            os.close(fd)
    if wanted:
        # Compressed since (or changed): find the lines by number in what the day is now.
        readable = layout.day_files(Stream.LOGS, day).readable
        if readable is not None:
            for number, line in enumerate(iter_lines(readable)):
                index = wanted.pop(number, -1)
                if index >= 0 and (record := _decode(line)) is not None and record.conversation_id == conversation_id:
                    found.append((index, record))
                if not wanted:
                    break
    return found


def _decode(line: bytes) -> LogRecord | None:
    try:
        return _records.decode(line)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
