"""Pseudonymous user ids: the keyed hash that replaces a raw user id before storage."""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from shared.settings import Settings


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


def load_or_create_key(settings: Settings) -> bytes:
    """The configured key, else the one kept in the data dir, created (0600) on first start."""
    if settings.user_hash_secret:
        return settings.user_hash_secret.encode("utf-8")
    path = settings.data_dir / ".user_hash_secret"
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
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
