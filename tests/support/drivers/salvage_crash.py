"""Salvage one damaged day file and SIGKILL this process at a named step (a crash test driver).

Usage: ``python -m tests.support.drivers.salvage_crash DATA_DIR DAY_FILE STEP`` where STEP is one of
``ingestor.lifecycle.salvage.STEPS``.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from ingestor.lifecycle.salvage import salvage_damaged
from shared.layout import StorageLayout, Stream
from shared.settings import Settings


def main(argv: list[str]) -> int:
    """Run the salvage, dying abruptly at the requested step."""
    data_dir, day_file, crash_at = argv

    def step(name: str) -> None:
        if name == crash_at:
            os.kill(os.getpid(), signal.SIGKILL)

    layout = StorageLayout.from_settings(Settings.for_data_dir(data_dir))
    salvage_damaged(layout, Stream.LOGS, Path(day_file), steps=step)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
