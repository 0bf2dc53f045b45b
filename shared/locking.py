"""Every lock in chatlog, and who holds which.

Across processes (``flock`` on files in the data directory, released by the kernel
when the holder dies, so a crash never leaves one behind):

- **data-dir writer lock** (``writer_lock``, ``.writer.lock``): one process at a time
  writes day files and SQLite. The ingestor holds it for its whole life; operator
  commands that write (``compress``, ``retention``, ``erase-user``, ``restore``) take it
  or fail at once with ``DataDirLocked``; ``rebuild-stats`` takes it to catch up when it
  is free and otherwise rebuilds beside the running ingestor.
- **derived lock** (``derived_lock``, ``.derived.lock``): one derived-state process
  (``python -m ingestor.derived``) follows a data directory. It waits rather than fails,
  so the child of a restarted ingestor starts once its predecessor has finished.
- **day-file flock** (``ingestor.dayfiles.DayFileWriter``): each append (write, fsync,
  undo on error) holds an exclusive ``flock`` on the day file itself. It matters for the
  conversation files, which have two writers sharing it: the ingestor (conversations
  posted whole) and the derived-state process (conversations assembled from events).

Inside one process:

- **day-file writer lock** (``DayFileWriter.lock``, a ``threading.RLock``) in the ingestor:
  appends take it, and so do the lifecycle jobs that rewrite or delete a day file
  (compression, retention: ``ingestor.lifecycle.guard.day_closed``), so a day is never
  rewritten while events are appended to it. Run from the CLI, they hold the data-dir
  writer lock instead, as ``erase-user`` does.
- **writer connection lock** (an ``asyncio.Lock`` per SQLite writer connection): every
  transaction on that connection runs under it. In the derived-state process the line
  applier (``ingestor.derived.applier``) and the conversation store share one; the
  ingestor's own connection (conversations posted whole) has its own.
"""

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


@contextlib.contextmanager
def derived_lock(layout: StorageLayout) -> Iterator[None]:
    """Hold the derived-state process's lock, waiting for a previous instance that is still finishing."""
    fd = os.open(layout.derived_lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
