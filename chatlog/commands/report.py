"""``chatlog report --from DATE --to DATE``: how the chatbot was used, in one page.

Read only, from the statistics and the conversation index (never the raw logs), so a
month's report takes milliseconds: usage per collection, the questions asked most
often (FAQ candidates: answer them once, well), and quality signals (error and
regeneration rates, latency, and the conversations the sampling rules flagged, by
id, to read in the admin view). Markdown by default, ``--json`` for machines.
"""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
import sys
from datetime import date, timedelta

import msgspec

from chat_statistics.reads import Summary, query_summary
from chatlog.cli import CommandError, date_argument
from shared.db import reader_uri
from shared.settings import Settings

# A query asked at least this often in the range is worth a written answer.
FAQ_MIN_COUNT = 3
REVIEW_LIMIT = 20


class FlaggedConversation(msgspec.Struct):
    """A conversation the sampling rules kept with high priority (an error, a regeneration, a weak retrieval)."""

    conversation_id: str
    collection_name: str
    closed_at: str
    total_turns: int
    has_error: bool
    summary: str


class UsageReport(msgspec.Struct):
    """Everything ``chatlog report`` prints."""

    date_from: str
    date_to: str
    overall: Summary
    collections: list[Summary]
    faq_candidates: list[tuple[str, int]]
    conversations_by_priority: dict[str, int]
    flagged: list[FlaggedConversation]


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """The range (default: the last 7 days), a collection, how many queries, and the format."""
    parser.add_argument(
        "--from", dest="first", type=date_argument, metavar="DATE", help="first day (default: 7 days ago)"
    )
    parser.add_argument("--to", dest="last", type=date_argument, metavar="DATE", help="last day (default: today)")
    parser.add_argument("--collection", help="only this collection")
    parser.add_argument("--top", type=int, default=20, help="how many frequent queries to list (1-100)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def build_report(
    conn: sqlite3.Connection, first: date, last: date, collection: str | None, top: int
) -> UsageReport:
    """The report of ``first..last`` from an open (read-only) connection."""
    overall = query_summary(conn, collection, first, last, top)
    names = [collection] if collection is not None else sorted(overall.collections)
    per_collection = [query_summary(conn, name, first, last, 0) for name in names] if collection is None else []
    faq = [(q.query, q.count) for q in overall.top_queries if q.count >= FAQ_MIN_COUNT]
    a, b = first.isoformat(), last.isoformat()
    # ``day`` is the day (in CHATLOG_TIMEZONE) the conversation was closed and stored.
    where = "day BETWEEN ? AND ?" + (" AND collection_name = ?" if collection else "")
    args: tuple[str, ...] = (a, b, collection) if collection else (a, b)
    priorities = dict(
        conn.execute(f"SELECT retention_priority, count(*) FROM conversations WHERE {where} GROUP BY 1", args)
    )
    flagged = [
        FlaggedConversation(cid, name, closed, turns, bool(error), summary or "")
        for cid, name, closed, turns, error, summary in conn.execute(
            f"SELECT conversation_id, collection_name, closed_at, total_turns, has_error, summary "
            f"FROM conversations WHERE {where} AND retention_priority = 'high' "
            f"ORDER BY closed_at DESC LIMIT {REVIEW_LIMIT}",
            args,
        )
    ]
    return UsageReport(a, b, overall, per_collection, faq, priorities, flagged)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


def as_markdown(report: UsageReport) -> str:
    """The report as Markdown (readable in a terminal, pasteable into a wiki)."""
    o = report.overall
    scope = o.collection_name or "all collections"
    out = [
        f"# chatlog usage report: {scope}, {report.date_from} to {report.date_to}",
        "",
        f"{o.total_queries:,} questions in {o.unique_sessions:,} sessions, {o.total_tokens:,} tokens; "
        f"response time p50 {_ms(o.p50_response_time_ms)}, p95 {_ms(o.p95_response_time_ms)}; "
        f"errors {o.error_rate:.1%}, regenerations {o.regeneration_rate:.1%}.",
        "",
    ]
    if report.collections:
        out += ["## By collection", "", "| collection | questions | sessions | p95 | errors | regenerations |",
                "| --- | ---: | ---: | ---: | ---: | ---: |"]
        out += [
            f"| {c.collection_name} | {c.total_queries:,} | {c.unique_sessions:,} | {_ms(c.p95_response_time_ms)} "
            f"| {c.error_rate:.1%} | {c.regeneration_rate:.1%} |"
            for c in sorted(report.collections, key=lambda c: -c.total_queries)
        ]
        out.append("")
    out += [f"## FAQ candidates (asked {FAQ_MIN_COUNT} times or more)", ""]
    if report.faq_candidates:
        out += ["| question | times | share |", "| --- | ---: | ---: |"]
        out += [f"| {q} | {n:,} | {n / max(o.total_queries, 1):.1%} |" for q, n in report.faq_candidates]
    else:
        out.append("No question was asked that often in this range.")
    out += ["", "## Conversations to review", ""]
    stored = sum(report.conversations_by_priority.values())
    by = ", ".join(f"{k} {v:,}" for k, v in sorted(report.conversations_by_priority.items()))
    out.append(f"{stored:,} conversations stored ({by or 'none'}).")
    if report.flagged:
        out += ["", "High priority (an error, a regeneration or a weak retrieval), newest first; read them in "
                "the admin view (`/admin`):", "", "| conversation | collection | closed | turns | error | summary |",
                "| --- | --- | --- | ---: | --- | --- |"]
        out += [
            f"| {f.conversation_id} | {f.collection_name} | {f.closed_at[:16]} | {f.total_turns} | "
            f"{'yes' if f.has_error else ''} | {f.summary[:80].replace('|', '/')} |"
            for f in report.flagged
        ]
    return "\n".join(out) + "\n"


def main(settings: Settings, args: argparse.Namespace) -> int:
    """Print the report of the range."""
    last = args.last or date.today()
    # Near date.min there are no 6 days to go back: the range starts at the first day there is.
    first = args.first or max(date.min + timedelta(days=6), last) - timedelta(days=6)
    if first > last:
        raise CommandError(f"--from {first} is after --to {last}")
    if not 1 <= args.top <= 100:
        raise CommandError("--top must be between 1 and 100")
    if not settings.db_path.exists():
        raise CommandError(f"no database at {settings.db_path} yet: start the ingestor first")
    try:
        with contextlib.closing(sqlite3.connect(reader_uri(settings.db_path), uri=True)) as conn:
            report = build_report(conn, first, last, args.collection, args.top)
    except sqlite3.Error as exc:
        raise CommandError(str(exc)) from None
    if args.json:
        sys.stdout.write(msgspec.json.format(msgspec.json.encode(report)).decode() + "\n")
    else:
        sys.stdout.write(as_markdown(report))
    return 0
