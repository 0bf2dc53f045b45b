"""Suggestions and report benchmark: what the new reads and the new rebuild pass cost beside the quality ones.

Run: ``python -m bench.suggestions`` (default 30 days x 20,000 events a day, half of
them answers with a model, a reasoning level, a response time, retrieval scores, 3%
errors of four types, 5% regenerations; feedback on 2% of the answers). One run:

1. writes the days straight into day files marked applied (as ``bench.quality``) and
   rebuilds their statistics;
2. times, on the same day file, the rebuild's new pass (``answer_rows``: the rows by
   model and reasoning level and the error types) beside its quality pass
   (``quality_rows``, the baseline);
3. times, on one read-only connection, ``query_suggestions`` beside ``query_quality``
   (the baseline it reads first) for 7 and 30 days, and the whole HTML report.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import msgspec

from bench.analytics import write_days
from bench.quality import COLLECTIONS, QUALITY, TEMPLATE_DAY, WEIGHTS, write_feedback
from chat_statistics.quality_reads import query_quality
from chat_statistics.rebuild.answers import answer_rows
from chat_statistics.rebuild.quality import quality_rows
from chat_statistics.rebuild.run import rebuild
from insights.report.build import build_report
from insights.report.page import as_html
from insights.suggestions import query_suggestions
from shared.db import reader_uri
from shared.layout import StorageLayout, Stream, date_range
from shared.settings import Settings

MODELS = (("gpt-4o-mini", 900, 2500), ("gpt-4o", 1500, 6500), ("claude-3-haiku", 700, 2000))
LEVELS = ("low", "medium", "high")
ERRORS = ("timeout", "rate_limit", "context_length", "upstream_5xx")


def template_day(per_day: int, seed: int = 13) -> tuple[bytes, bytes]:
    """One day of stored log lines (half answers, with model, level and latency) and of feedback lines."""
    rng = random.Random(seed)
    encoder = msgspec.json.Encoder()
    logs: list[bytes] = []
    feedback: list[bytes] = []
    for index in range(per_day // 2):
        second = index * 86400 / (per_day // 2)
        at = f"{TEMPLATE_DAY}T{time.strftime('%H:%M:%S', time.gmtime(second))}.000000Z"
        collection = rng.choices(COLLECTIONS, WEIGHTS)[0]
        base = {"session_id": f"S{index // 4}", "conversation_id": f"S{index // 4}", "collection_name": collection}
        logs.append(encoder.encode({"log_id": f"L{2 * index}", **base, "message_type": "user",
                                    "message_content": "연차 휴가는 어떻게 신청하나요?", "created_at": at}) + b"\n")
        model, low, high = rng.choice(MODELS)
        scores = sorted((min(1.0, max(0.0, rng.gauss(QUALITY[collection], 0.15))) for _ in range(5)), reverse=True)
        answer: dict[str, Any] = {
            "log_id": f"L{2 * index + 1}", **base, "message_type": "assistant",
            "message_content": "인사 시스템에서 신청하세요.", "created_at": at, "llm_model": model,
            "reasoning_level": rng.choice(LEVELS), "is_regeneration": rng.random() < 0.05,
            "performance": {"response_time_ms": rng.randrange(low, high), "token_count": 300},
            "retrieval_info": {"query": "q", "retrieved_count": 5, "top_scores": [round(s, 4) for s in scores]},
        }
        if rng.random() < 0.03:
            answer["status"] = "error"
            answer["error"] = {"type": rng.choice(ERRORS), "message": "failed"}
        logs.append(encoder.encode(answer) + b"\n")
        if rng.random() < 0.02:
            feedback.append(encoder.encode({
                "feedback_id": f"F{index}", "log_id": f"L{2 * index + 1}", "collection_name": collection,
                "score": 1 if rng.random() < 0.7 else -1, "created_at": at,
            }) + b"\n")
    return b"".join(logs), b"".join(feedback)


def median_ms(work: Callable[[], object], repeat: int) -> float:
    """The median wall time of ``repeat`` runs, in ms."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def run(days: int, per_day: int, root: Path, repeat: int) -> list[str]:
    """The whole benchmark; returns the report lines."""
    settings = Settings.for_data_dir(root / "data", user_hash_secret="bench-secret-0123456789abcdef")
    last = date(2026, 1, 31)
    all_days = date_range(last - timedelta(days=days - 1), last)
    logs, feedback = template_day(per_day)
    write_days(settings, all_days, logs)
    write_feedback(settings, all_days, feedback)
    layout = StorageLayout.from_settings(settings)
    started = time.perf_counter()
    rebuild(settings.db_path, layout, all_days[0], last)
    out = [f"suggestions benchmark: {days} days x {per_day:,} events a day; rebuild-stats "
           f"{time.perf_counter() - started:.1f} s", ""]
    path = layout.day_path(Stream.LOGS, last)
    lines = logs.count(b"\n")
    quality_ms = median_ms(lambda: quality_rows(path, lines, settings.timezone, last), 7)
    answers_ms = median_ms(lambda: answer_rows(path, lines, last), 7)
    out += ["| measure | ms (median) | ratio to baseline |", "| --- | --- | --- |",
            f"| rebuild, one day: quality pass (baseline) | {quality_ms:.0f} | 1.00 |",
            f"| rebuild, one day: answer and error-type pass | {answers_ms:.0f} | {answers_ms / quality_ms:.2f} |"]
    with contextlib.closing(sqlite3.connect(reader_uri(settings.db_path), uri=True)) as conn:
        for span in sorted({7, days}):
            first = last - timedelta(days=span - 1)
            base = median_ms(partial(query_quality, conn, None, first, last, settings.low_score_threshold), repeat)
            suggest = median_ms(partial(query_suggestions, conn, None, first, last, settings), repeat)
            found = len(query_suggestions(conn, None, first, last, settings).items)
            whole = partial(build_report, conn, settings, None, first, last)
            report = median_ms(lambda: as_html(whole()), max(3, repeat // 10))  # noqa: B023 (used at once)
            size = len(as_html(build_report(conn, settings, None, first, last)).encode())
            out += [f"| {span} days: query_quality (baseline) | {base:.1f} | 1.00 |",
                    f"| {span} days: query_suggestions ({found} found) | {suggest:.1f} | {suggest / base:.2f} |",
                    f"| {span} days: whole HTML report ({size / 1024:.0f} KiB) | {report:.1f} | {report / base:.2f} |"]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--per-day", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="chatlog-suggestions-bench-", ignore_cleanup_errors=True) as root:
        lines = run(args.days, args.per_day, Path(root), args.repeat)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
