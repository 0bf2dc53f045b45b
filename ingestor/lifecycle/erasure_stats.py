"""Taking an erased user's questions out of the top queries; every other count stays.

Each user message was counted once in the query row of its (collection, day, hour, key)
and in the top lists of its hour, its hour over all collections, its day per collection
and its day overall. An erasure decrements exactly those by the user's messages, drops
an entry at zero (the key is the user's text) and, where others asked the same question,
shows it with the smallest text of the others (the representative rule of
``chat_statistics.top_queries``), read from the same day files.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date
from zoneinfo import ZoneInfo

import msgspec

from chat_statistics.table_names import ALL_SCOPE, DAILY, HOURLY, OVERALL, QUERIES
from chat_statistics.top_queries import decode_top, display_text, encode_top, query_key, ranked
from shared.wire import LogRecord

Cell = tuple[str, str, int, str]  # collection_name, date, hour, query key

_decoder = msgspec.json.Decoder(LogRecord)


@dataclass
class FedQueries:
    """The user's query counts per cell, and the others' smallest text per cell of those keys."""

    removed: Counter[Cell] = field(default_factory=Counter)
    others: dict[Cell, str] = field(default_factory=dict)

    def add_day(
        self, day: date, tz: ZoneInfo, removed: Iterable[bytes], kept: Iterable[bytes], sessions: set[str]
    ) -> None:
        """Count the user's lines of one log day file; note the others' texts of the same keys."""
        keys: set[str] = set()
        for record in _records(removed):
            sessions.add(record.session_id)
            cell = _cell(record, day, tz)
            if cell is not None:
                self.removed[cell] += 1
                keys.add(cell[3])
        if not keys:
            return
        for record in _records(kept):
            cell = _cell(record, day, tz)
            if cell is not None and cell[3] in keys:
                text = display_text(record.message_content)
                if cell not in self.others or text < self.others[cell]:
                    self.others[cell] = text


def _records(lines: Iterable[bytes]) -> Iterable[LogRecord]:
    for line in lines:
        try:
            yield _decoder.decode(line)
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue


def _cell(record: LogRecord, day: date, tz: ZoneInfo) -> Cell | None:
    """The query cell a record fed, as ``chat_statistics.live`` counts it (None: not a query)."""
    if record.message_type != "user":
        return None
    key = query_key(record.message_content)
    if not key:
        return None
    at = record.created_at if record.created_at.tzinfo is not None else record.created_at.replace(tzinfo=UTC)
    return (record.collection_name, day.isoformat(), at.astimezone(tz).hour, key)


def take_out_queries(conn: sqlite3.Connection, fed: FedQueries) -> int:
    """Decrement every query row and top list the user's messages fed (inside the caller's transaction)."""
    if not fed.removed:
        return 0
    for (collection, day, hour, key), n in fed.removed.items():
        row = conn.execute(
            f"SELECT count FROM {QUERIES} WHERE collection_name = ? AND date = ? AND hour = ? AND query_key = ?",
            (collection, day, hour, key),
        ).fetchone()
        if row is None:
            continue  # a finalised day keeps only its top rows
        if row[0] <= n:
            conn.execute(
                f"DELETE FROM {QUERIES} WHERE collection_name = ? AND date = ? AND hour = ? AND query_key = ?",
                (collection, day, hour, key),
            )
        else:
            conn.execute(
                f"UPDATE {QUERIES} SET count = ?, sample_text = ? "
                "WHERE collection_name = ? AND date = ? AND hour = ? AND query_key = ?",
                (row[0] - n, fed.others.get((collection, day, hour, key), key), collection, day, hour, key),
            )
    scopes: list[tuple[str, str, Callable[[Cell], tuple[object, ...]]]] = [
        (HOURLY, "collection_name = ? AND date = ? AND hour = ?", lambda c: (c[0], c[1], c[2])),
        (OVERALL, "date = ? AND hour = ?", lambda c: (c[1], c[2])),
        (DAILY, "scope = ? AND date = ?", lambda c: (c[0], c[1])),
        (DAILY, "scope = ? AND date = ?", lambda c: (ALL_SCOPE, c[1])),
    ]
    for table, where, row_of in scopes:
        removed: dict[tuple[object, ...], Counter[str]] = {}
        for cell, n in fed.removed.items():
            removed.setdefault(row_of(cell), Counter())[cell[3]] += n
        texts: dict[tuple[tuple[object, ...], str], str] = {}
        for cell, text in fed.others.items():
            slot = (row_of(cell), cell[3])
            if slot not in texts or text < texts[slot]:
                texts[slot] = text
        for row_key, counts in removed.items():
            found = conn.execute(f"SELECT top_queries FROM {table} WHERE {where}", row_key).fetchone()
            if found is None:
                continue
            entries = []
            for entry in decode_top(found[0]):
                n = counts.get(entry.key, 0)
                if not n:
                    entries.append(entry)
                elif entry.count > n:
                    entries.append(
                        msgspec.structs.replace(
                            entry, count=entry.count - n, query=texts.get((row_key, entry.key), entry.key)
                        )
                    )
            conn.execute(
                f"UPDATE {table} SET top_queries = ? WHERE {where}",
                (encode_top(ranked(entries, len(entries))), *row_key),
            )
    return sum(fed.removed.values())

