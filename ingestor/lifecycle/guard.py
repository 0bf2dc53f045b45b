"""The running ingestor's writer lock, taken around every change to a day file."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from ingestor.dayfiles import DayFileWriter, DayKey


@contextlib.contextmanager
def day_closed(files: DayFileWriter | None, key: DayKey) -> Iterator[None]:
    """Hold the writer's lock with the day's file closed, so no append races a rewrite.

    ``files`` is None when the CLI runs the lifecycle: it holds the data directory's writer
    lock, so no other process appends.
    """
    if files is None:
        yield
        return
    with files.lock:
        files.close_day(key)
        yield
