"""Online SQLite backups, rotation, restore, and WAL checkpoints, on real databases."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from chatlog.cli import main as chatlog
from ingestor.lifecycle.backup import (
    BackupError,
    backup_database,
    database_problems,
    list_backups,
    newest_backup_age,
    restore_database,
)
from ingestor.lifecycle.checkpoint import checkpoint_wal
from shared.db import connect_writer_sync
from shared.layout import StorageLayout
from shared.locking import writer_lock
from shared.settings import Settings
from tests.support.events import make_event


def _sessions(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [row[0] for row in conn.execute("SELECT session_id FROM chat_sessions ORDER BY session_id")]
    finally:
        conn.close()


def _fill(db: Path, sessions: int) -> None:
    conn = connect_writer_sync(db)
    try:
        conn.executemany(
            "INSERT INTO chat_sessions VALUES (?, 'c', 'hr-docs', NULL, 't', 't', 1, '2026-03-01')",
            [(f"s-{i:05d}",) for i in range(sessions)],
        )
    finally:
        conn.close()


def test_backup_is_a_complete_standalone_copy_and_rotates(tmp_path: Path) -> None:
    """Each backup is one checked file; only the newest CHATLOG_BACKUP_KEEP are kept."""
    db = tmp_path / "chatlog.sqlite3"
    _fill(db, 50)
    backups = tmp_path / "backups"
    start = datetime(2026, 3, 1, tzinfo=UTC)
    results = [backup_database(db, backups, keep=3, now=start + timedelta(days=i)) for i in range(5)]
    assert list_backups(backups) == [r.path for r in results[-3:]]
    assert results[-1].pruned == [results[1].path]
    newest = results[-1].path
    assert database_problems(newest) == []
    assert _sessions(newest) == _sessions(db)
    assert not Path(f"{newest}-wal").exists()
    age = newest_backup_age(backups, now=start + timedelta(days=4, hours=2))
    assert age == timedelta(hours=2)


def test_restore_round_trip_saves_the_replaced_database(tmp_path: Path) -> None:
    """Restoring brings back the backed-up rows and keeps the replaced database aside."""
    db = tmp_path / "chatlog.sqlite3"
    _fill(db, 20)
    backup = backup_database(db, tmp_path / "backups", keep=2).path
    conn = connect_writer_sync(db)
    conn.execute("DELETE FROM chat_sessions WHERE session_id > 's-00004'")
    conn.close()
    result = restore_database(db, backup, tmp_path / "backups")
    assert len(_sessions(db)) == 20
    assert result.previous is not None and len(_sessions(result.previous)) == 5
    assert database_problems(db) == []
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()


def test_restore_refuses_what_is_not_a_chatlog_database(tmp_path: Path) -> None:
    """A file that is not a sound chatlog database is refused and the database is untouched."""
    db = tmp_path / "chatlog.sqlite3"
    _fill(db, 3)
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"not a database at all" * 100)
    other = tmp_path / "other.sqlite3"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    for bad in (junk, other, tmp_path / "missing.sqlite3", db):
        with pytest.raises(BackupError):
            restore_database(db, bad, tmp_path / "backups")
    assert len(_sessions(db)) == 3


def test_cli_backup_while_the_ingestor_runs_and_restore_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`chatlog backup` works under a held writer lock; `chatlog restore` needs the lock free."""
    settings = Settings.for_data_dir(tmp_path / "d", backup_keep=2)
    monkeypatch.setenv("CHATLOG_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("CHATLOG_BACKUP_KEEP", "2")
    layout = StorageLayout.from_settings(settings)
    assert chatlog(["backup"]) == 0  # no database yet: created, then backed up
    _fill(settings.db_path, 7)
    with writer_lock(layout):
        assert chatlog(["backup"]) == 0
        path = Path(capsys.readouterr().out.strip().splitlines()[-1])
        assert chatlog(["restore", str(path)]) == 1
        assert "stop the ingestor first" in capsys.readouterr().err
    assert len(_sessions(path)) == 7
    conn = connect_writer_sync(settings.db_path)
    conn.execute("DELETE FROM chat_sessions")
    conn.close()
    assert chatlog(["restore", str(path)]) == 0
    assert len(_sessions(settings.db_path)) == 7
    assert chatlog(["restore", str(tmp_path / "nope.sqlite3")]) == 1
    assert "does not exist" in capsys.readouterr().err


async def test_backup_of_a_live_ingestor_database(client: TestClient[Any, Any], config: Settings) -> None:
    """A backup taken while the ingestor writes holds the sessions it had indexed."""
    rng = random.Random(11)
    events = [make_event(rng, session_id=f"live-{i}") for i in range(30)]
    assert (await client.post("/v1/logs", json=events)).status == 202
    for _ in range(100):
        if len(_sessions(config.db_path)) == 30:
            break
        await asyncio.sleep(0.02)
    result = backup_database(config.db_path, StorageLayout.from_settings(config).backups_dir, keep=3)
    assert _sessions(result.path) == sorted(f"live-{i}" for i in range(30))


def test_checkpoint_truncates_the_wal_once_readers_let_go(tmp_path: Path) -> None:
    """PASSIVE checkpoints never wait; over the threshold a TRUNCATE empties the WAL."""
    db = tmp_path / "chatlog.sqlite3"
    assert checkpoint_wal(db) is None
    writer = connect_writer_sync(db)
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    reader = sqlite3.connect(db, isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM chat_sessions").fetchone()  # holds a snapshot
        writer.executemany(
            "INSERT INTO chat_sessions VALUES (?, 'c', 'x' || ?, NULL, 't', 't', 1, 'd')",
            [(f"s{i}", "y" * 200) for i in range(2000)],
        )
        passive = checkpoint_wal(db, truncate_over=1 << 40)
        assert passive is not None and passive.mode == "PASSIVE" and passive.wal_bytes_after > 0
        reader.execute("COMMIT")
        result = checkpoint_wal(db, truncate_over=0, wait_ms=100)
        assert result is not None and result.mode == "TRUNCATE" and not result.busy
        assert result.wal_bytes_after == 0 and "TRUNCATE checkpoint" in result.account()
    finally:
        reader.close()
        writer.close()
