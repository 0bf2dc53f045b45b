"""``chatlog erase-user``: remove one user's events and conversations everywhere.

With the ingestor stopped the CLI erases under the data directory's writer lock; with
it running the CLI asks it over its Unix socket (``ingestor.erase_endpoint``), so an
erasure request never needs the service stopped. Either way the user id is hashed
here with the store's key, which is checked against the fingerprint the database
keeps: a wrong or missing key is refused, never silently "removed 0", and no key is
ever created here.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from pathlib import Path

from chatlog.cli import CommandError
from chatlog.store import reading, writing
from chatlog.unix_http import UnixHTTPConnection
from ingestor.lifecycle.erasure import erase_user
from shared.layout import StorageLayout
from shared.locking import DataDirLocked, derived_lock, writer_lock
from shared.privacy import UserHasher, UserHashKeyError, store_key_for_operator
from shared.settings import Settings

# An erasure reads every day file: allow it far longer than an ordinary request.
ONLINE_TIMEOUT_SECONDS = 3600.0


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """``--user-id`` (hashed here, never stored) or ``--user-hash``."""
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--user-id", help="the raw user id the chat backend sent")
    who.add_argument("--user-hash", help="the stored keyed hash of the user id")


def main(settings: Settings, args: argparse.Namespace) -> int:
    """Erase, report what was removed, exit 0."""
    layout = StorageLayout.from_settings(settings)
    try:
        # The derived-state process of an ingestor that died may still be applying lines.
        with writer_lock(layout), derived_lock(layout), writing(settings) as conn:
            user_hash = _user_hash(settings, conn, args)
            report = erase_user(layout, conn, user_hash, settings.zstd_level, backup_keep=settings.backup_keep)
        print(report.summary())
        return 0
    except DataDirLocked:
        pass
    if args.user_hash:
        user_hash = str(args.user_hash).lower()
    else:
        with reading(settings) as conn:
            user_hash = _user_hash(settings, conn, args)
    print(_erase_online(settings.ingest_socket_path, user_hash))
    return 0


def _user_hash(settings: Settings, conn: sqlite3.Connection, args: argparse.Namespace) -> str:
    if args.user_hash:
        return str(args.user_hash).lower()
    try:
        return UserHasher(store_key_for_operator(settings, conn)).hash(args.user_id)
    except UserHashKeyError as exc:
        raise CommandError(str(exc)) from None


def _erase_online(socket_path: Path | None, user_hash: str) -> str:
    """Ask the running ingestor to erase; its one-line account."""
    if socket_path is None:
        raise CommandError(
            "the ingestor is running and CHATLOG_INGEST_SOCKET is off: enable its Unix socket "
            "for online erasure, or stop the ingestor, erase, and start it again"
        )
    conn = UnixHTTPConnection(socket_path, ONLINE_TIMEOUT_SECONDS)
    try:
        conn.request(
            "POST", "/v1/admin/erase-user", body=json.dumps({"user_hash": user_hash}),
            headers={"Content-Type": "application/json"},
        )
        response = conn.getresponse()
        body = response.read()
    except OSError as exc:
        raise CommandError(
            f"the data directory is locked by a running ingestor, but its socket {socket_path} "
            f"does not answer ({exc}); stop the ingestor, erase, and start it again"
        ) from None
    finally:
        conn.close()
    try:
        answer = json.loads(body)
    except ValueError:
        answer = {}
    if response.status != 200:
        message = answer.get("message") if isinstance(answer, dict) else None
        raise CommandError(f"the ingestor refused the erasure ({response.status}): {message or body[:200]!r}")
    return str(answer.get("summary", "erased"))
