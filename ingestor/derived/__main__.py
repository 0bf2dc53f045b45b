"""The derived-state process: ``python -m ingestor.derived``, started by the ingestor only.

Protocol on its pipes: stdin carries the settings (a length-prefixed pickle, from the
parent that built them) and then one line per write, ``YYYY-MM-DD[,...]``, naming
the days that grew, or ``storage <since>|-`` when storing starts or stops failing (the
``storage_unavailable`` alert); stdout carries one JSON ``DerivedStatus`` line after each commit
and at least every second (a heartbeat, so a stall shows).
End of stdin (the ingestor stopping, or dying) means: apply everything, close every
open conversation, exit 0. Signals are the ingestor's to handle: it stops this
process in order through stdin.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import sys
from datetime import date

import msgspec

from ingestor.derived.state import DerivedState
from ingestor.derived.status import DerivedStatus
from shared.layout import StorageLayout
from shared.locking import derived_lock
from shared.logs import configure_logging
from shared.settings import Settings

log = logging.getLogger("chatlog.ingestor.derived")

# Background work: under a full CPU the ingest path (acks) goes first; the ingestor
# bounds how far behind this process may fall (DERIVED_LAG_LIMIT_BYTES).
NICENESS = 10
STORAGE_NOTICE = b"storage "


def read_settings(fd: int) -> Settings:
    """The length-prefixed pickled settings at the start of ``fd``."""
    size = int.from_bytes(_read_exactly(fd, 8), "big")
    settings = pickle.loads(_read_exactly(fd, size))
    if not isinstance(settings, Settings):
        raise TypeError("expected Settings on stdin")
    return settings


def _read_exactly(fd: int, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            raise EOFError("stdin closed before the settings arrived")
        data += chunk
    return data


def _report(status: DerivedStatus) -> None:
    with contextlib.suppress(OSError):  # the ingestor is gone: nobody to tell
        os.write(1, msgspec.json.encode(status) + b"\n")


async def serve(settings: Settings) -> None:
    """Run the derived state until stdin ends.

    Stdin is read while the state starts: a start waits for an unreachable database
    (``DerivedState.start``), and the ingestor may stop meanwhile.
    """
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    state = DerivedState(settings, on_status=_report)
    starting = asyncio.create_task(state.start(), name="derived-start")
    try:
        while line := await _next_line(reader, starting):
            if line.startswith(STORAGE_NOTICE):
                # "storage <unix time it failed since>" or "storage -" (storing works again).
                since = line[len(STORAGE_NOTICE):].strip()
                with contextlib.suppress(ValueError):
                    state.storage_down_since = None if since == b"-" else float(since)
                continue
            with contextlib.suppress(ValueError):
                state.wake(date.fromisoformat(d) for d in line.decode().strip().split(",") if d)
    finally:
        if not starting.done() and state.waiting_for_database:
            # Nothing was read or applied yet, nothing to finish: the next start applies it all.
            starting.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):  # a failed start was raised already
            await starting
        await state.stop()
        state.report()


async def _next_line(reader: asyncio.StreamReader, starting: asyncio.Task[None]) -> bytes:
    """The next line of stdin (b"" at its end); a failed start is raised as soon as it fails."""
    reading = asyncio.ensure_future(reader.readline())
    while not starting.done():
        await asyncio.wait({reading, starting}, return_when=asyncio.FIRST_COMPLETED)
        if reading.done():
            break
    if starting.done() and not starting.cancelled() and starting.exception() is not None:
        reading.cancel()
        raise starting.exception()  # type: ignore[misc]
    return await reading


def main() -> int:
    """Entry point of the derived-state process."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    settings = read_settings(0)
    configure_logging(settings.log_level)
    # A previous instance may still be finishing after its ingestor died: wait for it.
    with derived_lock(StorageLayout.from_settings(settings)):
        asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
