"""Backups after an erasure: the ones taken before it are replaced by one taken after.

A backup from before an erasure still holds the user's rows, and its line counts
(``ingest_offsets``) include the lines the erasure removed from the day files: restored,
it would bring the user back and make the derived state skip as many of everyone
else's lines. So the erasure records when it started (no user data, in ``meta``), and
once the database is scrubbed a fresh backup is taken and every older one removed,
then the mark is cleared; a start after a crash in between does the same.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from ingestor.dayfiles import fsync_dir
from ingestor.lifecycle.backup import backup_database
from shared.db import is_sqlite

STALE_META = "backups_stale_before"


def mark_backups_stale(conn: sqlite3.Connection) -> None:
    """Inside the erasure's transaction: every backup older than now is to be replaced."""
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (STALE_META, repr(time.time())),
    )


def replace_stale_backups(conn: sqlite3.Connection, db_path: Path, backups_dir: Path, keep: int) -> int:
    """Take a fresh backup if there were any, remove the stale ones, clear the mark; return how many went."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (STALE_META,)).fetchone()
    if row is None:
        return 0
    before = float(row[0])
    stale = [path for path in _database_files(backups_dir) if path.stat().st_mtime <= before]
    if stale:
        # On PostgreSQL these are the SQLite store's from before the migration: there is no
        # SQLite store to back up any more, only the stale copies to remove.
        if is_sqlite(conn):
            backup_database(db_path, backups_dir, keep)
        for path in stale:
            path.unlink(missing_ok=True)
        fsync_dir(backups_dir)
    conn.execute("DELETE FROM meta WHERE key = ?", (STALE_META,))
    return len(stale)


def _database_files(backups_dir: Path) -> list[Path]:
    """Rotating backups and the copies a restore saved (``pre-restore-*``)."""
    try:
        names = os.listdir(backups_dir)
    except FileNotFoundError:
        return []
    return [backups_dir / n for n in names if n.endswith(".sqlite3") and (backups_dir / n).is_file()]
