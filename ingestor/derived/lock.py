"""The derived-state process's own lock: one instance at a time follows a data directory."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator

from shared.layout import StorageLayout


@contextlib.contextmanager
def derived_lock(layout: StorageLayout) -> Iterator[None]:
    """Hold the lock, waiting for a previous instance that is still finishing."""
    fd = os.open(layout.root / ".derived.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
