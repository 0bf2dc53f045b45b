"""The alert rules: what a window's measures and their baseline say, one finding per rule.

Pure functions over counts, so every threshold is tested without a clock. A rule's
finding says whether it is *met* (fire), *clear* (far enough below its threshold that
a firing alert may count towards resolving: under RESOLVE_MARGIN of it, or too few
samples to judge) or neither (a firing alert stays firing and its count restarts):
the gap between the two is the hysteresis that keeps an alert from flapping.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.settings import Settings

RULES = ("error_rate", "latency_p95", "low_score_rate", "volume_drop", "storage_unavailable")
# A firing alert counts an evaluation towards resolving only this far on the good side
# of its threshold (a rate at 80% of it; a volume at 125% of it).
RESOLVE_MARGIN = 0.8


@dataclass(frozen=True, slots=True)
class Measures:
    """Sums of ``alert_minutes`` over a range of minutes of one scope."""

    queries: int = 0
    answers: int = 0
    errors: int = 0
    scored: int = 0
    low_scores: int = 0
    latency_count: int = 0
    p95_ms: float | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule's verdict on one scope now, with its evidence."""

    rule: str
    met: bool
    clear: bool
    value: float | None
    threshold: float | None
    baseline: float | None


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _above(rule: str, value: float, threshold: float, baseline: float | None, samples: bool) -> Finding:
    if not samples:
        return Finding(rule, False, True, value, threshold, baseline)
    return Finding(rule, value >= threshold, value < threshold * RESOLVE_MARGIN, value, threshold, baseline)


def evaluate_scope(settings: Settings, window: Measures, baseline: Measures, volume_baseline: float | None) -> list[
    Finding
]:
    """The four traffic rules for one scope: ``window`` against ``baseline`` (the previous 7 days).

    ``volume_baseline`` is the mean number of queries in the same window of each of
    the previous days that have data (None: no such day).
    """
    s = settings
    findings = []
    error_base = _rate(baseline.errors, baseline.answers)
    findings.append(_above(
        "error_rate", _rate(window.errors, window.answers), max(s.alert_error_rate, s.alert_error_factor * error_base),
        error_base, window.answers >= s.alert_min_answers,
    ))
    if window.p95_ms is not None and baseline.p95_ms is not None:
        findings.append(_above(
            "latency_p95", window.p95_ms, max(s.alert_latency_factor * baseline.p95_ms, float(s.alert_latency_min_ms)),
            baseline.p95_ms, window.latency_count >= s.alert_min_answers,
        ))
    else:
        findings.append(Finding("latency_p95", False, True, window.p95_ms, None, baseline.p95_ms))
    low_base = _rate(baseline.low_scores, baseline.scored)
    findings.append(_above(
        "low_score_rate", _rate(window.low_scores, window.scored),
        max(s.alert_low_score_rate, s.alert_low_score_factor * low_base), low_base,
        window.scored >= s.alert_min_answers,
    ))
    if volume_baseline is None or volume_baseline < s.alert_volume_min_baseline:
        findings.append(Finding("volume_drop", False, True, float(window.queries), None, volume_baseline))
    else:
        threshold = s.alert_volume_ratio * volume_baseline
        value = float(window.queries)
        findings.append(Finding("volume_drop", value < threshold, value >= threshold / RESOLVE_MARGIN, value,
                                threshold, volume_baseline))
    return findings


def storage_finding(settings: Settings, down_since: float | None, now: float) -> Finding:
    """``storage_unavailable``: the ingestor has not been able to store for ``alert_storage_seconds``."""
    threshold = float(settings.alert_storage_seconds)
    if down_since is None:
        return Finding("storage_unavailable", False, True, 0.0, threshold, None)
    down = max(0.0, now - down_since)
    return Finding("storage_unavailable", down >= threshold, False, down, threshold, None)
