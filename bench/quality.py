"""Quality benchmark: ``GET /api/analytics/quality`` against DuckDB answering the same rates from the raw files.

Run: ``python -m bench.quality`` (default 30 days x 100,000 events a day, half of them
answers carrying ``retrieval_info``, and feedback on 2% of the answers; ``--days`` and
``--per-day`` scale it down). One run:

1. writes the days straight into log and feedback day files (one generated day,
   re-dated and re-keyed per day) and marks them applied in ``ingest_offsets``, as the
   ingestor leaves them;
2. times ``rebuild-stats`` over every day (which fills the quality rows);
3. starts ``python -m analytics_api`` and times the quality answer over HTTP for 1, 7
   and 30-day ranges (all collections and one), beside DuckDB computing the same
   figures from the raw files of the 30 days, and checks that both agree;
4. times the same read in process from the hourly rows and from the daily rollup, side
   by side (and checks they answer the same).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sqlite3
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import msgspec

from bench.analytics import analytics_server, http_latencies, p, write_days
from chat_statistics.quality import DAILY_TABLE, HOURLY_TABLE
from chat_statistics.quality_reads import query_quality
from chat_statistics.rebuild.run import rebuild
from shared.db import connect_writer_sync, reader_uri
from shared.layout import StorageLayout, Stream, date_range
from shared.settings import Settings

COLLECTIONS = ("hr-docs", "it-helpdesk", "legal-kb", "finance", "onboarding")
WEIGHTS = (40, 30, 15, 10, 5)
TEMPLATE_DAY = "2000-01-01"
RANGES = (1, 7, 30)
# Each collection's documents cover its questions to a different degree: its scores' centre.
QUALITY = {"hr-docs": 0.72, "it-helpdesk": 0.6, "legal-kb": 0.45, "finance": 0.55, "onboarding": 0.8}


def template_day(per_day: int, seed: int = 11) -> tuple[bytes, bytes]:
    """One day of stored log lines (half answers) and of feedback lines, dated TEMPLATE_DAY."""
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
        answer: dict[str, Any] = {"log_id": f"L{2 * index + 1}", **base, "message_type": "assistant",
                                  "message_content": "인사 시스템에서 신청하세요.", "created_at": at,
                                  "is_regeneration": rng.random() < 0.05}
        if rng.random() < 0.03:
            answer["status"] = "error"
        if rng.random() < 0.95:
            if rng.random() < 0.04:
                answer["retrieval_info"] = {"query": "q", "retrieved_count": 0, "top_scores": []}
            else:
                centre = QUALITY[collection]
                scores = sorted((min(1.0, max(0.0, rng.gauss(centre, 0.15))) for _ in range(5)), reverse=True)
                answer["retrieval_info"] = {"query": "q", "retrieved_count": 5, "reranking_used": rng.random() < 0.5,
                                            "top_scores": [round(s, 4) for s in scores]}
        logs.append(encoder.encode(answer) + b"\n")
        if rng.random() < 0.02:
            feedback.append(encoder.encode({
                "feedback_id": f"F{index}", "log_id": f"L{2 * index + 1}", "collection_name": collection,
                "score": 1 if rng.random() < 0.7 else -1, "created_at": at,
            }) + b"\n")
    return b"".join(logs), b"".join(feedback)


def write_feedback(settings: Settings, days: list[date], template: bytes) -> None:
    """The feedback day files, re-dated per day, marked applied."""
    layout = StorageLayout.from_settings(settings)
    (layout.root / Stream.FEEDBACK.value).mkdir(parents=True, exist_ok=True)
    lines = template.count(b"\n")
    for number, day in enumerate(days):
        data = template.replace(f'"created_at":"{TEMPLATE_DAY}T'.encode(), f'"created_at":"{day}T'.encode())
        data = data.replace(b'_id":"F', f'_id":"D{number}F'.encode())
        layout.day_path(Stream.FEEDBACK, day).write_bytes(data)
    with contextlib.closing(connect_writer_sync(settings.db_path)) as conn:
        conn.executemany(
            "INSERT OR REPLACE INTO ingest_offsets (stream, day, lines) VALUES ('feedback', ?, ?)",
            [(day.isoformat(), lines) for day in days],
        )


_ANSWERS = """
WITH a AS (
  SELECT collection_name, is_regeneration AS regen, status = 'error' AS err, retrieval_info IS NOT NULL AS wr,
         retrieval_info.reranking_used IS TRUE AS rr,
         CASE WHEN retrieval_info.retrieved_count = 0 OR len(retrieval_info.top_scores) = 0 THEN NULL
              ELSE list_max(retrieval_info.top_scores) END AS best
  FROM read_json({files}, columns = {{collection_name: 'VARCHAR', message_type: 'VARCHAR', status: 'VARCHAR',
       is_regeneration: 'BOOLEAN', retrieval_info: 'STRUCT(retrieved_count BIGINT, reranking_used BOOLEAN,
       top_scores DOUBLE[])'}}, format = 'newline_delimited')
  WHERE message_type = 'assistant')
SELECT count(*) AS answers, count(*) FILTER (wr) AS with_retrieval,
       count(*) FILTER (wr AND best IS NULL) AS no_result, count(*) FILTER (best < 0.5) AS low,
       quantile_disc(best, [0.1, 0.5, 0.9]) AS percentiles,
       count(*) FILTER (regen AND best < 0.5) AS regen_low, count(*) FILTER (regen AND best >= 0.5) AS regen_other,
       count(*) FILTER (best >= 0.5) AS other, count(*) FILTER (wr AND rr) AS reranked,
       count(*) FILTER (rr AND best < 0.5) AS reranked_low,
       list(DISTINCT collection_name) AS collections
FROM a
"""
_BY_COLLECTION = """
SELECT collection_name, count(*), count(*) FILTER (best < 0.5), count(*) FILTER (wr), quantile_disc(best, 0.5),
       count(*) FILTER (regen), count(*) FILTER (err)
FROM (SELECT collection_name, is_regeneration AS regen, status = 'error' AS err, retrieval_info IS NOT NULL AS wr,
             CASE WHEN retrieval_info.retrieved_count = 0 OR len(retrieval_info.top_scores) = 0 THEN NULL
                  ELSE list_max(retrieval_info.top_scores) END AS best
      FROM read_json({files}, columns = {{collection_name: 'VARCHAR', message_type: 'VARCHAR', status: 'VARCHAR',
           is_regeneration: 'BOOLEAN', retrieval_info: 'STRUCT(retrieved_count BIGINT, reranking_used BOOLEAN,
           top_scores DOUBLE[])'}}, format = 'newline_delimited')
      WHERE message_type = 'assistant')
GROUP BY 1 ORDER BY 1
"""
_FEEDBACK = """
SELECT count(*) FILTER (score = 1), count(*) FILTER (score = -1)
FROM read_json({files}, columns = {{score: 'BIGINT'}}, format = 'newline_delimited')
"""


def duckdb_quality(logs: list[Path], feedback: list[Path]) -> dict[str, Any]:
    """The quality figures of the raw files, computed by DuckDB (what the endpoint saves)."""
    conn = duckdb.connect()
    files = "[" + ", ".join(f"'{path}'" for path in logs) + "]"
    row = conn.execute(_ANSWERS.format(files=files)).fetchone()
    assert row is not None
    answers, with_retrieval, no_result, low, percentiles, regen_low, regen_other, other, reranked, rr_low, _ = row
    by_collection = conn.execute(_BY_COLLECTION.format(files=files)).fetchall()
    feedback_list = "[" + ", ".join(f"'{path}'" for path in feedback) + "]"
    positive, negative = conn.execute(_FEEDBACK.format(files=feedback_list)).fetchone() or (0, 0)
    conn.close()
    return {
        "answers": answers, "answers_with_retrieval": with_retrieval,
        "low_score_rate": low / with_retrieval, "no_result_rate": no_result / with_retrieval,
        "percentiles": percentiles,
        "regeneration_rate": {"low_score": regen_low / low, "other": regen_other / other},
        "reranked": reranked, "reranked_low_rate": rr_low / reranked,
        "feedback": {"positive": positive, "negative": negative},
        "by_collection": [(name, n, low_n / wr if wr else 0.0, p50)
                          for name, n, low_n, wr, p50, _, _ in by_collection],
    }


def agree(body: dict[str, Any], exact: dict[str, Any]) -> list[str]:
    """Where the endpoint's answer differs from DuckDB's exact figures (empty: they agree)."""
    problems = []
    for name in ("answers", "answers_with_retrieval", "feedback"):
        if body[name] != exact[name]:
            problems.append(f"{name}: {body[name]} != {exact[name]}")
    for name in ("low_score_rate", "no_result_rate"):
        if abs(body[name] - exact[name]) > 1e-9:
            problems.append(f"{name}: {body[name]} != {exact[name]}")
    for side in ("low_score", "other"):
        if abs(body["regeneration_rate"][side] - exact["regeneration_rate"][side]) > 1e-9:
            problems.append(f"regeneration_rate.{side}")
    if body["reranking"]["used"]["answers"] != exact["reranked"] or abs(
        body["reranking"]["used"]["low_score_rate"] - exact["reranked_low_rate"]
    ) > 1e-9:
        problems.append("reranking.used")
    for got, want in zip(body["best_score_percentiles"].values(), exact["percentiles"], strict=True):
        if abs(got - want) > 0.01:
            problems.append(f"percentile {got} vs {want}")
    for got, (name, n, low_rate, p50) in zip(body["by_collection"], exact["by_collection"], strict=True):
        if (got["collection_name"], got["answers"]) != (name, n) or abs(got["low_score_rate"] - low_rate) > 1e-9 \
                or abs(got["p50_best_score"] - p50) > 0.01:
            problems.append(f"by_collection {name}")
    return problems


def rollup_times(settings: Settings, first: date, last: date, repeat: int) -> dict[str, list[float]]:
    """Milliseconds of ``query_quality`` over ``first..last`` from the hourly rows and from the daily rows.

    Side by side on one read-only connection, alternating, after checking both answer the same.
    """
    tables = {"hourly rows (no rollup)": HOURLY_TABLE, "daily rollup": DAILY_TABLE}
    times: dict[str, list[float]] = {name: [] for name in tables}
    with contextlib.closing(sqlite3.connect(reader_uri(settings.db_path), uri=True)) as conn:
        answers = [query_quality(conn, None, first, last, 0.5, table=table) for table in tables.values()]
        assert answers[0] == answers[1], "the daily rollup answers differently from the hourly rows"
        for _ in range(repeat):
            for name, table in tables.items():
                started = time.perf_counter()
                query_quality(conn, None, first, last, 0.5, table=table)
                times[name].append((time.perf_counter() - started) * 1000)
    return times


def run(days: int, per_day: int, root: Path, repeat: int) -> list[str]:
    """The whole benchmark; returns the report lines."""
    settings = Settings.for_data_dir(root / "data", user_hash_secret="bench-secret-0123456789abcdef")
    last = date(2026, 1, 31)
    all_days = date_range(last - timedelta(days=days - 1), last)
    logs, feedback = template_day(per_day)
    started = time.perf_counter()
    write_days(settings, all_days, logs)
    write_feedback(settings, all_days, feedback)
    out = [f"quality benchmark: {days} days x {per_day:,} events a day "
           f"({len(all_days) * per_day:,} events, written in {time.perf_counter() - started:.1f} s)"]
    layout = StorageLayout.from_settings(settings)
    started = time.perf_counter()
    report = rebuild(settings.db_path, layout, all_days[0], last)
    seconds = time.perf_counter() - started
    out.append(f"rebuild-stats (usage and quality rows): {seconds:.1f} s, {report.events:,} events")
    log_files = layout.readable_between(Stream.LOGS, all_days[0], last)
    feedback_files = layout.readable_between(Stream.FEEDBACK, all_days[0], last)
    duck_times = []
    exact: dict[str, Any] = {}
    for _ in range(2):
        started = time.perf_counter()
        exact = duckdb_quality(log_files, feedback_files)
        duck_times.append((time.perf_counter() - started) * 1000)
    spans = sorted({span for span in RANGES if span < days} | {days})
    requests = [("/api/analytics/quality", {"date_from": (last - timedelta(days=span - 1)).isoformat(),
                                             "date_to": last.isoformat()}) for span in spans]
    whole = requests[-1]
    requests.append(("/api/analytics/quality", {**whole[1], "collection_name": "legal-kb"}))
    rollup = rollup_times(settings, all_days[0], last, repeat)
    with analytics_server(settings) as url:
        latencies = asyncio.run(http_latencies(url, requests, repeat))
    out.append("")
    out.append("| request | p50 ms | p95 ms |")
    out.append("| --- | --- | --- |")
    for name, (p50, p95, _) in latencies.items():
        out.append(f"| {name} | {p50:.2f} | {p95:.2f} |")
    duck = p(duck_times, 0.5)
    out.append(f"| DuckDB over the raw files, {days} days (same figures) | {duck:.0f} | {max(duck_times):.0f} |")
    for name, times in rollup.items():
        out.append(f"| in process, {days} days, {name} | {p(times, 0.5):.2f} | {p(times, 0.95):.2f} |")
    key = f"{whole[0]}?{'&'.join(f'{k}={v}' for k, v in whole[1].items())}"
    p50_whole, p95_whole, body_all = latencies[key]
    out.append("")
    out.append(f"{days}-day p95 {p95_whole:.2f} ms (target <= 50 ms: {'met' if p95_whole <= 50 else 'MISSED'}); "
               f"DuckDB / endpoint p50: {duck / p50_whole:.0f}x")
    hourly, daily = (p(times, 0.5) for times in rollup.values())
    out.append(f"daily rollup / hourly rows (in process, p50): {daily / hourly:.2f} (same answer)")
    problems = agree(body_all, exact)
    out.append("answers agree with DuckDB's exact figures" if not problems else "DISAGREE: " + "; ".join(problems))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--per-day", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="chatlog-quality-bench-", ignore_cleanup_errors=True) as root:
        lines = run(args.days, args.per_day, Path(root), args.repeat)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
