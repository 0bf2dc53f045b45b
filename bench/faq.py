"""FAQ benchmark: ``GET /api/analytics/faq`` and ``/quality`` (with its knowledge gaps) against DuckDB.

Run: ``python -m bench.faq`` (default 30 days x 100,000 events a day; ``--days`` and
``--per-day`` scale it down). One run:

1. writes the days straight into log and feedback day files, as the ingestor leaves
   them (marked applied in ``ingest_offsets``): sessions of questions and answers, the
   questions drawn from the labelled paraphrase set (``tests/data/question_groups.tsv``)
   with Zipf-like weights, plus a tail of ``--tail`` of them that is new text every day
   (ids, order numbers); answers with retrieval scores by question, errors,
   regenerations and feedback on 2%;
2. times ``rebuild-stats`` over every day (which fills the FAQ's question rows);
3. times the grouping of the month's distinct questions in-process (first with Kiwi's
   analysis cold, then again with it cached, as after a data change);
4. starts ``python -m analytics_api`` and times the FAQ and the quality answers over
   HTTP: cold without the warm-up (the first FAQ request of a range groups it; the first
   quality answer says its gaps are pending), just after the warm-up (the days end today,
   so the warm-up's last 7 and 30 days are the benchmark's), warm (cached) and just after a
   data change (stale while regrouped), with the process's RSS with and without Kiwi, beside
   DuckDB answering the FAQ without paraphrase grouping (exact normalised text, answers
   paired to the session's latest question, mean best score) from the raw files.
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
import urllib.request
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import msgspec

from bench.analytics import analytics_process, http_latencies, p
from bench.grouping import load_labelled
from chat_statistics.rebuild.run import rebuild
from insights.faq import clear_cache, compute_groups
from shared.db import connect_writer_sync, reader_uri
from shared.layout import StorageLayout, Stream, date_range
from shared.settings import Settings

COLLECTIONS = ("hr-docs", "it-helpdesk", "legal-kb", "finance", "onboarding")
WEIGHTS = (40, 30, 15, 10, 5)
TEMPLATE_DAY = "2000-01-01"
DAY_MARK = "@@D@@"  # replaced by the day's number: the tail's new text every day


def template_day(per_day: int, tail: float, seed: int = 13) -> tuple[bytes, bytes]:
    """One day of log lines (sessions of questions and answers) and of feedback lines, dated TEMPLATE_DAY."""
    rng = random.Random(seed)
    labelled = load_labelled()
    groups = sorted({g for g, _ in labelled})
    by_group = {g: [q for name, q in labelled if name == g] for g in groups}
    weights = [1 / (rank + 1) for rank in range(len(groups))]  # Zipf-like: a few questions dominate
    rng.shuffle(groups)
    centre = {g: rng.uniform(0.25, 0.9) for g in groups}  # how well the documents cover each question
    encoder = msgspec.json.Encoder()
    logs: list[bytes] = []
    feedback: list[bytes] = []
    index = 0
    session = 0
    while index < per_day:
        session += 1
        collection = rng.choices(COLLECTIONS, WEIGHTS)[0]
        base = {"session_id": f"S{session}", "conversation_id": f"S{session}", "collection_name": collection}
        for _ in range(rng.randint(1, 3)):
            if index >= per_day:
                break
            group = rng.choices(groups, weights)[0]
            question = rng.choice(by_group[group])
            if rng.random() < tail:
                question = f"{question} (문의 {DAY_MARK}-{index})"
            second = index * 86400 / per_day
            at = f"{TEMPLATE_DAY}T{time.strftime('%H:%M:%S', time.gmtime(second))}.000000Z"
            logs.append(encoder.encode({"log_id": f"L{index}", **base, "message_type": "user",
                                        "message_content": question, "created_at": at}) + b"\n")
            index += 1
            for attempt in range(1 + (rng.random() < 0.05)):
                if index >= per_day:
                    break
                answer: dict[str, Any] = {
                    "log_id": f"L{index}", **base, "message_type": "assistant",
                    "message_content": f"{group} 답변: 규정에 따르면 인사 시스템에서 처리합니다. ({rng.randrange(50)})",
                    "created_at": at, "is_regeneration": attempt > 0,
                }
                if rng.random() < 0.03:
                    answer["status"] = "error"
                scores = sorted((min(1.0, max(0.0, rng.gauss(centre[group], 0.12))) for _ in range(3)), reverse=True)
                answer["retrieval_info"] = {"query": question, "retrieved_count": 3,
                                            "top_scores": [round(s, 4) for s in scores]}
                logs.append(encoder.encode(answer) + b"\n")
                if rng.random() < 0.02:
                    feedback.append(encoder.encode({
                        "feedback_id": f"F{index}", "log_id": f"L{index}", "collection_name": collection,
                        "score": 1 if rng.random() < 0.7 else -1, "created_at": at,
                    }) + b"\n")
                index += 1
    return b"".join(logs), b"".join(feedback)


def write_days(settings: Settings, days: list[date], logs: bytes, feedback: bytes) -> int:
    """Every day's log and feedback files, re-dated and re-keyed, marked applied; return bytes written."""
    layout = StorageLayout.from_settings(settings)
    layout.ensure_dirs()
    (layout.root / Stream.FEEDBACK.value).mkdir(parents=True, exist_ok=True)
    written = 0
    for number, day in enumerate(days):
        for stream, template in ((Stream.LOGS, logs), (Stream.FEEDBACK, feedback)):
            data = template.replace(f'"created_at":"{TEMPLATE_DAY}T'.encode(), f'"created_at":"{day}T'.encode())
            data = data.replace(b'"log_id":"L', f'"log_id":"D{number}L'.encode())
            data = data.replace(b'_id":"S', f'_id":"D{number}S'.encode())
            data = data.replace(b'"feedback_id":"F', f'"feedback_id":"D{number}F'.encode())
            data = data.replace(DAY_MARK.encode(), str(number).encode())
            layout.day_path(stream, day).write_bytes(data)
            written += len(data)
    with contextlib.closing(connect_writer_sync(settings.db_path)) as conn:
        for stream, template in ((Stream.LOGS, logs), (Stream.FEEDBACK, feedback)):
            conn.executemany(
                "INSERT OR REPLACE INTO ingest_offsets (stream, day, lines) VALUES (?, ?, ?)",
                [(stream.value, day.isoformat(), template.count(b"\n")) for day in days],
            )
    return written


# The FAQ without paraphrase grouping: exact normalised text, each answer paired with the
# latest question of its session before it (file order), the mean of the answers' best scores.
_DUCKDB_FAQ = """
WITH events AS (
  SELECT filename, row_number() OVER () AS line, session_id, message_type,
         lower(trim(regexp_replace(message_content, '\\s+', ' ', 'g'))) AS question,
         CASE WHEN message_type = 'assistant' THEN list_max(retrieval_info.top_scores) END AS best
  FROM read_json({files}, columns = {{session_id: 'VARCHAR', message_type: 'VARCHAR', message_content: 'VARCHAR',
       retrieval_info: 'STRUCT(top_scores DOUBLE[])'}}, format = 'newline_delimited', filename = true)),
paired AS (
  SELECT message_type, best,
         last_value(CASE WHEN message_type = 'user' THEN question END IGNORE NULLS)
           OVER (PARTITION BY filename, session_id ORDER BY line) AS asked
  FROM events)
SELECT asked, count(*) FILTER (message_type = 'user') AS n, avg(best) AS mean_best
FROM paired WHERE asked IS NOT NULL GROUP BY asked ORDER BY n DESC, asked LIMIT 20
"""


def duckdb_faq(paths: list[Path]) -> list[tuple[Any, ...]]:
    """The 20 most asked exact questions with their answers' mean best score, from the raw files."""
    conn = duckdb.connect()
    try:
        files = "[" + ", ".join(f"'{path}'" for path in paths) + "]"
        return conn.execute(_DUCKDB_FAQ.format(files=files)).fetchall()
    finally:
        conn.close()


def rss_mb(pid: int) -> float:
    """A process's resident set size (Linux ``/proc``), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _get(url: str) -> tuple[float, Any]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=600) as resp:
        body = msgspec.json.decode(resp.read())
    return (time.perf_counter() - started) * 1000, body


def run(days: int, per_day: int, tail: float, root: Path, repeat: int) -> list[str]:
    """The whole benchmark; returns the report lines."""
    settings = Settings.for_data_dir(root / "data", user_hash_secret="bench-secret-0123456789abcdef")
    # Ending today: the analytics API warms up the last 7 and 30 days.
    last = datetime.now(UTC).date()
    all_days = date_range(last - timedelta(days=days - 1), last)
    logs, feedback = template_day(per_day, tail)
    started = time.perf_counter()
    size = write_days(settings, all_days, logs, feedback)
    out = [f"FAQ benchmark: {days} days x {per_day:,} events a day ({days * per_day:,} events, "
           f"{size / 1e6:,.0f} MB written in {time.perf_counter() - started:.1f} s; tail of new text {tail:.0%})"]
    layout = StorageLayout.from_settings(settings)
    started = time.perf_counter()
    report = rebuild(settings.db_path, layout, all_days[0], last)
    out.append(f"rebuild-stats (usage, quality and FAQ rows): {time.perf_counter() - started:.1f} s, "
               f"{report.events:,} events")
    with contextlib.closing(sqlite3.connect(reader_uri(settings.db_path), uri=True)) as conn:
        (rows, distinct) = conn.execute(
            "SELECT count(*), count(DISTINCT question_key) FROM faq_questions").fetchone()
        timings = []
        for _ in range(2):
            started = time.perf_counter()
            grouped = compute_groups(conn, None, all_days[0], last)
            timings.append(time.perf_counter() - started)
    out.append(f"grouping {days} days: {rows:,} question rows, {distinct:,} distinct questions into "
               f"{len(grouped.groups):,} groups: {timings[0]:.1f} s with Kiwi cold (model load included), "
               f"{timings[1]:.1f} s again (analysis cached, as after a data change)")
    clear_cache()
    spans = sorted({s for s in (1, 7, 30) if s < days} | {days})
    window = {s: {"date_from": (last - timedelta(days=s - 1)).isoformat(), "date_to": last.isoformat()} for s in spans}
    out += ["", "| request | cold ms (first request, no warm-up) | after the warm-up ms | warm p50 ms | warm p95 ms |",
            "| --- | --- | --- | --- | --- |"]
    queries = {span: "&".join(f"{k}={v}" for k, v in window[span].items()) for span in spans}
    cold: dict[str, float] = {}
    after: dict[str, float] = {}
    whole = f"/api/analytics/quality?{queries[days]}"
    # Without the warm-up (CHATLOG_FAQ_WARMUP=false) each server starts with nothing cached:
    # the first FAQ request of a range groups it; the quality answer does not wait for it.
    with analytics_process(settings, {"CHATLOG_FAQ_WARMUP": "false"}) as (url, pid):
        time.sleep(1)
        rss_cold = rss_mb(pid)
        cold[whole], first = _get(f"{url}{whole}")
        started = time.perf_counter()
        while _get(f"{url}{whole}")[1]["knowledge_gaps_pending"]:
            time.sleep(0.1)
        gaps_after = time.perf_counter() - started
        rss_grouped = rss_mb(pid)
    with analytics_process(settings, {"CHATLOG_FAQ_WARMUP": "false"}) as (url, _):
        for span in reversed(spans):
            cold[f"/api/analytics/faq?{queries[span]}"], _ = _get(f"{url}/api/analytics/faq?{queries[span]}")
    started = time.perf_counter()
    with analytics_process(settings) as (url, pid):
        ready = time.perf_counter() - started
        while _get(f"{url}{whole}")[1]["knowledge_gaps_pending"]:  # the warm-up's own range: no extra work
            time.sleep(0.1)
        warmed = time.perf_counter() - started
        rss_warm = rss_mb(pid)
        for span in reversed(spans):
            for path in ("/api/analytics/faq", "/api/analytics/quality"):
                after[f"{path}?{queries[span]}"], _ = _get(f"{url}{path}?{queries[span]}")
        requests = [(path, window[span]) for span in spans for path in ("/api/analytics/faq", "/api/analytics/quality")]
        latencies = asyncio.run(http_latencies(url, requests, repeat))
        with contextlib.closing(connect_writer_sync(settings.db_path)) as conn, conn:
            conn.execute("UPDATE ingest_offsets SET lines = lines + 1 WHERE day = ?", (last.isoformat(),))
        changed, _ = _get(f"{url}/api/analytics/faq?{queries[days]}")  # stale: served while it regroups
    out.append(f"| {whole.split('?')[0]} ({days} days, first answer: gaps pending={first['knowledge_gaps_pending']}; "
               f"gaps {gaps_after:.1f} s later) | {cold[whole]:.0f} | {after[whole]:.0f} | | |")
    faq_cold_whole = cold[f"/api/analytics/faq?{queries[days]}"]
    for name, (p50, p95, _) in sorted(latencies.items()):
        out.append(f"| {name} | {cold.get(name, float('nan')):.0f} | {after.get(name, float('nan')):.0f} "
                   f"| {p50:.2f} | {p95:.2f} |")
    duck_times = []
    exact: list[tuple[Any, ...]] = []
    for _ in range(2):
        started = time.perf_counter()
        exact = duckdb_faq(layout.readable_between(Stream.LOGS, all_days[0], last))
        duck_times.append((time.perf_counter() - started) * 1000)
    duck = p(duck_times, 0.5)
    key = f"/api/analytics/faq?{'&'.join(f'{k}={v}' for k, v in window[days].items())}"
    warm50, warm95, body = latencies[key]
    out.append(f"| DuckDB over the raw files, {days} days (exact text, no paraphrase grouping) | {duck:.0f} | | | |")
    out += [
        "",
        f"warm-up: /healthz answered {ready:.1f} s after the start, the {days}-day range grouped "
        f"{warmed:.1f} s after it; {days}-day FAQ just after a data change (stale, regrouped in the background): "
        f"{changed:.0f} ms",
        f"analytics RSS: {rss_cold:.0f} MB idle without the warm-up, {rss_grouped:.0f} MB after grouping "
        f"{days} days on demand, {rss_warm:.0f} MB after the warm-up (Kiwi loaded, 7 and 30 days grouped)",
        f"{days}-day FAQ warm p95 {warm95:.1f} ms (target <= 1,000 ms: {'met' if warm95 <= 1000 else 'MISSED'}); "
        f"cold {faq_cold_whole / 1000:.1f} s; DuckDB / warm p50: {duck / warm50:.0f}x, DuckDB / cold: "
        f"{duck / faq_cold_whole:.2f}x",
        f"top FAQ entry: {body['items'][0]['question']!r} x {body['items'][0]['count']:,} "
        f"({len(body['items'][0]['variants'])} variants); DuckDB's top exact text: {exact[0][0]!r} x {exact[0][1]:,}",
    ]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--per-day", type=int, default=100_000)
    parser.add_argument("--tail", type=float, default=0.03, help="share of questions that are new text every day")
    parser.add_argument("--repeat", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="chatlog-faq-bench-", ignore_cleanup_errors=True) as root:
        lines = run(args.days, args.per_day, args.tail, Path(root), args.repeat)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
