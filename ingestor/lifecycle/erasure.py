"""Erasing one user everywhere: every day file (plain and compressed) and SQLite.

The order makes a crash at any point lose nothing and count nothing twice:

1. read every day file and plan: the lines each keeps, how many of the user's lines the
   day's applied count (``ingest_offsets``) covers, and which query texts the user fed
   into the statistics;
2. one SQLite transaction marks the erasure pending (``meta``), corrects the applied
   counts, deletes the user's rows and takes the user's texts out of the top queries;
3. each affected day file is rewritten without the user's lines (temporary file,
   fsync, rename, fsync of the folder), so it is either the old or the new file;
4. the mark is cleared; VACUUM and a truncating WAL checkpoint leave no deleted byte
   in a free page or an old WAL frame; backups from before are replaced by a fresh one
   (``ingestor.lifecycle.erasure_backups``).

With PostgreSQL (``ingestor.lifecycle.erasure_store`` holds the differences) the rows are
every node's and go at once, the user's conversation records with their index rows; the
day files are this node's, so the user's lines on another node go when the erasure runs
there (``chatlog erase-user`` on each node).

A crash between 2 and 4 leaves the mark, and the next start or erasure only redoes 3
(``finish_pending_erasure``): the counts of step 2 already describe the new files.
Steps 1-4 need that nothing appends to or follows the day files meanwhile: the CLI
holds the writer lock; a running ingestor (``ingestor.erase_endpoint``) stops its
derived-state process and holds its day-file lock (``day_lock``).
"""

from __future__ import annotations

import contextlib
import gzip
import os
import secrets
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import msgspec
import zstandard

from ingestor.dayfiles import fsync_dir
from ingestor.lifecycle.erasure_stats import FedQueries, take_out_queries
from ingestor.lifecycle.erasure_store import ErasureStore, erasure_store
from shared.compressed import SegmentState, format_of, walk
from shared.db import DB_FILE_MODE
from shared.layout import StorageLayout, Stream
from shared.quarantine import quarantined
from shared.reader import iter_lines


class _Owner(msgspec.Struct):
    user_hash: str | None = None


class _ConversationId(msgspec.Struct):
    conversation_id: str = ""


@dataclass
class ErasureReport:
    """What an erasure removed."""

    lines: dict[str, int] = field(default_factory=dict)  # per stream
    files_rewritten: int = 0
    sessions: int = 0
    conversations: int = 0
    query_texts: int = 0
    faq_questions: int = 0
    quarantined: int = 0
    quarantined_files: int = 0

    def summary(self) -> str:
        """One line for the operator."""
        parts = ", ".join(f"{n} {stream} lines" for stream, n in self.lines.items())
        return (
            f"removed {parts or 'no lines'} in {self.files_rewritten} files, "
            f"{self.sessions} session rows, {self.conversations} conversation index rows, "
            f"{self.query_texts} top-query counts, {self.faq_questions} FAQ question counts, "
            f"{self.quarantined} quarantined lines, "
            f"{self.quarantined_files} quarantined damaged files"
        )


@dataclass
class _DayRewrite:
    stream: Stream
    day: date
    path: Path
    leftover: Path | None
    kept: list[bytes]
    removed: int
    removed_applied: int
    removed_lines: list[bytes] = field(default_factory=list)  # the removed lines the applied count covers


@dataclass
class ErasurePlan:
    rewrites: list[_DayRewrite] = field(default_factory=list)
    fed: FedQueries = field(default_factory=FedQueries)
    sessions: set[str] = field(default_factory=set)
    applied: dict[tuple[Stream, date], int] = field(default_factory=dict)

    def kept_applied(self) -> list[tuple[date, list[bytes]]]:
        """Each rewritten log day's kept lines that its applied count covers."""
        return [
            (r.day, r.kept[: self.applied.get((r.stream, r.day), 0) - r.removed_applied])
            for r in self.rewrites if r.stream is Stream.LOGS
        ]

    def removed_applied_lines(self) -> list[tuple[date, list[bytes]]]:
        """Each rewritten log day's removed lines that its applied count covers."""
        return [(r.day, r.removed_lines) for r in self.rewrites if r.stream is Stream.LOGS]


def erase_user(
    layout: StorageLayout,
    conn: sqlite3.Connection,
    user_hash: str,
    zstd_level: int = 6,
    *,
    day_lock: contextlib.AbstractContextManager[object] | None = None,
    before_rewrite: Callable[[], None] = lambda: None,
    step: Callable[[str], None] = lambda name: None,
    backup_keep: int = 7,
) -> ErasureReport:
    """Remove every line and row of one user; only anonymous counts stay.

    ``day_lock`` keeps appends out while the files are read and rewritten;
    ``before_rewrite`` runs under it first (the ingestor closes its open day files).
    ``step`` is called after the database commit (``"committed"``) and after each file
    rewrite (``"rewrote"``): tests crash there. Backups from before are replaced by a
    fresh one (``ingestor.lifecycle.erasure_backups``), of which ``backup_keep`` are kept.
    """
    report = ErasureReport()
    store = erasure_store(conn)
    with day_lock if day_lock is not None else contextlib.nullcontext():
        before_rewrite()
        _finish(layout, conn, store, zstd_level, backup_keep)
        plan = _plan(layout, conn, user_hash)
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (store.pending_key, user_hash),
            )
            conn.executemany(
                "UPDATE ingest_offsets SET lines = lines - ?, size = NULL WHERE stream = ? AND day = ?",
                [(r.removed_applied, r.stream.value, r.day.isoformat()) for r in plan.rewrites if r.removed_applied],
            )
            report.sessions = conn.execute("DELETE FROM chat_sessions WHERE user_hash = ?", (user_hash,)).rowcount
            # With PostgreSQL the records (conversation_records) go with their index rows.
            report.conversations = conn.execute(
                "DELETE FROM conversations WHERE user_hash = ?", (user_hash,)
            ).rowcount
            # Session ids stay counted (unique sessions, reach) but no longer name the user's.
            conn.executemany(
                "UPDATE chat_statistics_sessions SET session_id = ? WHERE session_id = ?",
                [(f"erased-{secrets.token_hex(12)}", session) for session in sorted(plan.sessions)],
            )
            # Quarantined lines keep their raw bytes: the user's go too (stored lines carry
            # only the user's hash, so the hash finds them even where a line does not decode).
            report.quarantined = conn.execute(
                "DELETE FROM quarantined_lines WHERE instr(raw, ?) > 0", (user_hash.encode(),)
            ).rowcount
            report.query_texts = take_out_queries(conn, plan.fed)
            # Imported here: the FAQ rows' fold (chat_statistics.questions) brings numpy, which the
            # ingestor process otherwise never loads (~15 MB resident for every sidecar).
            report.faq_questions = store.take_out_questions(
                conn, plan.kept_applied(), plan.removed_applied_lines(), user_hash
            )
            if plan.rewrites or report.sessions or report.conversations:
                store.mark_backups_stale(conn)
        step("committed")
        report.quarantined_files = _drop_quarantined_copies(layout, user_hash)
        for rewrite in plan.rewrites:
            _rewrite(rewrite.path, rewrite.kept, zstd_level)
            if rewrite.leftover is not None:
                rewrite.leftover.unlink(missing_ok=True)
            if rewrite.stream is Stream.CONVERSATIONS:
                _repoint_conversations(conn, store, rewrite)
            step("rewrote")
            report.files_rewritten += 1
            report.lines[rewrite.stream.value] = report.lines.get(rewrite.stream.value, 0) + rewrite.removed
        conn.execute("DELETE FROM meta WHERE key = ?", (store.pending_key,))
    store.scrub(conn)
    store.replace_stale_backups(conn, layout.db_path, layout.backups_dir, backup_keep)
    return report


def _drop_quarantined_copies(layout: StorageLayout, user_hash: str) -> int:
    """Delete the damaged originals kept in quarantine whose readable frames hold the user.

    A quarantined original is kept byte for byte for forensics, so it cannot be rewritten
    without the user's lines; its readable frames are in the salvaged day file anyway
    (which the erasure rewrites), so only its unreadable bytes go with it.
    """
    needle = user_hash.encode()
    dropped = 0
    for copy in quarantined(layout):
        fmt = format_of(copy.day_file.name)
        if fmt is None:
            continue
        try:
            with open(copy.path, "rb") as f:
                holds = any(s.state is SegmentState.OK and needle in s.content for s in walk(f, fmt))
        except OSError:
            continue
        if holds:
            copy.path.unlink(missing_ok=True)
            dropped += 1
    return dropped


def finish_pending_erasure(
    layout: StorageLayout, conn: sqlite3.Connection, zstd_level: int = 6, backup_keep: int = 7
) -> bool:
    """Finish an erasure a crash interrupted (its file rewrites, then its backups); True when there was one."""
    return _finish(layout, conn, erasure_store(conn), zstd_level, backup_keep)


def _finish(
    layout: StorageLayout, conn: sqlite3.Connection, store: ErasureStore, zstd_level: int, backup_keep: int
) -> bool:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (store.pending_key,)).fetchone()
    if row is None:
        return store.replace_stale_backups(conn, layout.db_path, layout.backups_dir, backup_keep) > 0
    # The database already has the counts of the rewritten files: only the files remain.
    for rewrite in _file_rewrites(layout, str(row[0]), {}):
        _rewrite(rewrite.path, rewrite.kept, zstd_level)
        if rewrite.leftover is not None:
            rewrite.leftover.unlink(missing_ok=True)
        if rewrite.stream is Stream.CONVERSATIONS:
            _repoint_conversations(conn, store, rewrite)
    conn.execute("DELETE FROM meta WHERE key = ?", (store.pending_key,))
    store.scrub(conn)
    store.replace_stale_backups(conn, layout.db_path, layout.backups_dir, backup_keep)
    return True


def _plan(layout: StorageLayout, conn: sqlite3.Connection, user_hash: str) -> ErasurePlan:
    applied = {
        (Stream(stream), date.fromisoformat(day)): lines
        for stream, day, lines in conn.execute("SELECT stream, day, lines FROM ingest_offsets")
    }
    plan = ErasurePlan(applied=applied)
    plan.rewrites = _file_rewrites(layout, user_hash, applied, plan)
    return plan


def _file_rewrites(
    layout: StorageLayout, user_hash: str, applied: dict[tuple[Stream, date], int], plan: ErasurePlan | None = None
) -> list[_DayRewrite]:
    decoder = msgspec.json.Decoder(_Owner)
    rewrites: list[_DayRewrite] = []
    needle = user_hash.encode()
    for stream in Stream:
        for day, files in layout.days(stream).items():
            path = files.readable
            if path is None:
                continue
            kept: list[bytes] = []
            removed: list[bytes] = []
            removed_lines: list[bytes] = []
            covered = applied.get((stream, day), 0)
            for number, line in enumerate(iter_lines(path)):
                owner = None
                if needle in line:  # most lines are someone else's: skip the decode
                    with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
                        owner = decoder.decode(line).user_hash
                if owner == user_hash:
                    removed.append(line)
                    if number < covered:
                        removed_lines.append(line)
                else:
                    kept.append(line)
            if not removed:
                continue
            if plan is not None and stream is Stream.LOGS:
                plan.fed.add_day(day, layout.tz, removed, kept, plan.sessions)
            leftover = files.plain if files.plain is not None and files.plain != path else None
            rewrites.append(
                _DayRewrite(stream, day, path, leftover, kept, len(removed), len(removed_lines), removed_lines)
            )
    return rewrites


def _repoint_conversations(conn: sqlite3.Connection, store: ErasureStore, rewrite: _DayRewrite) -> None:
    """Point the index at each kept record's new place (lines before it may have gone)."""
    if not rewrite.path.name.endswith(".jsonl"):
        return  # a compressed day has no offsets: readers scan it
    decoder = msgspec.json.Decoder(_ConversationId)
    places: dict[str, tuple[int, int]] = {}
    offset = 0
    for line in rewrite.kept:
        with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
            places[decoder.decode(line).conversation_id] = (offset, len(line))
        offset += len(line) + 1
    with conn:
        conn.executemany(
            store.repoint_sql,
            store.repoint_rows([(at, length, cid, rewrite.day.isoformat()) for cid, (at, length) in places.items()]),
        )


def _rewrite(path: Path, lines: list[bytes], zstd_level: int) -> None:
    data = b"".join(line + b"\n" for line in lines)
    if path.name.endswith(".zst"):
        data = zstandard.ZstdCompressor(level=zstd_level).compress(data) if data else b""
    elif path.name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    tmp = path.with_name(path.name + ".erase.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, DB_FILE_MODE)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)
