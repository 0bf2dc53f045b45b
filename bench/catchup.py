"""Catch-up benchmark: the derived state's cold catch-up and the warm rebuild against DuckDB.

Run: ``python -m bench.catchup`` (default 10 days x 40,000 events; ``--days`` and
``--per-day`` scale it down). One run, on the same files:

1. writes the days straight into day files (one generated day of realistic stored
   records, re-dated and re-keyed per day), with an empty database: what ``chatlog
   restore``, a lost database or a first load leave;
2. times the cold catch-up: the derived state (``DerivedState``, everything the
   follower derives: sessions, statistics, retrieval quality, alert minutes,
   conversations) applying every line from nothing, in this process;
3. times the warm rebuild: ``rebuild-stats`` of every day once everything is applied;
4. times DuckDB's ``read_json`` + GROUP BY of the same hourly statistics over the same
   files (the baseline), and prints each time as a ratio of DuckDB's (higher is better:
   1.0 means as fast as DuckDB);
5. starts the ingestor (with its derived-state process) and the analytics API on the
   caught-up store, and samples their memory at rest (RSS and PSS, ``bench.ingest``'s
   sampler) once they are up and idle. Memory under load is ``python -m bench.ingest``'s.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import msgspec

from shared.layout import StorageLayout, Stream, date_range
from shared.settings import Settings

COLLECTIONS = ("hr-docs", "it-helpdesk", "legal-kb", "finance", "onboarding")
WEIGHTS = (40, 30, 15, 10, 5)
TEMPLATE_DAY = "2000-01-01"
QUESTIONS = (
    "연차 휴가는 어떻게 신청하나요?", "재택근무 규정 알려주세요", "VPN 접속이 안 됩니다",
    "How do I reset my password?", "법인카드 사용 한도는 얼마인가요?", "What is the parental leave policy?",
    "출장비 정산 기한이 언제인가요?", "How do I renew my vpn token?", "복지포인트 사용처 알려주세요",
)
ANSWER = (
    "사내 규정 제12조에 따르면 연차 휴가는 인사 시스템에서 신청하며, 팀장 승인 후 확정됩니다. "
    "According to the HR handbook, requests must be filed at least three days in advance."
)
TARGETS = {"cold catch-up": 0.2, "warm rebuild": 0.7}


def _hour_weights() -> list[float]:
    """A working-day curve: quiet nights, a morning and an afternoon peak."""
    return [0.5 if h < 7 or h > 21 else 3.0 if h in (10, 11, 14, 15, 16) else 1.5 for h in range(24)]


def template_day(per_day: int, seed: int = 17) -> bytes:
    """One day of stored records (``LogRecord`` JSON lines) dated TEMPLATE_DAY, UTC.

    Sessions of one to eight exchanges (question and answer) a few minutes apart; a fifth
    belong to returning users whose session ids repeat every day; answers carry model,
    parameters, retrieval scores and timings like ``tests.support.events.make_event``.
    """
    rng = random.Random(seed)
    encoder = msgspec.json.Encoder()
    hours = _hour_weights()
    lines: list[tuple[float, bytes]] = []
    exchanges = per_day // 2
    index = 0
    while index < exchanges:
        returning = rng.random() < 0.2
        session = f"R{rng.randrange(4000)}" if returning else f"S{index}"
        collection = rng.choices(COLLECTIONS, WEIGHTS)[0]
        user_hash = uuid.UUID(int=rng.getrandbits(128)).hex * 2
        second = rng.choices(range(24), hours)[0] * 3600 + rng.uniform(0, 3599)
        for _ in range(min(rng.randint(1, 8), exchanges - index)):
            second = min(second + rng.uniform(5, 240), 86399.0)
            at = f"{TEMPLATE_DAY}T{time.strftime('%H:%M:%S', time.gmtime(second))}.{int(second % 1 * 1e6):06d}+00:00"
            base: dict[str, Any] = {
                "session_id": session, "conversation_id": session, "collection_name": collection,
                "created_at": at, "user_hash": user_hash,
            }
            question = rng.choice(QUESTIONS) if rng.random() < 0.7 else f"question about case {rng.randrange(10**6)}"
            user = {"log_id": f"L{2 * index}", **base, "message_type": "user", "message_content": question}
            answer: dict[str, Any] = {
                "log_id": f"L{2 * index + 1}", **base, "message_type": "assistant", "message_content": ANSWER,
                "llm_model": "gpt-4o-mini", "reasoning_level": "medium",
                "llm_params": {"temperature": 0.7, "max_tokens": 2000, "top_p": 0.9},
                "retrieval_info": {
                    "query": question, "retrieved_count": 5, "reranking_used": True,
                    "top_scores": [round(rng.uniform(0.3, 0.95), 3) for _ in range(3)],
                },
                "retrieved_docs": [
                    {"doc_id": f"doc-{rng.randrange(500)}", "title": "인사 규정 / HR handbook", "score": 0.8}
                    for _ in range(2)
                ],
                "performance": {
                    "response_time_ms": int(rng.lognormvariate(7.0, 0.6)),
                    "token_count": rng.randrange(50, 1500),
                    "retrieval_time_ms": rng.randrange(20, 400),
                },
            }
            if rng.random() < 0.02:
                answer["status"] = "error"
            if rng.random() < 0.04:
                answer["is_regeneration"] = True
            lines.append((second, encoder.encode(user) + b"\n"))
            lines.append((second + 0.5, encoder.encode(answer) + b"\n"))
            index += 1
    # Stored in arrival order, as the writer appends them.
    return b"".join(line for _, line in sorted(lines, key=lambda item: item[0]))


def write_days(settings: Settings, days: list[date], template: bytes) -> int:
    """Write every day file (nothing applied yet); return bytes written."""
    layout = StorageLayout.from_settings(settings)
    layout.ensure_dirs()
    written = 0
    for number, day in enumerate(days):
        data = template.replace(f'"created_at":"{TEMPLATE_DAY}T'.encode(), f'"created_at":"{day}T'.encode())
        data = data.replace(b'"log_id":"L', f'"log_id":"D{number}L'.encode())
        data = data.replace(b'_id":"S', f'_id":"D{number}S'.encode())  # session_id and conversation_id
        path = layout.day_path(Stream.LOGS, day)
        path.write_bytes(data)
        path.chmod(0o640)
        written += len(data)
    return written


def duckdb_hourly(paths: list[Path]) -> float:
    """Seconds for DuckDB to read the files and compute the hourly statistics (told the columns)."""
    import duckdb

    files = ", ".join(f"'{p}'" for p in paths)
    columns = (
        "{session_id: 'VARCHAR', collection_name: 'VARCHAR', message_type: 'VARCHAR', "
        "message_content: 'VARCHAR', created_at: 'VARCHAR', status: 'VARCHAR', is_regeneration: 'BOOLEAN', "
        "performance: 'STRUCT(response_time_ms BIGINT, token_count BIGINT)'}"
    )
    con = duckdb.connect()
    started = time.perf_counter()
    con.execute(
        f"""SELECT collection_name, substr(created_at, 1, 13) AS hour, count(*),
                   count(*) FILTER (WHERE message_type = 'user'), count(DISTINCT session_id),
                   sum(performance.token_count), sum(performance.response_time_ms),
                   count(*) FILTER (WHERE status = 'error'), count(*) FILTER (WHERE is_regeneration)
            FROM read_json([{files}], format = 'newline_delimited', columns = {columns}, ignore_errors = true)
            GROUP BY ALL"""
    ).fetchall()
    seconds = time.perf_counter() - started
    con.close()
    return seconds


IDLE_SECONDS = 5.0


def _memory(pids: dict[str, int]) -> dict[str, tuple[float, float]]:
    """RSS and PSS (MB) of each named process (the ingestor with its derived-state child)."""
    import psutil

    out: dict[str, tuple[float, float]] = {}
    for name, pid in pids.items():
        proc = psutil.Process(pid)
        members = {"ingestor": [proc], "derived": proc.children(recursive=True)}.get(name, [proc])
        if name == "ingestor":
            out["derived"] = _sum(proc.children(recursive=True))
        out[name] = _sum(members)
    return out


def _sum(procs: list[Any]) -> tuple[float, float]:
    rss = pss = 0
    for proc in procs:
        info = proc.memory_full_info()
        rss, pss = rss + info.rss, pss + info.pss
    return rss / 2**20, pss / 2**20


def idle_memory(settings: Settings) -> dict[str, tuple[float, float]]:
    """The three services started on the store, sampled after IDLE_SECONDS at rest: name -> (RSS, PSS) MB."""
    import subprocess

    from bench.ingest import SECRET, _free_port, _wait_healthy

    ingest_port, api_port = _free_port(), _free_port()
    env = {
        **os.environ, "CHATLOG_DATA_DIR": str(settings.data_dir), "CHATLOG_INGEST_PORT": str(ingest_port),
        "CHATLOG_INGEST_SOCKET": "", "CHATLOG_API_PORT": str(api_port), "CHATLOG_USER_HASH_SECRET": SECRET,
        "CHATLOG_LOG_LEVEL": "WARNING",
    }
    ingestor = subprocess.Popen([sys.executable, "-m", "ingestor"], env=env)
    api = subprocess.Popen([sys.executable, "-m", "analytics_api"], env=env, stderr=subprocess.DEVNULL)
    try:
        _wait_healthy(f"http://127.0.0.1:{ingest_port}/healthz", ingestor)
        _wait_healthy(f"http://127.0.0.1:{api_port}/healthz", api)
        time.sleep(IDLE_SECONDS)
        return _memory({"ingestor": ingestor.pid, "analytics": api.pid})
    finally:
        for proc in (ingestor, api):
            proc.terminate()
            proc.wait(30)


def run(days: int, per_day: int, root: Path) -> dict[str, Any]:
    """The whole benchmark; return its figures."""
    settings = Settings.for_data_dir(root / "data")
    layout = StorageLayout.from_settings(settings)
    # Ending two days ago: at start the derived state reopens yesterday's and today's
    # conversations from their files, which would not be memory at rest.
    last = layout.today() - timedelta(days=2)
    all_days = date_range(last - timedelta(days=days - 1), last)
    template = template_day(per_day)
    size = write_days(settings, all_days, template)
    lines = template.count(b"\n") * days
    paths = [layout.day_path(Stream.LOGS, d) for d in all_days]
    print(f"wrote {days} days, {lines:,} events, {size / 1e6:,.0f} MB", flush=True)

    from ingestor.derived.state import catch_up_stopped  # after the store is written: its imports are not timed

    started, cpu = time.perf_counter(), time.process_time()
    applied = catch_up_stopped(settings, layout)
    cold, cold_cpu = time.perf_counter() - started, time.process_time() - cpu
    assert applied == lines, (applied, lines)
    print(f"cold catch-up: {cold:.1f} s ({lines / cold:,.0f} lines/s), {cold_cpu:.1f} s CPU", flush=True)

    from chat_statistics.rebuild.run import rebuild

    report = rebuild(settings.db_path, layout, all_days[0], last)
    warm = report.seconds
    print(f"warm rebuild: {warm:.1f} s ({lines / warm:,.0f} lines/s)", flush=True)

    duck = min(duckdb_hourly(paths) for _ in range(2))
    print(f"DuckDB read_json + GROUP BY: {duck:.2f} s", flush=True)
    with contextlib.closing(sqlite3.connect(settings.db_path)) as conn:
        (counted,) = conn.execute(
            "SELECT coalesce(sum(message_count), 0) FROM chat_statistics_daily WHERE scope = ''"
        ).fetchone()
    assert counted == lines, (counted, lines)
    memory = idle_memory(settings)
    return {
        "lines": lines, "mb": size / 1e6, "cold": cold, "cold_cpu": cold_cpu, "warm": warm, "duckdb": duck,
        "memory": memory,
    }


def report(figures: dict[str, Any]) -> list[str]:
    """The ratios against DuckDB, one line each."""
    duck = figures["duckdb"]
    out = [f"{figures['lines']:,.0f} events, {figures['mb']:,.0f} MB of day files, {os.cpu_count()} cores"]
    for name, key in (("cold catch-up", "cold"), ("warm rebuild", "warm")):
        ratio = duck / figures[key]
        met = "met" if ratio >= TARGETS[name] else "not met"
        out.append(
            f"{name}: {figures[key]:.2f} s, {ratio:.2f}x DuckDB's {duck:.2f} s (target >= {TARGETS[name]}x: {met})"
        )
    out.append(f"cold catch-up CPU time (every thread of the process): {figures['cold_cpu']:.1f} s")
    memory: dict[str, tuple[float, float]] = figures["memory"]
    rss = sum(r for r, _ in memory.values())
    pss = sum(p for _, p in memory.values())
    parts = ", ".join(f"{name} {r:.0f} MB RSS / {p:.0f} MB PSS" for name, (r, p) in memory.items())
    met = "met" if rss <= 100 else "not met"
    out.append(f"memory at rest: {parts}; together {rss:.0f} MB RSS, {pss:.0f} MB PSS (target <= 100 MB: {met})")
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--days", type=int, default=10, help="days of data (default 10)")
    parser.add_argument("--per-day", type=int, default=40_000, help="events per day (default 40,000)")
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temporary one)")
    args = parser.parse_args(argv)
    root = args.dir or Path(tempfile.mkdtemp(prefix="chatlog-catchup-bench-"))
    try:
        figures = run(args.days, args.per_day, root)
    finally:
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)
    print("\n" + "\n".join(report(figures)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
