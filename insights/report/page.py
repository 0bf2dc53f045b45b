"""The report as one self-contained HTML file: inline CSS and SVG charts, no script, nothing fetched.

Its Content-Security-Policy (``default-src 'none'``) forbids every request, so even a
future edit that adds a remote font or image would show up as a refused load instead
of reaching the network. Every text from the data is escaped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

from insights.report import charts, text
from insights.report.model import Report

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

_STYLE = """
body{font:14px/1.5 system-ui,-apple-system,"Segoe UI","Noto Sans KR","NanumGothic",sans-serif;color:#0f172a;
margin:0;background:#f8fafc}
main{max-width:980px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e2e8f0;padding-bottom:4px}
.meta{color:#64748b;margin:0 0 16px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}
.card{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:10px 14px;min-width:120px}
.card b{display:block;font-size:20px}.card span{color:#64748b;font-size:12px}
table{border-collapse:collapse;width:100%;background:#fff;margin:8px 0;font-size:13px}
th,td{border:1px solid #e2e8f0;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f1f5f9}
td.n{text-align:right;font-variant-numeric:tabular-nums}
figure.chart{margin:12px 0;background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:8px}
figcaption{color:#475569;font-size:12px}
.sev{display:inline-block;border-radius:4px;padding:0 6px;font-size:12px;color:#fff;margin-right:6px}
.sev-high{background:#dc2626}.sev-medium{background:#ea580c}.sev-low{background:#64748b}
ul.suggestions{padding-left:0;list-style:none}ul.suggestions li{background:#fff;border:1px solid #e2e8f0;
border-radius:8px;padding:8px 10px;margin:6px 0}
code{background:#f1f5f9;padding:0 4px;border-radius:3px}.empty{color:#64748b}
"""


def _table(header: Sequence[str], rows: Iterable[Sequence[object]], numeric: int = 0, name: str = "") -> str:
    """An HTML table; the last ``numeric`` columns are right-aligned."""
    first = len(header) - numeric
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(
            f'<td{" class=n" if i >= first else ""}>{escape(str(v))}</td>' for i, v in enumerate(row)
        ) + "</tr>"
        for row in rows
    )
    attribute = f' data-table="{escape(name, quote=True)}"' if name else ""
    return f"<table{attribute}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _empty(message: str) -> str:
    return f'<p class="empty">{escape(message)}</p>'


def _cards(report: Report) -> str:
    s, q = report.summary, report.quality
    figures = [
        (f"{s.total_queries:,}", "questions"), (f"{s.unique_sessions:,}", "sessions"),
        (text.ms(s.p95_response_time_ms), "p95 response"), (text.pct(s.error_rate), "errors"),
        (text.pct(s.regeneration_rate), "regenerations"), (text.pct(q.low_score_rate), "low-score answers"),
        (f"{s.positive_feedback:,} / {s.negative_feedback:,}", "feedback good / bad"),
    ]
    return '<div class="cards">' + "".join(
        f'<div class="card"><b>{escape(v)}</b><span>{escape(k)}</span></div>' for v, k in figures
    ) + "</div>"


def _usage(report: Report) -> str:
    days = [p.date[5:] for p in report.timeline]
    out = [
        "<h2>Usage</h2>", _cards(report), f"<p>{escape(text.usage_line(report))}</p>",
        charts.bars("questions", "Questions per day", days, [p.total_queries for p in report.timeline]),
        charts.lines("latency", "Response time per day (ms)", days, [
            ("p95", [p.p95_response_time_ms for p in report.timeline]),
            ("average", [p.avg_response_time_ms for p in report.timeline]),
        ], " ms"),
        charts.lines("problems", "Errors and regenerations per day", days, [
            ("errors", [float(p.error_count) for p in report.timeline]),
            ("regenerations", [float(p.regeneration_count) for p in report.timeline]),
        ]),
    ]
    if report.collections:
        ranked = sorted(report.collections, key=lambda c: -c.total_queries)
        out.append(charts.horizontal_bars("collections", "Questions by collection",
                                          [(c.collection_name or "", float(c.total_queries)) for c in ranked]))
        out.append(_table(
            ["collection", "questions", "sessions", "p95", "errors", "regenerations"],
            [(c.collection_name, f"{c.total_queries:,}", f"{c.unique_sessions:,}", text.ms(c.p95_response_time_ms),
              text.pct(c.error_rate), text.pct(c.regeneration_rate)) for c in ranked],
            numeric=5, name="collections",
        ))
    if report.summary.top_queries:
        out.append("<p>Most asked (same text):</p>")
        out.append(_table(["question", "times"], [(t.query, f"{t.count:,}") for t in report.summary.top_queries],
                          numeric=1, name="top-queries"))
    return "".join(out)


def _quality(report: Report) -> str:
    q = report.quality
    histogram = q.best_score_histogram
    out = [
        "<h2>Retrieval quality</h2>", f"<p>{escape(text.quality_line(report))}</p>",
        charts.bars("best-scores", f"Answers by best retrieval score (red: under {q.low_score_threshold})",
                    [f"{b.start:.1f}" for b in histogram], [b.count for b in histogram],
                    highlight=[b.to <= q.low_score_threshold + 1e-9 for b in histogram]),
    ]
    if q.by_collection:
        out.append(_table(
            ["collection", "answers", "low score", "no result", "p50 best score", "regenerated", "errors",
             "negative feedback"],
            [(c.collection_name, f"{c.answers:,}", text.pct(c.low_score_rate), text.pct(c.no_result_rate),
              text.score(c.p50_best_score), text.pct(c.regeneration_rate), text.pct(c.error_rate),
              text.pct(c.negative_feedback_rate)) for c in q.by_collection],
            numeric=7, name="quality",
        ))
    return "".join(out)


def _rest(report: Report) -> str:
    out = ["<h2>FAQ</h2>"]
    out.append(_table(
        ["question", "times", "share", "collections", "answer"],
        [(f.question, f"{f.count:,}", text.pct(f.share), ", ".join(f"{k} {v:,}" for k, v in f.collections.items()),
          (f.answer or "-")[:200]) for f in report.faq], numeric=0, name="faq",
    ) if report.faq else _empty("No question group was asked often enough in this period."))
    out.append("<h2>Knowledge gaps</h2>")
    out.append(_table(
        ["question", "times", "mean best score", "collection"],
        [(g.question, f"{g.count:,}", text.score(g.avg_best_score), g.collection_name or "-")
         for g in report.knowledge_gaps], name="knowledge-gaps",
    ) if report.knowledge_gaps else _empty("No frequent question was answered from low scores."))
    out.append("<h2>Suggestions</h2>")
    out.append('<ul class="suggestions">' + "".join(
        f'<li data-kind="{escape(x.kind, quote=True)}"><span class="sev sev-{escape(x.severity, quote=True)}">'
        f"{escape(x.severity)}</span><code>{escape(x.kind)}</code> {escape(x.message)}</li>"
        for x in report.suggestions
    ) + "</ul>" if report.suggestions else _empty(
        "Nothing to suggest: no measure is past its threshold with enough data."))
    out.append("<h2>Alerts</h2>")
    out.append(_table(
        ["rule", "collection", "state", "started", "resolved", "value", "threshold", "message"],
        [(a.rule, a.collection_name or "all", a.state, a.started_at[:16], (a.resolved_at or "-")[:16],
          "-" if a.value is None else f"{a.value:,.4g}", "-" if a.threshold is None else f"{a.threshold:,.4g}",
          a.message) for a in report.alerts], name="alerts",
    ) if report.alerts else _empty("No alert was active in this period."))
    stored = sum(report.conversations_by_priority.values())
    by = ", ".join(f"{k} {v:,}" for k, v in sorted(report.conversations_by_priority.items()))
    out.append("<h2>Conversations to review</h2>")
    out.append(f"<p>{stored:,} conversations stored ({escape(by or 'none')}). High priority ones (an error, a "
               "regeneration or a low retrieval score), errors first; read them in the admin view "
               "(<code>/admin/conversations</code>).</p>")
    out.append(_table(
        ["conversation", "collection", "last message", "turns", "why", "summary"],
        [(c.conversation_id, c.collection_name, c.last_message_at[:16], c.total_turns, c.reason, c.summary[:120])
         for c in report.conversations_to_review], name="review",
    ) if report.conversations_to_review else _empty("None in this period."))
    return "".join(out)


def as_html(report: Report) -> str:
    """The whole report as one HTML document."""
    title = text.title(report)
    return (
        '<!DOCTYPE html><html lang="ko"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body><main>"
        f"<h1>{escape(title)}</h1>"
        f'<p class="meta">Generated {escape(report.generated_at)}; days in {escape(report.timezone)}.</p>'
        + _usage(report) + _quality(report) + _rest(report)
        + "</main></body></html>\n"
    )
