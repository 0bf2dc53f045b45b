"""How the report writes its figures, the same in Markdown and HTML."""

from __future__ import annotations

from insights.report.model import Report


def ms(value: float | None) -> str:
    """A duration in milliseconds, or a dash when there is none."""
    return "-" if value is None else f"{value:,.0f} ms"


def pct(rate: float) -> str:
    """A rate as a percentage with one decimal."""
    return f"{rate:.1%}"


def score(value: float | None) -> str:
    """A retrieval score, or a dash."""
    return "-" if value is None else f"{value:.2f}"


def scope(report: Report) -> str:
    """What the report covers: one collection or all of them."""
    return report.collection_name or "all collections"


def title(report: Report) -> str:
    """The report's title line."""
    return f"chatlog report: {scope(report)}, {report.date_from} to {report.date_to}"


def usage_line(report: Report) -> str:
    """The period's usage in one sentence."""
    s = report.summary
    return (
        f"{s.total_queries:,} questions in {s.unique_sessions:,} sessions, {s.total_tokens:,} tokens; "
        f"response time p50 {ms(s.p50_response_time_ms)}, p95 {ms(s.p95_response_time_ms)}; "
        f"errors {pct(s.error_rate)}, regenerations {pct(s.regeneration_rate)}; "
        f"feedback {s.positive_feedback:,} good, {s.negative_feedback:,} bad."
    )


def quality_line(report: Report) -> str:
    """The period's retrieval quality in one sentence."""
    q = report.quality
    p = q.best_score_percentiles
    return (
        f"{q.answers:,} answers, {q.answers_with_retrieval:,} with retrieval: "
        f"{pct(q.low_score_rate)} with a best score under {q.low_score_threshold}, "
        f"{pct(q.no_result_rate)} without results; best score p10 {score(p.get('p10'))}, "
        f"p50 {score(p.get('p50'))}, p90 {score(p.get('p90'))}."
    )
