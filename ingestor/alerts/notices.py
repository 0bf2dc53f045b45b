"""What a notification says: a Slack-compatible ``text`` (Korean and English) and the ``alert`` object."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from shared.settings import Settings

_NAMES = {
    "error_rate": ("오류율 급증", "error rate"),
    "latency_p95": ("응답 지연 (p95)", "p95 latency"),
    "low_score_rate": ("낮은 검색 점수 비율", "low retrieval score rate"),
    "volume_drop": ("질문 수 급감", "query volume drop"),
    "storage_unavailable": ("저장 불가", "storage unavailable"),
}


def shown(rule: str, value: float | None) -> str:
    """A rule's number as people read it: a rate in percent, a latency in ms, a volume in queries."""
    if value is None:
        return "-"
    if rule in ("error_rate", "low_score_rate"):
        return f"{value * 100:.1f}%"
    if rule == "latency_p95":
        return f"{value:,.0f} ms"
    if rule == "storage_unavailable":
        return f"{value:,.0f} s"
    return f"{value:,.1f}"


def describe(rule: str, collection: str | None, value: float | None, threshold: float | None,
             baseline: float | None, window_minutes: int) -> str:
    """The alert's one-line message (English), kept with it in the database."""
    where = f"collection {collection}" if collection else "all collections"
    name = _NAMES[rule][1]
    if rule == "storage_unavailable":
        return f"{name}: the ingestor has not been able to store events for {shown(rule, value)}"
    return (f"{name} on {where}: {shown(rule, value)} over the last {window_minutes} min "
            f"(threshold {shown(rule, threshold)}, 7-day baseline {shown(rule, baseline)})")


def dashboard_link(settings: Settings, collection: str | None) -> str:
    """The dashboard view of the alert's collection."""
    base = settings.alert_dashboard_url or f"http://{settings.api_host}:{settings.api_port}/"
    return base + ("?" + urlencode({"collection_name": collection}) if collection else "")


def payload(settings: Settings, alert: dict[str, Any]) -> dict[str, Any]:
    """The webhook body for one alert in its current state."""
    rule, collection, state = alert["rule"], alert["collection_name"], alert["state"]
    ko, en = _NAMES[rule]
    link = dashboard_link(settings, collection)
    where_ko = f"컬렉션 {collection}" if collection else "전체 컬렉션"
    numbers = (f"{shown(rule, alert['value'])} (threshold/기준 {shown(rule, alert['threshold'])}, "
               f"baseline/평소 {shown(rule, alert['baseline'])})")
    if state == "firing":
        head = f":rotating_light: [FIRING] {ko} / {en} — {where_ko}: {numbers}"
    else:
        head = (f":white_check_mark: [RESOLVED] {ko} 해소 / {en} resolved — {where_ko} "
                f"(started {alert['started_at']}, resolved {alert['resolved_at']})")
    text = f"{head}\n{alert['message']}\n<{link}|대시보드 / dashboard>"
    return {"text": text, "alert": {**alert, "dashboard_url": link}}
