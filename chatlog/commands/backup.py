"""``chatlog backup`` (online, works while the ingestor runs) and ``chatlog restore FILE``."""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

from chatlog.cli import CommandError
from chatlog.commands.lifecycle import exclusive_data_dir
from ingestor.lifecycle.backup import BackupError, backup_database, restore_database
from shared.layout import StorageLayout
from shared.settings import Settings


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """``restore`` takes the backup file; ``backup`` takes nothing."""
    if name == "restore":
        parser.add_argument("file", type=Path, help="a backup file (e.g. from $CHATLOG_DATA_DIR/backups/)")


def main(settings: Settings, args: argparse.Namespace) -> int:
    """Take a backup now, or restore one while the ingestor is stopped."""
    layout = StorageLayout.from_settings(settings)
    try:
        if args.command == "backup":
            result = backup_database(settings.db_path, layout.backups_dir, settings.backup_keep)
            print(result.account())
            print(result.path)
            return 0
        with exclusive_data_dir(layout, "it writes to the database being replaced"):
            restored = restore_database(settings.db_path, args.file, layout.backups_dir)
    except (BackupError, sqlite3.Error, OSError) as exc:
        raise CommandError(str(exc)) from None
    saved = f"; the replaced database was saved as {restored.previous}" if restored.previous else ""
    print(f"restored {settings.db_path} from {restored.source}{saved}")
    print("start the ingestor: it re-applies the day-file lines the restored database had not seen")
    return 0
