"""``chatlog erase-user``: remove one user's events and conversations everywhere."""

from __future__ import annotations

import argparse
import contextlib

from chatlog.cli import CommandError
from ingestor.lifecycle.erasure import erase_user
from shared.db import connect_writer_sync
from shared.layout import StorageLayout
from shared.locking import DataDirLocked, writer_lock
from shared.privacy import user_hasher
from shared.settings import Settings


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """``--user-id`` (hashed here, never stored) or ``--user-hash``."""
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--user-id", help="the raw user id the chat backend sent")
    who.add_argument("--user-hash", help="the stored keyed hash of the user id")


def main(settings: Settings, args: argparse.Namespace) -> int:
    """Erase, report what was removed, exit 0."""
    layout = StorageLayout.from_settings(settings)
    user_hash = args.user_hash or user_hasher(settings).hash(args.user_id)
    try:
        with writer_lock(layout), contextlib.closing(connect_writer_sync(settings.db_path)) as conn:
            report = erase_user(layout, conn, user_hash, settings.zstd_level)
    except DataDirLocked as exc:
        raise CommandError(f"{exc}; stop the ingestor, erase, and start it again") from None
    print(report.summary())
    return 0
