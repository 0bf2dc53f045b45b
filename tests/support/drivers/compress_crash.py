"""Compress one day file and SIGKILL this process at a named step (a crash test driver).

Usage: ``python -m tests.support.drivers.compress_crash DATA_DIR YYYY-MM-DD STEP`` where STEP is one
of ``ingestor.lifecycle.compression.STEPS`` (or ``none`` to finish normally).
"""

from __future__ import annotations

import os
import signal
import sys
from datetime import date

from ingestor.lifecycle.compression import compress_day
from shared.layout import StorageLayout, Stream
from shared.settings import Settings

FRAME_BYTES = 16 << 10


def main(argv: list[str]) -> int:
    """Run the compression, dying abruptly at the requested step."""
    data_dir, day_text, crash_at = argv

    def step(name: str) -> None:
        if name == crash_at:
            os.kill(os.getpid(), signal.SIGKILL)

    layout = StorageLayout.from_settings(Settings.for_data_dir(data_dir))
    compress_day(
        layout, Stream.LOGS, date.fromisoformat(day_text), level=3, frame_bytes=FRAME_BYTES, steps=step
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
