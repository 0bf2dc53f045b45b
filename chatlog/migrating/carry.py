"""What the day files cannot give back, carried from SQLite to PostgreSQL as it is.

- the conversation index and the records themselves: each index row with the bytes of
  the record line it points at in the conversations day files (``conversation_records``;
  the files stay this node's durable copy, the pointers keep pointing into them);
- the alerts history and the webhook outbox (alert ids are PostgreSQL's own: the
  outbox rows follow their alert's new id);
- the statistics of days whose day files retention deleted (aggregates outlive them);
- the user-hash key's fingerprint (``shared.privacy``), checked on both sides.

Each piece is idempotent: conversations are upserted (a newer record already in
PostgreSQL wins, as in ``ConversationStore``), the alerts are copied in one transaction
with a meta row marking them carried for this node, so a killed run carried all or none;
so is each expired day's statistics.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import msgspec

from ingestor.conversations.store import INDEX_UPSERT, RECORD_UPSERT
from ingestor.lifecycle.erasure_store import PENDING_META
from shared.layout import StorageLayout, Stream
from shared.privacy import store_key_for_start
from shared.reader import iter_lines
from shared.settings import Settings

CONVERSATION_BATCH = 500

_INDEX_COLUMNS = (
    "conversation_id, collection_name, user_hash, started_at, last_message_at, closed_at, total_turns, "
    "has_error, retention_priority, summary, day, byte_offset, byte_length"
)


_ALERT_COLUMNS = "rule, scope, state, started_at, resolved_at, value, threshold, baseline, message, quiet"
_OUTBOX_COLUMNS = "url, payload, created_at, next_at, attempts, last_error"


class MigrationRefused(RuntimeError):
    """The store cannot be migrated as it is; the message says what to do."""


class _Id(msgspec.Struct):
    conversation_id: str = ""


_ids = msgspec.json.Decoder(_Id)


def _id_of(line: bytes) -> str | None:
    try:
        return _ids.decode(line).conversation_id
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def alerts_marker(node: str) -> str:
    """The meta key saying this node's SQLite alerts were carried over."""
    return f"migrated_alerts:{node}"


@dataclass
class Carried:
    """What was carried over."""

    conversations: int = 0  # index rows with their record written (or already there, newer)
    unreadable: int = 0  # index rows whose record line could not be read (left out)
    alerts: int = 0
    outbox: int = 0
    alerts_already: bool = False  # an earlier run carried them
    alerts_skipped: int = 0  # firing in PostgreSQL already (another node's), left out
    expired_days: int = 0  # days without day files whose statistics were carried over
    expired_days_skipped: int = 0  # such days another node already has statistics for


def check_keys(settings: Settings, lite: sqlite3.Connection | None, pg: sqlite3.Connection) -> None:
    """The user-hash key must be SQLite's and PostgreSQL's (recorded in either that has none, as a start does).

    Another key would make this node's user hashes differ from every other node's, and
    from the ones in its own files. The caller holds the writer lock, as an ingestor start.
    """
    if lite is not None:
        store_key_for_start(settings, lite)
    store_key_for_start(settings, pg)


def check_no_pending_erasure(lite: sqlite3.Connection) -> None:
    """An unfinished erasure has rows gone from SQLite and lines still in the day files."""
    if lite.execute("SELECT 1 FROM meta WHERE key = ?", (PENDING_META,)).fetchone():
        raise MigrationRefused(
            "an erasure is unfinished in SQLite (its lines are still in the day files): start the "
            "ingestor once on SQLite (it finishes the erasure) and stop it, then migrate"
        )


def _records_of_day(
    layout: StorageLayout, day: date, pointers: list[tuple[str, int, int]]
) -> dict[str, bytes]:
    """The record line each (conversation id, offset, length) points at; the newest of that id when moved."""
    files = layout.day_files(Stream.CONVERSATIONS, day)
    found: dict[str, bytes] = {}
    if files.plain is not None and files.readable == files.plain:
        try:
            fd = os.open(files.plain, os.O_RDONLY)
        except FileNotFoundError:
            fd = -1
        if fd >= 0:
            try:
                for cid, offset, length in pointers:
                    if offset >= 0 and _id_of(line := os.pread(fd, length, offset)) == cid:
                        found[cid] = line
            finally:
                os.close(fd)
    missing = {cid for cid, _, _ in pointers if cid not in found}
    if missing and files.readable is not None:
        # Compressed since: a later line is a newer record (as shared.conversation_reader reads it).
        for line in iter_lines(files.readable):
            moved = _id_of(line)
            if moved is not None and moved in missing:
                found[moved] = line
    return found


def _index_by_day(lite: sqlite3.Connection) -> Iterator[tuple[date, list[tuple[Any, ...]]]]:
    day_rows: list[tuple[Any, ...]] = []
    current: str | None = None
    cursor = lite.execute(f"SELECT {_INDEX_COLUMNS} FROM conversations ORDER BY day, conversation_id")
    for row in cursor:
        if current is not None and row[10] != current:
            yield date.fromisoformat(current), day_rows
            day_rows = []
        current = str(row[10])
        day_rows.append(tuple(row))
    if current is not None:
        yield date.fromisoformat(current), day_rows


def carry_conversations(
    layout: StorageLayout, lite: sqlite3.Connection, pg: sqlite3.Connection, node: str,
    carried: Carried, progress: Callable[[int], None],
) -> None:
    """Every SQLite index row and its record into PostgreSQL, a batch per transaction."""
    for day, day_rows in _index_by_day(lite):
        records = _records_of_day(layout, day, [(str(r[0]), int(r[11]), int(r[12])) for r in day_rows])
        for start in range(0, len(day_rows), CONVERSATION_BATCH):
            batch = [r for r in day_rows[start : start + CONVERSATION_BATCH] if str(r[0]) in records]
            carried.unreadable += min(CONVERSATION_BATCH, len(day_rows) - start) - len(batch)
            if not batch:
                continue
            pg.execute("BEGIN IMMEDIATE")
            try:
                pg.executemany(INDEX_UPSERT, batch)
                pg.executemany(RECORD_UPSERT, [
                    (r[0], node, records[str(r[0])], r[0], r[5]) for r in batch
                ])
                pg.commit()
            except BaseException:
                pg.rollback()
                raise
            carried.conversations += len(batch)
            progress(carried.conversations)


def carry_alerts(lite: sqlite3.Connection, pg: sqlite3.Connection, node: str, carried: Carried) -> None:
    """The alerts and their outbox in one transaction, once per node."""
    marker = alerts_marker(node)
    pg.execute("BEGIN IMMEDIATE")
    try:
        if pg.execute("SELECT 1 FROM meta WHERE key = ?", (marker,)).fetchone():
            carried.alerts_already = True
            pg.rollback()
            return
        ids: dict[int, int] = {}
        for old_id, *values in lite.execute(f"SELECT id, {_ALERT_COLUMNS} FROM alerts ORDER BY id").fetchall():
            # A firing alert of the same rule and scope already there (another node's) keeps its place.
            row = pg.execute(
                f"INSERT INTO alerts ({_ALERT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING RETURNING id", values,
            ).fetchone()
            if row is None:
                carried.alerts_skipped += 1
            else:
                ids[int(old_id)] = int(row[0])
        outbox = [
            (ids[int(alert_id)], *values)
            for alert_id, *values in lite.execute(
                f"SELECT alert_id, {_OUTBOX_COLUMNS} FROM alert_outbox ORDER BY id"
            ).fetchall()
            if int(alert_id) in ids
        ]
        pg.executemany(f"INSERT INTO alert_outbox (alert_id, {_OUTBOX_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", outbox)
        pg.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (marker, f"{len(ids)} alerts, {len(outbox)} outbox"))
        pg.commit()
    except BaseException:
        pg.rollback()
        raise
    carried.alerts, carried.outbox = len(ids), len(outbox)


# Statistics kept after their day files expired (retention keeps aggregates), by the stream whose
# files they were derived from: the files cannot give them back, so SQLite's rows are carried.
EXPIRED_DAY_TABLES: dict[Stream, tuple[str, ...]] = {
    Stream.LOGS: (
        "chat_statistics", "chat_statistics_overall", "chat_statistics_daily", "chat_statistics_queries",
        "chat_statistics_sessions", "chat_statistics_reach", "retrieval_statistics", "retrieval_statistics_daily",
        "faq_questions", "answer_statistics", "error_statistics",
    ),
    Stream.FEEDBACK: ("feedback_statistics",),
}


def expired_marker(node: str, stream: Stream, day: str) -> str:
    """The meta key saying this node's statistics of an expired day were carried over."""
    return f"migrated_expired:{node}:{stream.value}:{day}"


def _columns(lite: sqlite3.Connection, table: str) -> list[str]:
    return [str(row[1]) for row in lite.execute(f"PRAGMA table_info({table})")]


def carry_expired_days(
    layout: StorageLayout, lite: sqlite3.Connection, pg: sqlite3.Connection, node: str, carried: Carried,
) -> None:
    """SQLite's statistics of each day that has no day file any more, a day per transaction.

    A day some other node already has statistics rows for is left out (counted): rows of
    two nodes cannot be merged here, only by applying events, which are gone.
    """
    for stream, tables in EXPIRED_DAY_TABLES.items():
        with_files = {day.isoformat() for day in layout.days(stream)}
        dates: set[str] = set()
        for table in tables:
            dates.update(str(row[0]) for row in lite.execute(f"SELECT DISTINCT date FROM {table}"))
        for day in sorted(dates - with_files):
            pg.execute("BEGIN IMMEDIATE")
            try:
                marker = expired_marker(node, stream, day)
                if pg.execute("SELECT 1 FROM meta WHERE key = ?", (marker,)).fetchone():
                    pg.rollback()
                    continue
                if any(pg.execute(f"SELECT 1 FROM {t} WHERE date = ? LIMIT 1", (day,)).fetchone() for t in tables):
                    pg.rollback()
                    carried.expired_days_skipped += 1
                    continue
                for table in tables:
                    columns = _columns(lite, table)
                    found = lite.execute(f"SELECT {', '.join(columns)} FROM {table} WHERE date = ?", (day,)).fetchall()
                    pg.executemany(
                        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", found
                    )
                pg.execute("INSERT INTO meta (key, value) VALUES (?, '1')", (marker,))
                pg.commit()
            except BaseException:
                pg.rollback()
                raise
            carried.expired_days += 1
