"""``chatlog faq export``: the FAQ of a range as a document a team pastes into its knowledge base.

The same question groups and answers as ``GET /api/analytics/faq`` (``insights.faq``),
read from the database only. Markdown (one section per question: how often it was
asked and in which words, the stored answer shown and where it came from), JSON (the
API's items with the range) or CSV (one row per question, for spreadsheets).
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from datetime import date, timedelta
from pathlib import Path

import msgspec

from chatlog.cli import CommandError, date_argument
from chatlog.commands.reading import derived_state
from insights.faq import FaqItem, query_faq
from shared.atomic_write import write_private
from shared.layout import StorageLayout
from shared.settings import Settings

FORMATS = ("markdown", "json", "csv")
DEFAULT_DAYS = 30


class FaqExport(msgspec.Struct):
    """What ``--format json`` writes."""

    date_from: str
    date_to: str
    collection_name: str | None
    min_count: int
    items: list[FaqItem]


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """``faq export`` and its options."""
    actions = parser.add_subparsers(dest="faq_action", required=True, metavar="ACTION")
    export = actions.add_parser("export", help="write the FAQ of a range", description="write the FAQ of a range")
    export.add_argument("--format", choices=FORMATS, default="markdown", help="markdown (default), json or csv")
    export.add_argument("--from", dest="first", type=date_argument, metavar="DATE",
                        help=f"first day (default: {DEFAULT_DAYS - 1} days before --to)")
    export.add_argument("--to", dest="last", type=date_argument, metavar="DATE", help="last day (default: today)")
    export.add_argument("--collection", help="only this collection")
    export.add_argument("--limit", type=int, default=50, help="how many questions (1-1000, default 50)")
    export.add_argument("--min-count", type=int, help="leave out questions asked fewer times "
                        "(default: CHATLOG_FAQ_MIN_COUNT)")
    export.add_argument("--output", type=Path, metavar="FILE", help="write here (mode 0640) instead of stdout")


def _percent(share: float) -> str:
    return f"{share:.1%}"


def as_markdown(export: FaqExport) -> str:
    """One section per question, most asked first."""
    scope = export.collection_name or "all collections"
    out = [f"# FAQ: {scope}, {export.date_from} to {export.date_to}", ""]
    if not export.items:
        out.append(f"No question was asked {export.min_count} times or more in this range.")
    for number, item in enumerate(export.items, 1):
        where = ", ".join(f"{name} {n:,}" for name, n in item.collections.items())
        facts = f"Asked {item.count:,} times ({_percent(item.share)} of questions; {where})"
        if item.avg_best_score is not None:
            facts += f", mean best retrieval score {item.avg_best_score:.2f}"
        out += [f"## {number}. {_one_line(item.question)}", "", f"*{facts}.*", ""]
        others = [v for v in item.variants if v.text != item.question]
        if others:
            shown = "; ".join(f"{_one_line(v.text)} ({v.count:,})" for v in others[:10])
            more = f"; and {len(others) - 10} more" if len(others) > 10 else ""
            out += [f"Also asked as: {shown}{more}.", ""]
        if item.answer is None:
            out += ["_No stored answer to show: every answer failed or was regenerated._", ""]
            continue
        out += [item.answer.strip(), ""]
        source = f"answer `{item.answer_log_id}`"
        if item.answer_conversation_id:
            source += f", conversation `{item.answer_conversation_id}` (admin view)"
        out += [f"<sub>Source: {source}.</sub>", ""]
    return "\n".join(out).rstrip("\n") + "\n"


def _one_line(text: str) -> str:
    return " ".join(text.split())


CSV_COLUMNS = (
    "question", "count", "share", "variants", "collections", "answer", "answer_log_id",
    "answer_conversation_id", "avg_best_score",
)


def as_csv(export: FaqExport) -> str:
    """One row per question; variants as ``text (count)`` joined by `` | ``, collections as ``name=count``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for item in export.items:
        writer.writerow([
            item.question, item.count, f"{item.share:.6f}",
            " | ".join(f"{v.text} ({v.count})" for v in item.variants),
            ";".join(f"{name}={n}" for name, n in item.collections.items()),
            item.answer or "", item.answer_log_id or "", item.answer_conversation_id or "",
            "" if item.avg_best_score is None else f"{item.avg_best_score:.6f}",
        ])
    return buffer.getvalue()


def render(export: FaqExport, fmt: str) -> str:
    """The export in one of ``FORMATS``."""
    if fmt == "json":
        return msgspec.json.format(msgspec.json.encode(export)).decode() + "\n"
    if fmt == "csv":
        return as_csv(export)
    return as_markdown(export)


def main(settings: Settings, args: argparse.Namespace) -> int:
    """Write the FAQ of the range."""
    last = args.last or StorageLayout.from_settings(settings).today()
    first = args.first or max(date.min + timedelta(days=DEFAULT_DAYS - 1), last) - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise CommandError(f"--from {first} is after --to {last}")
    if not 1 <= args.limit <= 1000:
        raise CommandError("--limit must be between 1 and 1000")
    min_count = settings.faq_min_count if args.min_count is None else args.min_count
    if min_count < 1:
        raise CommandError("--min-count must be 1 or more")
    with derived_state(settings) as conn:
        faq = query_faq(conn, args.collection, first, last, args.limit, min_count)
    export = FaqExport(first.isoformat(), last.isoformat(), args.collection, min_count, faq.items)
    text = render(export, args.format)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        write_private(args.output, text)
    except OSError as exc:
        raise CommandError(f"cannot write {args.output}: {exc}") from None
    print(f"wrote {len(faq.items)} questions to {args.output}", file=sys.stderr)
    return 0
