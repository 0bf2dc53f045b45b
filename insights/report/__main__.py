"""``python -m insights.report``: write the due periodic report, as the ingestor's scheduled job asks.

The ingestor runs this as a child process so that the FAQ's question grouping (Kiwi's
model, tens of MB) is loaded for the report only and freed with the process, never
kept in the ingestor. stdin carries the settings (a length-prefixed pickle, from the
parent that built them); stdout gets one line saying what was done; failure exits 1.
"""

from __future__ import annotations

import os
import pickle
import sys

from insights.report.schedule import write_due
from shared.settings import Settings

# Background work: the ingest path goes first.
NICENESS = 10


def main() -> int:
    """Read the settings, write the due report, print what was done."""
    size = int.from_bytes(sys.stdin.buffer.read(8), "big")
    settings = pickle.loads(sys.stdin.buffer.read(size))
    if not isinstance(settings, Settings):
        print("expected pickled Settings on stdin", file=sys.stderr)
        return 2
    os.nice(NICENESS)
    print(write_due(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
