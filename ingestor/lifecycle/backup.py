"""Online SQLite backups (the sqlite3 backup API) and restoring one.

A backup is taken in one step from a read-only connection: it copies one consistent
snapshot while the ingestor keeps writing (WAL), where a stepwise copy would restart on
every write and might never finish under load. It is written to a ``.tmp`` name, switched
to ``journal_mode=DELETE`` (one self-contained file), checked, fsynced and renamed, so
``backups/`` only ever holds complete backups.

The day files are the source of truth: after a restore the ingestor's start-up catch-up
re-applies every line the restored database had not seen, which brings statistics up to
date (point-in-time recovery of the database, from the files).
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ingestor.dayfiles import fsync_dir
from shared.db import SCHEMA_VERSION, connect_writer_sync, create_private_file, migrate, reader_uri

PREFIX = "chatlog-"
SUFFIX = ".sqlite3"
_BACKUP_NAME = re.compile(r"^chatlog-(\d{8}T\d{6}\.\d{6}Z)\.sqlite3$")
_STAMP = "%Y%m%dT%H%M%S.%fZ"
REQUIRED_TABLES = ("meta", "chat_sessions", "ingest_offsets")


class BackupError(RuntimeError):
    """A backup could not be taken, or a file is not a usable chatlog database."""


@dataclass(frozen=True)
class BackupResult:
    """One backup written and the old ones pruned."""

    path: Path
    bytes: int
    pruned: list[Path] = field(default_factory=list)
    seconds: float = 0.0

    def account(self) -> str:
        """The one-line account of the backup."""
        return f"backed up the database to {self.path.name} ({self.bytes} bytes), pruned {len(self.pruned)}"


@dataclass(frozen=True)
class RestoreResult:
    """A database restored, and where the replaced one was saved."""

    source: Path
    bytes: int
    previous: Path | None


def list_backups(backups_dir: Path) -> list[Path]:
    """Every complete rotating backup, oldest first (names sort by time)."""
    try:
        names = os.listdir(backups_dir)
    except FileNotFoundError:
        return []
    return [backups_dir / name for name in sorted(names) if _BACKUP_NAME.match(name)]


def backup_time(path: Path) -> datetime | None:
    """When a rotating backup was taken, from its name."""
    match = _BACKUP_NAME.match(path.name)
    return datetime.strptime(match.group(1), _STAMP).replace(tzinfo=UTC) if match else None


def newest_backup_age(backups_dir: Path, now: datetime | None = None) -> timedelta | None:
    """How old the newest rotating backup is, or None when there is none."""
    backups = list_backups(backups_dir)
    taken = backup_time(backups[-1]) if backups else None
    if taken is None:
        return None
    return (now or datetime.now(UTC)) - taken


def database_problems(path: Path) -> list[str]:
    """Why a SQLite file is not a usable chatlog database (empty when it is)."""
    try:
        conn = sqlite3.connect(reader_uri(path), uri=True)
    except sqlite3.Error as exc:
        return [f"cannot open: {exc}"]
    try:
        rows = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        if rows != ["ok"]:
            return [f"integrity_check: {row}" for row in rows[:20]]
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        if not 1 <= version <= SCHEMA_VERSION:
            return [f"schema version {version} is not one this chatlog knows (1-{SCHEMA_VERSION})"]
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = [t for t in REQUIRED_TABLES if t not in tables]
        return [f"missing tables: {', '.join(missing)}"] if missing else []
    except sqlite3.Error as exc:
        return [f"unreadable: {exc}"]
    finally:
        conn.close()


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# A backup is a copy of the whole history: readable by its owner only.
BACKUP_FILE_MODE = 0o600


def _copy_database(source_uri: str, destination: Path) -> None:
    """One-step online backup of ``source_uri`` into a new self-contained file."""
    create_private_file(destination, BACKUP_FILE_MODE)
    src = sqlite3.connect(source_uri, uri=True)
    try:
        dst = sqlite3.connect(destination)
        try:
            src.backup(dst)
            # The copy inherits WAL mode; a backup must be one file that stands alone.
            dst.execute("PRAGMA journal_mode = DELETE")
        finally:
            dst.close()
    finally:
        src.close()


def backup_database(
    db_path: Path, backups_dir: Path, keep: int, *, now: datetime | None = None
) -> BackupResult:
    """Back the database up into ``backups_dir`` and keep only the newest ``keep`` backups.

    A database that does not exist yet is created first (an empty, migrated one).
    """
    started = time.perf_counter()
    if not db_path.exists():
        connect_writer_sync(db_path).close()
    backups_dir.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime(_STAMP)
    final = backups_dir / f"{PREFIX}{stamp}{SUFFIX}"
    tmp = final.with_name(final.name + ".tmp")
    try:
        _copy_database(reader_uri(db_path), tmp)
        problems = database_problems(tmp)
        if problems:
            raise BackupError(f"the backup copy failed its check: {'; '.join(problems)}")
        _fsync_file(tmp)
        os.rename(tmp, final)
        fsync_dir(backups_dir)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    backups = list_backups(backups_dir)
    pruned = backups[: max(0, len(backups) - keep)]
    for old in pruned:
        old.unlink(missing_ok=True)
    if pruned:
        fsync_dir(backups_dir)
    return BackupResult(final, final.stat().st_size, pruned, time.perf_counter() - started)


def restore_database(db_path: Path, source: Path, backups_dir: Path) -> RestoreResult:
    """Replace the database's content with a backup's; the caller holds the writer lock.

    The current database, if any, is first saved as ``backups/pre-restore-*.sqlite3``. The
    copy goes through the backup API into the live file, one SQLite transaction, so a crash
    leaves either the old or the restored content. An older schema is then migrated.
    """
    if not source.is_file():
        raise BackupError(f"{source} does not exist")
    if db_path.exists() and source.resolve() == db_path.resolve():
        raise BackupError(f"{source} is the database itself")
    problems = database_problems(source)
    if problems:
        raise BackupError(f"{source} is not a usable chatlog database: {'; '.join(problems)}")
    previous = None
    if db_path.exists():
        backups_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime(_STAMP)
        previous = backups_dir / f"pre-restore-{stamp}{SUFFIX}"
        _copy_database(reader_uri(db_path), previous)
        _fsync_file(previous)
        fsync_dir(backups_dir)
    dst = connect_writer_sync(db_path)
    try:
        src = sqlite3.connect(reader_uri(source), uri=True)
        try:
            src.backup(dst)
        finally:
            src.close()
        dst.execute("PRAGMA journal_mode = WAL")
        migrate(dst)
        dst.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        dst.close()
    return RestoreResult(source, source.stat().st_size, previous)
