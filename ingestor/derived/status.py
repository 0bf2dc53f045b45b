"""What the derived-state process reports to the ingestor, one JSON line per commit."""

from __future__ import annotations

import msgspec


def _no_alerts() -> dict[str, int]:
    return {}


def _no_totals() -> dict[str, list[int]]:
    return {}


class DerivedStatus(msgspec.Struct, frozen=True):
    """What the derived state reports to the ingestor after each commit."""

    lag_bytes: int
    applied_lines: int
    open_conversations: int
    saved: int
    dropped: int
    quarantined: int = 0  # lines held in quarantined_lines
    commit_failures: int = 0  # failed commits since the process started
    catching_up: bool = False  # still applying, at start, what the database had not seen
    alerts_firing: dict[str, int] = msgspec.field(default_factory=_no_alerts)  # firing alerts per rule
    alert_deliveries: int = 0  # notifications delivered since the process started
    alert_delivery_failures: int = 0  # failed webhook attempts since the process started
    collection_totals: dict[str, list[int]] = msgspec.field(default_factory=_no_totals)  # ingestor.alerts.totals
    # Seconds the derived state's database has not answered (0: it answers); ingest goes on meanwhile.
    database_down_seconds: float = 0.0
