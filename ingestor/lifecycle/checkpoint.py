"""Scheduled WAL checkpoints, so the WAL cannot grow without bound while the analytics API reads.

A PASSIVE checkpoint never waits: it copies what no reader still needs. A reader that is
always busy can keep it from ever reaching the end of the WAL, which then grows forever;
so when the WAL is over ``truncate_over`` bytes a TRUNCATE checkpoint waits (at most
``wait_ms``) for readers to move on, and shrinks the file to zero.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

TRUNCATE_OVER = 64 << 20
WAIT_MS = 1000


@dataclass(frozen=True)
class CheckpointResult:
    """One checkpoint: its mode, whether it was blocked, and the WAL's size around it."""

    mode: str
    busy: bool
    wal_frames: int
    checkpointed: int
    wal_bytes_before: int
    wal_bytes_after: int
    seconds: float

    def account(self) -> str:
        """The one-line account of the checkpoint."""
        return (
            f"{self.mode} checkpoint: {self.checkpointed}/{self.wal_frames} WAL frames copied"
            f"{' (readers busy)' if self.busy else ''}, "
            f"WAL {self.wal_bytes_before} -> {self.wal_bytes_after} bytes"
        )


def _wal_size(db_path: Path) -> int:
    try:
        return db_path.with_name(db_path.name + "-wal").stat().st_size
    except FileNotFoundError:
        return 0


def checkpoint_wal(
    db_path: Path, *, truncate_over: int = TRUNCATE_OVER, wait_ms: int = WAIT_MS
) -> CheckpointResult | None:
    """Checkpoint the database's WAL; None when there is no database yet."""
    if not db_path.exists():
        return None
    started = time.perf_counter()
    before = _wal_size(db_path)
    mode = "TRUNCATE" if before > truncate_over else "PASSIVE"
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(wait_ms)}")
        busy, frames, done = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
    finally:
        conn.close()
    return CheckpointResult(
        mode, bool(busy), max(frames, 0), max(done, 0), before, _wal_size(db_path),
        time.perf_counter() - started,
    )
