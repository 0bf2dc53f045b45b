"""The report as Markdown: readable in a terminal, pasteable into a wiki or a chat."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from insights.report import text
from insights.report.model import Report


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _table(header: Sequence[str], rows: Iterable[Sequence[object]], right: int = 0) -> list[str]:
    """A Markdown table; the last ``right`` columns are right-aligned."""
    align = ["---"] * (len(header) - right) + ["---:"] * right
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    out += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return [*out, ""]


def _section(title: str, lines: list[str], empty: str) -> list[str]:
    return [f"## {title}", "", *(lines or [empty, ""])]


def as_markdown(report: Report) -> str:
    """Every section of the report, in the order of the HTML report."""
    s, q = report.summary, report.quality
    out = [f"# {text.title(report)}", "", f"Generated {report.generated_at} (days in {report.timezone}).", ""]
    usage = [text.usage_line(report), ""]
    if report.collections:
        usage += _table(
            ["collection", "questions", "sessions", "p95", "errors", "regenerations"],
            [(c.collection_name, f"{c.total_queries:,}", f"{c.unique_sessions:,}", text.ms(c.p95_response_time_ms),
              text.pct(c.error_rate), text.pct(c.regeneration_rate))
             for c in sorted(report.collections, key=lambda c: -c.total_queries)],
            right=5,
        )
    if s.top_queries:
        usage += ["Most asked (same text):", ""]
        usage += _table(["question", "times"], [(t.query, f"{t.count:,}") for t in s.top_queries], right=1)
    usage += _table(
        ["day", "questions", "sessions", "p95", "errors", "regenerations"],
        [(p.date, f"{p.total_queries:,}", f"{p.unique_sessions:,}", text.ms(p.p95_response_time_ms),
          f"{p.error_count:,}", f"{p.regeneration_count:,}") for p in report.timeline],
        right=5,
    )
    out += _section("Usage", usage, "")
    quality = [text.quality_line(report), ""]
    if q.by_collection:
        quality += _table(
            ["collection", "answers", "low score", "no result", "p50 best score", "regenerated", "errors",
             "negative feedback"],
            [(c.collection_name, f"{c.answers:,}", text.pct(c.low_score_rate), text.pct(c.no_result_rate),
              text.score(c.p50_best_score), text.pct(c.regeneration_rate), text.pct(c.error_rate),
              text.pct(c.negative_feedback_rate)) for c in q.by_collection],
            right=7,
        )
    out += _section("Retrieval quality", quality, "")
    out += _section("FAQ", _table(
        ["question", "times", "share", "collections", "answer"],
        [(f.question, f"{f.count:,}", text.pct(f.share), ", ".join(f"{k} {v:,}" for k, v in f.collections.items()),
          (f.answer or "-")[:120]) for f in report.faq],
    ) if report.faq else [], "No question group was asked often enough in this period.")
    out += _section("Knowledge gaps", _table(
        ["question", "times", "mean best score", "collection"],
        [(g.question, f"{g.count:,}", text.score(g.avg_best_score), g.collection_name or "-")
         for g in report.knowledge_gaps],
    ) if report.knowledge_gaps else [], "No frequent question was answered from low scores.")
    out += _section("Suggestions", [
        *(f"- **{x.severity}** `{x.kind}`: {_cell(x.message)}" for x in report.suggestions), "",
    ] if report.suggestions else [], "Nothing to suggest: no measure is past its threshold with enough data.")
    out += _section("Alerts", _table(
        ["rule", "collection", "state", "started", "resolved", "value", "threshold", "message"],
        [(a.rule, a.collection_name or "all", a.state, a.started_at[:16], (a.resolved_at or "-")[:16],
          "-" if a.value is None else f"{a.value:,.4g}", "-" if a.threshold is None else f"{a.threshold:,.4g}",
          a.message) for a in report.alerts],
    ) if report.alerts else [], "No alert was active in this period.")
    stored = sum(report.conversations_by_priority.values())
    by = ", ".join(f"{k} {v:,}" for k, v in sorted(report.conversations_by_priority.items()))
    review = [f"{stored:,} conversations stored ({by or 'none'}). High priority ones (an error, a regeneration or "
              "a low retrieval score), errors first; read them in the admin view (`/admin/conversations`):", ""]
    review += _table(
        ["conversation", "collection", "last message", "turns", "why", "summary"],
        [(c.conversation_id, c.collection_name, c.last_message_at[:16], c.total_turns, c.reason, c.summary[:80])
         for c in report.conversations_to_review],
    ) if report.conversations_to_review else ["None in this period.", ""]
    out += _section("Conversations to review", review, "")
    return "\n".join(out).rstrip("\n") + "\n"
