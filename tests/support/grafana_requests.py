"""Request bodies shaped as Grafana's simpod-json-datasource sends them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

NOW = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)


def data_query_request(targets: list[dict[str, Any]], hours: int = 6, interval_ms: int = 60_000,
                       **extra: Any) -> dict[str, Any]:
    """A whole DataQueryRequest, as Grafana 10/11 sends it for a panel."""
    start = NOW - timedelta(hours=hours)
    return {
        "app": "dashboard", "requestId": "Q101", "timezone": "browser", "panelId": 2,
        "dashboardUID": "chatlog", "range": {
            "from": start.isoformat().replace("+00:00", "Z"),
            "to": (NOW + timedelta(minutes=20)).isoformat().replace("+00:00", "Z"),
            "raw": {"from": f"now-{hours}h", "to": "now"},
        },
        "timeInfo": "", "interval": "1m", "intervalMs": interval_ms, "maxDataPoints": 1200,
        "targets": targets, "scopedVars": {"__interval": {"text": "1m", "value": "1m"}},
        "startTime": 1732400000000, "rangeRaw": {"from": f"now-{hours}h", "to": "now"},
        "adhocFilters": [], **extra,
    }


def target(name: str, payload: Any = None, ref: str = "A") -> dict[str, Any]:
    """One query target as the plugin's code editor stores it."""
    return {"refId": ref, "datasource": {"type": "simpod-json-datasource", "uid": "chatlog"},
            "editorMode": "code", "target": name, "payload": payload if payload is not None else {}}
