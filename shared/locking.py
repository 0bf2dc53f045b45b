"""The data directory's writer lock: one process at a time writes day files and SQLite."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator

from shared.layout import StorageLayout, make_private_dirs


class DataDirLocked(RuntimeError):
    """Another process already writes to this data directory."""


@contextlib.contextmanager
def writer_lock(layout: StorageLayout) -> Iterator[None]:
    """Hold the data directory's writer lock, or raise DataDirLocked at once."""
    make_private_dirs(layout.root)
    fd = os.open(layout.writer_lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataDirLocked(
                f"{layout.root} is in use by another chatlog writer "
                "(a running ingestor or operator command)"
            ) from None
        yield
    finally:
        os.close(fd)
