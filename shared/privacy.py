"""Pseudonymous user ids: the keyed hash that replaces a raw user id before storage.

Every stored ``user_hash`` is only as good as the key it was made with: a store read
with another key finds nobody (an erasure removes nothing, lookups come back empty) and
a store written with two keys splits every user in two. So the database keeps a
fingerprint of its key (an HMAC of a fixed label under the key, never the key itself),
recorded by the first start of the ingestor, and everything that hashes user ids
checks its key against it first.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import secrets
import sqlite3
from pathlib import Path

from shared.layout import make_private_dirs
from shared.settings import Settings

KEY_FINGERPRINT_META = "user_hash_key_fingerprint"
_FINGERPRINT_LABEL = b"chatlog user-hash key fingerprint v1"


class UserHashKeyError(RuntimeError):
    """The user-hash key is missing, or is not the one the store was written with."""


class UserHasher:
    """HMAC-SHA256 of user ids under a secret key; the raw id is never kept."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the user-hash key must be at least 16 bytes")
        self._key = key
        # The same users post over and over: remember recent hashes (in memory only).
        self.hash = functools.lru_cache(maxsize=65536)(self._hash)  # type: ignore[method-assign]

    def hash(self, user_id: str) -> str:
        """The hex keyed hash of one user id."""
        return self._hash(user_id)

    def _hash(self, user_id: str) -> str:
        return hmac.new(self._key, user_id.encode("utf-8"), hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return "UserHasher(<key hidden>)"


def load_key(settings: Settings) -> bytes | None:
    """The configured key, else the one kept in the data dir, else None (nothing is created)."""
    if settings.user_hash_secret:
        return settings.user_hash_secret.encode("utf-8")
    try:
        return _read_key(settings.data_dir / ".user_hash_secret")
    except FileNotFoundError:
        return None


def load_or_create_key(settings: Settings) -> bytes:
    """The configured key, else the one kept in the data dir, created (0600) on first start.

    Only the ingestor's start may create the key; everything else uses ``load_key``.
    """
    key = load_key(settings)
    if key is not None:
        return key
    path = settings.data_dir / ".user_hash_secret"
    make_private_dirs(path.parent)
    key = secrets.token_hex(32).encode("ascii")
    tmp = path.with_name(f".user_hash_secret.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        # link() fails if another process created the key first: theirs wins, never two keys.
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    key = path.read_bytes().strip()
    if len(key) < 16:
        raise ValueError(f"{path} holds a key shorter than 16 bytes")
    return key


def user_hasher(settings: Settings) -> UserHasher:
    """The hasher of the configured data directory."""
    return UserHasher(load_or_create_key(settings))


def key_fingerprint(key: bytes) -> str:
    """What identifies a key without revealing it: HMAC-SHA256 of a fixed label under the key."""
    return hmac.new(key, _FINGERPRINT_LABEL, hashlib.sha256).hexdigest()


def stored_fingerprint(conn: sqlite3.Connection) -> str | None:
    """The fingerprint of the key the store was written with, if one was recorded."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (KEY_FINGERPRINT_META,)).fetchone()
    return str(row[0]) if row else None


_MISMATCH = (
    "the user-hash key is not the one this data directory was written with "
    "(its fingerprint differs from the one recorded in the database): every stored "
    "user_hash was made with the other key. Set CHATLOG_USER_HASH_SECRET to the original "
    "key (or unset it if the store used the generated {secret_file})"
)


def check_store_key(conn: sqlite3.Connection, key: bytes, *, record: bool, secret_file: Path) -> None:
    """Raise UserHashKeyError unless ``key`` is the store's key.

    With ``record`` (the ingestor's start, holding the writer lock) a store without a
    fingerprint gets this key's; without it (the operator CLI) a store that has none is
    left alone and not trusted to match either when it already holds data.
    """
    expected = stored_fingerprint(conn)
    given = key_fingerprint(key)
    if expected is not None:
        if not hmac.compare_digest(expected, given):
            raise UserHashKeyError(_MISMATCH.format(secret_file=secret_file))
        return
    if record:
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
            (KEY_FINGERPRINT_META, given),
        )
        if stored_fingerprint(conn) != given:  # pragma: no cover - two first starts racing
            raise UserHashKeyError(_MISMATCH.format(secret_file=secret_file))
        return
    (has_data,) = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM ingest_offsets) OR EXISTS (SELECT 1 FROM conversations)"
    ).fetchone()
    if has_data:
        raise UserHashKeyError(
            "this data directory has no recorded user-hash key fingerprint, so the key cannot "
            "be checked: start the ingestor once (it records the fingerprint of the key it uses)"
        )


def store_key_for_start(settings: Settings, conn: sqlite3.Connection) -> bytes:
    """The ingestor's key: loaded or created, checked against (or recorded in) the store."""
    key = load_or_create_key(settings)
    check_store_key(conn, key, record=True, secret_file=settings.data_dir / ".user_hash_secret")
    return key


def store_key_for_operator(settings: Settings, conn: sqlite3.Connection) -> bytes:
    """The operator CLI's key: never created, and refused unless it is the store's."""
    key = load_key(settings)
    secret_file = settings.data_dir / ".user_hash_secret"
    if key is None:
        raise UserHashKeyError(
            f"no user-hash key: set CHATLOG_USER_HASH_SECRET to the ingestor's key "
            f"(neither it nor {secret_file} is there)"
        )
    check_store_key(conn, key, record=False, secret_file=secret_file)
    return key


def tokens_equal(given: str, expected: str) -> bool:
    """Constant-time comparison of a presented secret with the configured one."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    try:
        # Header bytes that are not UTF-8 arrive as surrogates: no configured token has them.
        token.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return token
