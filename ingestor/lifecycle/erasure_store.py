"""What an erasure does differently per store: its pending mark, the scrub, backups, repointing.

The erasure's statements are the same on both stores; these are not:

- the pending mark (``meta``): SQLite's database is one node's; PostgreSQL's ``meta``
  is shared, and an erasure pending on one node (its files still to rewrite) is that
  node's alone, so the mark's key names the node: another node starting meanwhile
  must not rewrite its own files against counts that were never corrected;
- the scrub: SQLite is rewritten (VACUUM) and its WAL truncated so no deleted byte
  stays in the file; PostgreSQL's pages, WAL and backups are the server's, a plain
  VACUUM only makes the deleted rows' space reusable at once;
- backups: SQLite's (``backups/``) taken before the erasure are replaced; PostgreSQL
  is backed up by the server's operator (pg_dump, WAL archiving), not here;
- repointing the index at a rewritten conversations day: on PostgreSQL only this
  node's records point into this node's files;
- the FAQ's question rows: SQLite's rows of a day come from this node's lines only,
  so they are recomputed from the lines kept; PostgreSQL's also hold other nodes'
  questions, so the user's own rows (questions pair with answers within the user's
  sessions, so they are computed from the user's lines alone) are subtracted.

The conversation records themselves (PostgreSQL's ``conversation_records``) go with
their index rows (a cascading foreign key): the erasure's ``DELETE FROM
conversations`` removes them on every node's behalf.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import date
from pathlib import Path

from ingestor.lifecycle.erasure_backups import mark_backups_stale, replace_stale_backups

PENDING_META = "erasure_pending"
DayLines = list[tuple[date, list[bytes]]]

_REPOINT = "UPDATE conversations SET byte_offset = ?, byte_length = ? WHERE conversation_id = ? AND day = ?"


class ErasureStore:
    """SQLite: one node's database file, backups in ``backups/``."""

    pending_key = PENDING_META
    repoint_sql = _REPOINT

    def repoint_rows(self, rows: list[tuple[int, int, str, str]]) -> list[tuple[object, ...]]:
        """Parameters of ``repoint_sql`` for (offset, length, conversation_id, day) rows."""
        return list(rows)

    def scrub(self, conn: sqlite3.Connection) -> None:
        """Rewrite the database without free pages and empty the WAL (deleted rows leave bytes in both)."""
        conn.execute("VACUUM")
        for _ in range(50):
            (busy, _, _) = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                return
            threading.Event().wait(0.1)  # a reader's snapshot pins the WAL: it ends soon

    def take_out_questions(self, conn: sqlite3.Connection, kept: DayLines, removed: DayLines, user_hash: str) -> int:
        """Inside the erasure's transaction: the user's questions out of the FAQ rows; how many went.

        ``kept`` and ``removed``: each rewritten log day's lines its applied count covers, kept
        or removed. This node's database holds every line of its days: recompute them from the kept lines.
        """
        # Imported here: the FAQ rows' fold (chat_statistics.questions) brings numpy, which the
        # ingestor process otherwise never loads (~15 MB resident for every sidecar).
        from ingestor.lifecycle.erasure_questions import take_out_questions

        return take_out_questions(conn, kept, user_hash)

    def mark_backups_stale(self, conn: sqlite3.Connection) -> None:
        """Inside the erasure's transaction: the backups taken before it are to be replaced."""
        mark_backups_stale(conn)

    def replace_stale_backups(self, conn: sqlite3.Connection, db_path: Path, backups_dir: Path, keep: int) -> int:
        """Replace the backups from before the erasure; how many went."""
        return replace_stale_backups(conn, db_path, backups_dir, keep)


class SharedErasureStore(ErasureStore):
    """PostgreSQL, shared by every node: marks and repointing are this node's."""

    repoint_sql = _REPOINT + (
        " AND conversation_id IN (SELECT conversation_id FROM conversation_records WHERE node_id = ?)"
    )

    def __init__(self, node: str) -> None:
        self.node = node
        self.pending_key = f"{PENDING_META}:{node}"

    def repoint_rows(self, rows: list[tuple[int, int, str, str]]) -> list[tuple[object, ...]]:
        return [(*row, self.node) for row in rows]

    def scrub(self, conn: sqlite3.Connection) -> None:
        conn.execute("VACUUM")

    def take_out_questions(self, conn: sqlite3.Connection, kept: DayLines, removed: DayLines, user_hash: str) -> int:
        # A day's rows hold other nodes' questions too: subtract the user's instead of recomputing.
        from ingestor.lifecycle.erasure_questions import subtract_questions

        return subtract_questions(conn, removed, user_hash)

    def mark_backups_stale(self, conn: sqlite3.Connection) -> None:
        pass

    def replace_stale_backups(self, conn: sqlite3.Connection, db_path: Path, backups_dir: Path, keep: int) -> int:
        return 0


def erasure_store(conn: sqlite3.Connection) -> ErasureStore:
    """The erasure's store behind ``conn`` (``shared.db.connect_store_sync`` opened either)."""
    from shared.postgres.connection import PostgresConnection

    if isinstance(conn, PostgresConnection):
        return SharedErasureStore(conn.node or "")
    return ErasureStore()
