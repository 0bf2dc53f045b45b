"""What the derived-state process reports to the ingestor, one JSON line per commit."""

from __future__ import annotations

import msgspec


class DerivedStatus(msgspec.Struct, frozen=True):
    """What the derived state reports to the ingestor after each commit."""

    lag_bytes: int
    applied_lines: int
    open_conversations: int
    saved: int
    dropped: int
