"""Analytics benchmark: the statistics API against DuckDB and pandas over the raw day files.

Run: ``python -m bench.analytics`` (default 90 days x 100,000 events; ``--days`` and
``--per-day`` scale it down). One run:

1. writes the days straight into day files (one generated day, re-dated and re-keyed
   per day with byte replacements) and marks them applied in ``ingest_offsets``, as the
   ingestor leaves them;
2. times ``rebuild-stats`` over every day, and DuckDB's ``read_json`` over the same files;
3. starts ``python -m analytics_api`` and times summary and timeline over HTTP for 1, 7,
   30 and 90-day ranges, beside DuckDB answering the same summary from the raw files and
   pandas ``read_json`` as the guide does (pandas past 7 days is extrapolated per day);
4. measures the distinct-session alternatives on the same database;
5. prints everything and writes ``docs/analytics-bench.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import io
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import duckdb
import msgspec
import pandas as pd
import pyarrow as pa
import pyarrow.json as pj

from chat_statistics.rebuild.aggregate import DayRows, aggregate_day
from chat_statistics.rebuild.frames import complete_bytes, parse_lines
from chat_statistics.rebuild.reach import recompute_reach
from chat_statistics.rebuild.run import rebuild, rebuild_day
from chat_statistics.top_queries import QUERY_ROWS_PER_HOUR
from shared.db import connect_writer_sync
from shared.layout import StorageLayout, Stream, date_range
from shared.settings import Settings

COLLECTIONS = ("hr-docs", "it-helpdesk", "legal-kb", "finance", "onboarding")
WEIGHTS = (40, 30, 15, 10, 5)
TEMPLATE_DAY = "2000-01-01"
RANGES = (1, 7, 30, 90)
DOC = Path(__file__).resolve().parent.parent / "docs" / "analytics-bench.md"


def template_day(per_day: int, seed: int = 7) -> bytes:
    """One day of stored records (``LogRecord`` JSON lines) dated TEMPLATE_DAY, UTC."""
    rng = random.Random(seed)
    frequent = [
        f"How do I {verb} my {thing}?"
        for verb in ("reset", "renew", "change", "find", "cancel")
        for thing in ("password", "vpn token", "leave request", "expense claim", "badge", "laptop")
    ]
    frequent += [f"{topic} 규정 알려주세요" for topic in ("연차", "재택근무", "출장비", "복지포인트", "보안")]
    lines: list[bytes] = []
    encoder = msgspec.json.Encoder()
    seconds = sorted(rng.uniform(0, 86399) for _ in range(per_day // 2))
    session = ""
    left = 0
    for index, second in enumerate(seconds):
        if left == 0:
            left = rng.randint(1, 8)
            # A fifth of sessions belong to returning users whose ids repeat every day.
            session = f"R{rng.randrange(5000)}" if rng.random() < 0.2 else f"S{index}"
            collection = rng.choices(COLLECTIONS, WEIGHTS)[0]
        left -= 1
        at = f"{TEMPLATE_DAY}T{time.strftime('%H:%M:%S', time.gmtime(second))}.{int(second % 1 * 1e6):06d}Z"
        if rng.random() < 0.7:
            text = frequent[min(int(rng.paretovariate(1.2)) - 1, len(frequent) - 1)]
            text = text.upper() if rng.random() < 0.05 else text
        else:
            text = f"question about case {rng.randrange(10**6)}"
        base = {"session_id": session, "conversation_id": session, "collection_name": collection}
        user = {
            "log_id": f"L{2 * index}",
            **base,
            "message_type": "user",
            "message_content": text,
            "created_at": at,
        }
        answer: dict[str, Any] = {
            "log_id": f"L{2 * index + 1}",
            **base,
            "message_type": "assistant",
            "message_content": "규정에 따르면 인사 시스템에서 신청합니다. See the HR handbook, section 4.",
            "created_at": at,
            "llm_model": "gpt-4o-mini",
            "performance": {
                "response_time_ms": int(rng.lognormvariate(7.0, 0.6)),
                "token_count": rng.randrange(50, 1500),
                "retrieval_time_ms": rng.randrange(20, 400),
            },
        }
        if rng.random() < 0.03:
            answer["status"] = "error"
        if rng.random() < 0.04:
            answer["is_regeneration"] = True
        lines.append(encoder.encode(user) + b"\n")
        lines.append(encoder.encode(answer) + b"\n")
    return b"".join(lines)


def write_days(settings: Settings, days: list[date], template: bytes) -> int:
    """Write every day file and mark its lines applied; return bytes written."""
    layout = StorageLayout.from_settings(settings)
    layout.ensure_dirs()
    lines = template.count(b"\n")
    written = 0
    for number, day in enumerate(days):
        data = template.replace(f'"created_at":"{TEMPLATE_DAY}T'.encode(), f'"created_at":"{day}T'.encode())
        data = data.replace(b'"log_id":"L', f'"log_id":"D{number}L'.encode())
        data = data.replace(b'_id":"S', f'_id":"D{number}S'.encode())  # session_id and conversation_id
        layout.day_path(Stream.LOGS, day).write_bytes(data)
        written += len(data)
    with contextlib.closing(connect_writer_sync(settings.db_path)) as conn:
        conn.executemany(
            "INSERT OR REPLACE INTO ingest_offsets (stream, day, lines) VALUES ('data', ?, ?)",
            [(day.isoformat(), lines) for day in days],
        )
    return written


_COLUMNS = (
    "{session_id: 'VARCHAR', collection_name: 'VARCHAR', message_type: 'VARCHAR', "
    "message_content: 'VARCHAR', created_at: 'VARCHAR', status: 'VARCHAR', is_regeneration: 'BOOLEAN', "
    "performance: 'STRUCT(response_time_ms BIGINT, token_count BIGINT)'}"
)


def duckdb_rollup(paths: list[Path], detect: bool = False) -> float:
    """Seconds for DuckDB to read the files and aggregate per collection and hour.

    ``detect`` lets DuckDB infer the schema (what a plain ``read_json(files)`` does)
    instead of being told the columns.
    """
    files = ", ".join(f"'{p}'" for p in paths)
    source = (
        f"read_json([{files}])"
        if detect
        else (f"read_json([{files}], format = 'newline_delimited', columns = {_COLUMNS})")
    )
    con = duckdb.connect()
    started = time.perf_counter()
    con.execute(
        f"""SELECT collection_name, substr(CAST(created_at AS VARCHAR), 1, 13) AS hour,
                   count(*) FILTER (WHERE message_type = 'user'), count(DISTINCT session_id),
                   sum(performance.token_count), sum(performance.response_time_ms),
                   count(*) FILTER (WHERE status = 'error'), count(*) FILTER (WHERE is_regeneration)
            FROM {source} GROUP BY ALL"""
    ).fetchall()
    seconds = time.perf_counter() - started
    con.close()
    return seconds


# The other reader the issue allows, as the rebuild used it before: pyarrow's JSON reader
# with an explicit schema of the needed fields, timed on one thread for a per-CPU figure.
_PYARROW_READ = pj.ReadOptions(block_size=8 << 20, use_threads=False)
_PYARROW_PARSE = pj.ParseOptions(
    explicit_schema=pa.schema(
        [
            *((name, pa.string()) for name in ("log_id", "session_id", "conversation_id", "collection_name")),
            *((name, pa.string()) for name in ("message_type", "message_content", "created_at", "status")),
            ("performance", pa.struct([("response_time_ms", pa.int64()), ("token_count", pa.int64())])),
            ("is_regeneration", pa.bool_()),
        ]
    ),
    unexpected_field_behavior="ignore",
)


def rebuild_parts(settings: Settings, day: date) -> dict[str, float]:
    """Seconds of each rebuild stage for one day, alone (one process, no overlap, warm), and of reach.

    The day's rows are written again as they are (replacing identical rows). ``reach_table``
    is the distinct-session pass reading the activity table back, as a partial rebuild
    does; a full rebuild relinks from the activity its workers returned (in the report).
    """
    layout = StorageLayout.from_settings(settings)
    path = layout.day_path(Stream.LOGS, day)
    # Once untimed first, so that caches and memory are as warm as in a worker after its first day.
    aggregate_day(parse_lines(complete_bytes(path), layout.tz), day, finalise=True)
    started = time.perf_counter()
    data = complete_bytes(path)
    read = time.perf_counter() - started
    columns = parse_lines(data, layout.tz)
    parsed = time.perf_counter() - started - read
    rows = aggregate_day(columns, day, finalise=True)
    aggregated = time.perf_counter() - started - read - parsed
    started = time.perf_counter()
    pj.read_json(io.BytesIO(data), read_options=_PYARROW_READ, parse_options=_PYARROW_PARSE)
    pyarrow_read = time.perf_counter() - started
    with contextlib.closing(connect_writer_sync(settings.db_path)) as conn:
        (applied,) = conn.execute(
            "SELECT lines FROM ingest_offsets WHERE stream = 'data' AND day = ?", (day.isoformat(),)
        ).fetchone()
        ready: Future[DayRows] = Future()
        ready.set_result(rows)
        started = time.perf_counter()
        rebuild_day(conn, layout.tz, day, path, True, (applied, ready))
        written = time.perf_counter() - started
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        recompute_reach(conn, date(1970, 1, 1))
        conn.execute("COMMIT")
        reach = time.perf_counter() - started
    return {
        "read": read,
        "parse": parsed,
        "aggregate": aggregated,
        "write": written,
        "reach_table": reach,
        "pyarrow": pyarrow_read,
        "mb": len(data) / 1e6,
        "rows": len(rows.hourly) + len(rows.overall) + len(rows.daily) + len(rows.queries) + len(rows.places),
    }


def duckdb_summary(paths: list[Path]) -> dict[str, Any]:
    """The summary's figures straight from the raw files (lower-case + whitespace, no NFKC)."""
    files = ", ".join(f"'{p}'" for p in paths)
    con = duckdb.connect()
    (row,) = con.execute(
        f"""WITH ev AS MATERIALIZED (
                SELECT * FROM read_json([{files}], format = 'newline_delimited', columns = {_COLUMNS}))
            SELECT count(*) FILTER (WHERE message_type = 'user'), count(DISTINCT session_id),
                   sum(performance.token_count) FILTER (WHERE message_type = 'assistant'),
                   avg(performance.response_time_ms) FILTER (WHERE message_type = 'assistant'),
                   quantile_disc(performance.response_time_ms, [0.5, 0.95, 0.99])
                       FILTER (WHERE message_type = 'assistant'),
                   count(*) FILTER (WHERE status = 'error'), count(*) FILTER (WHERE is_regeneration),
                   (SELECT list(q ORDER BY n DESC) FROM (
                        SELECT lower(regexp_replace(trim(message_content), '\\s+', ' ', 'g')) AS q,
                               count(*) AS n
                        FROM ev WHERE message_type = 'user' GROUP BY 1 ORDER BY 2 DESC LIMIT 10))
            FROM ev"""
    ).fetchall()
    con.close()
    return {
        "total_queries": row[0],
        "unique_sessions": row[1],
        "total_tokens": row[2],
        "p50": row[4][0],
        "p95": row[4][1],
        "p99": row[4][2],
        "errors": row[5],
    }


def pandas_summary(paths: list[Path]) -> dict[str, Any]:
    """The guide's §4.3 way: pd.read_json per day file, concat, then the figures."""
    df = pd.concat([pd.read_json(p, lines=True) for p in paths], ignore_index=True)
    assistant = df[df["message_type"] == "assistant"]
    times = assistant["performance"].str.get("response_time_ms").dropna()
    return {
        "total_queries": int((df["message_type"] == "user").sum()),
        "unique_sessions": int(df["session_id"].nunique()),
        "p95": float(times.quantile(0.95)),
        "top": df.loc[df["message_type"] == "user", "message_content"].str.lower().value_counts().head(10),
    }


def _remember(into: dict[str, Any], paths: list[Path]) -> None:
    into.update(duckdb_summary(paths))


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    """Wall times (ms) of ``repeat`` calls."""
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def p(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))]


@contextlib.contextmanager
def analytics_server(settings: Settings) -> Iterator[str]:
    """``python -m analytics_api`` on a free port, stopped afterwards."""
    with analytics_process(settings) as (url, _):
        yield url


@contextlib.contextmanager
def analytics_process(settings: Settings, env: dict[str, str] | None = None) -> Iterator[tuple[str, int]]:
    """``python -m analytics_api`` on a free port with ``env`` added: its URL and pid."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "CHATLOG_DATA_DIR": str(settings.data_dir),
        "CHATLOG_API_PORT": str(port),
        "CHATLOG_LOG_LEVEL": "WARNING",
        **(env or {}),
    }
    proc = subprocess.Popen([sys.executable, "-m", "analytics_api"], env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("analytics API did not start") from None
                time.sleep(0.05)
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(30)


async def http_latencies(url: str, requests: list[tuple[str, dict[str, str]]], repeat: int) -> dict[str, Any]:
    """p50/p95 (ms) of each request, sent one at a time over a keep-alive connection."""
    out: dict[str, Any] = {}
    async with aiohttp.ClientSession(url) as session:
        for name, params in requests:
            for _ in range(5):  # warm-up
                async with session.get(name, params=params) as resp:
                    await resp.read()
            times = []
            body: Any = None
            for _ in range(repeat):
                started = time.perf_counter()
                async with session.get(name, params=params) as resp:
                    body = await resp.json()
                    assert resp.status == 200, body
                times.append((time.perf_counter() - started) * 1000)
            out[f"{name}?{'&'.join(f'{k}={v}' for k, v in params.items())}"] = (
                p(times, 0.5),
                p(times, 0.95),
                body,
            )
    return out


def distinct_alternatives(db: Path, first: date, last: date) -> dict[str, Any]:
    """ms for the distinct sessions of a range: reach rows (used) vs COUNT(DISTINCT) over activity."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        a, b = first.isoformat(), last.isoformat()
        reach = timed(
            lambda: conn.execute(
                "SELECT sum(sessions) FROM chat_statistics_reach WHERE scope = '' AND date BETWEEN ? AND ? "
                "AND prev_date < ?",
                (a, b, a),
            ).fetchall(),
            20,
        )
        distinct = timed(
            lambda: conn.execute(
                "SELECT count(DISTINCT session_id) FROM chat_statistics_sessions WHERE date BETWEEN ? AND ?",
                (a, b),
            ).fetchall(),
            3,
        )
        rows = conn.execute("SELECT count(*) FROM chat_statistics_sessions").fetchone()[0]
        sizes = dict(
            conn.execute(
                "SELECT name, sum(pgsize) / 1e6 FROM dbstat WHERE name LIKE 'chat_statistics%' GROUP BY name"
            ).fetchall()
        )
    tables: dict[str, float] = {}
    for name, mb in sizes.items():
        table = next((t for t in sorted(_TABLES, key=len, reverse=True) if name.startswith(t)), name)
        tables[table] = tables.get(table, 0.0) + mb
    return {
        "reach_ms": p(reach, 0.5),
        "distinct_ms": p(distinct, 0.5),
        "activity_rows": rows,
        "tables": tables,
    }


_TABLES = (
    "chat_statistics",
    "chat_statistics_overall",
    "chat_statistics_daily",
    "chat_statistics_queries",
    "chat_statistics_sessions",
    "chat_statistics_reach",
)


def _fmt(ms: float) -> str:
    return f"{ms:,.1f}" if ms < 1000 else f"{ms:,.0f}"


def run(days: int, per_day: int, root: Path, pandas_days: int) -> list[str]:
    """The whole benchmark; return the report's markdown lines."""
    settings = Settings.for_data_dir(root / "data")
    layout = StorageLayout.from_settings(settings)
    last = layout.today()
    all_days = date_range(last - timedelta(days=days - 1), last)
    started = time.perf_counter()
    template = template_day(per_day)
    size = write_days(settings, all_days, template)
    generated = time.perf_counter() - started
    events = template.count(b"\n") * days
    paths = [layout.day_path(Stream.LOGS, d) for d in all_days]
    print(f"wrote {days} days, {events:,} events, {size / 1e9:.2f} GB in {generated:.1f} s", flush=True)

    before = os.times()
    report = rebuild(settings.db_path, layout, all_days[0], last, progress=sys.stderr.isatty())
    after = os.times()
    cpu = {
        "writer": after.user - before.user + after.system - before.system,
        "workers": after.children_user - before.children_user + after.children_system - before.children_system,
    }
    duck = min(duckdb_rollup(paths) for _ in range(2))
    duck_detect = min(duckdb_rollup(paths, detect=True) for _ in range(2))
    parts = rebuild_parts(settings, all_days[0])
    print(
        f"rebuild-stats {report.seconds:.1f} s, DuckDB read_json {duck:.1f} s (schema detected {duck_detect:.1f} s)",
        flush=True,
    )

    ranges = [n for n in RANGES if n <= days]
    requests: list[tuple[str, dict[str, str]]] = []
    for n in ranges:
        first = (last - timedelta(days=n - 1)).isoformat()
        requests.append(("/api/analytics/summary", {"date_from": first, "date_to": last.isoformat()}))
        requests.append(
            (
                "/api/analytics/summary",
                {"date_from": first, "date_to": last.isoformat(), "collection_name": "hr-docs"},
            )
        )
        requests.append(("/api/analytics/timeline", {"period": "daily", "days": str(n)}))
        requests.append(("/api/analytics/timeline", {"period": "hourly", "days": str(n)}))
    with analytics_server(settings) as url:
        api = asyncio.run(http_latencies(url, requests, repeat=200))
    duck_ms: dict[int, list[float]] = {}
    pandas_ms: dict[int, float] = {}
    duck_answer: dict[str, Any] = {}
    for n in ranges:
        chosen = paths[-n:]
        duck_ms[n] = timed(functools.partial(_remember, duck_answer, chosen), 5 if n < 30 else 2)
        if n <= pandas_days:
            pandas_ms[n] = min(timed(functools.partial(pandas_summary, chosen), 1))
        print(f"{n}-day range: DuckDB p50 {p(duck_ms[n], 0.5):,.0f} ms", flush=True)
    per_pandas_day = max(pandas_ms[k] / k for k in pandas_ms) if pandas_ms else 0.0
    alternatives = distinct_alternatives(settings.db_path, all_days[0], last)
    db_mb = settings.db_path.stat().st_size / 1e6
    elapsed = time.perf_counter() - started
    return _markdown(locals())


def _met(ratio: float) -> str:
    return "met" if ratio >= 0.5 else "not met"


def _rebuild_markdown(v: dict[str, Any]) -> list[str]:
    """The rebuild section: the table, both DuckDB ratios, the stages and where the CPU went."""
    days, events, report, duck, detect = v["days"], v["events"], v["report"], v["duck"], v["duck_detect"]
    parts, cpu, mb = v["parts"], v["cpu"], v["size"] / 1e6
    pandas_s = v["pandas_ms"][1] / 1000 * days
    cpus = os.cpu_count() or 1
    busy = (cpu["workers"] + cpu["writer"]) / report.seconds
    per_day = {k: parts[k] * 1000 for k in ("read", "parse", "aggregate", "write")}
    decode_floor = days * (parts["read"] + parts["parse"]) / cpus
    return [
        "## Rebuild (`rebuild-stats` over every day)",
        "",
        "| what | seconds | events/s | MB/s |",
        "| --- | ---: | ---: | ---: |",
        f"| `rebuild-stats`: msgspec read in {report.workers} worker processes, numpy aggregation, every "
        f"table written | {report.seconds:.1f} | {events / report.seconds:,.0f} | {mb / report.seconds:,.0f} |",
        f"| DuckDB `read_json` (columns given) + GROUP BY collection, hour | {duck:.1f} | "
        f"{events / duck:,.0f} | {mb / duck:,.0f} |",
        f"| DuckDB `read_json` (schema detected) + the same GROUP BY | {detect:.1f} | "
        f"{events / detect:,.0f} | {mb / detect:,.0f} |",
        f"| pandas `read_json` per day file, the guide's way (1 day timed, x{days}) | "
        f"{pandas_s:.1f} | {events / pandas_s:,.0f} | {mb / pandas_s:,.0f} |",
        "",
        f"Target: rebuild throughput >= 0.50 of DuckDB's `read_json`. rebuild / DuckDB (columns given) = "
        f"**{duck / report.seconds:.2f}** ({_met(duck / report.seconds)}; it would take {2 * duck:.1f} s); "
        f"rebuild / DuckDB (schema detected, what a plain `read_json(files)` does) = "
        f"**{detect / report.seconds:.2f}** ({_met(detect / report.seconds)}; {2 * detect:.1f} s); rebuild / "
        f"pandas read_json = **{pandas_s / report.seconds:.1f}x**. Both DuckDB figures are the best of two runs.",
        "",
        f"One day alone, in one process, stage by stage: read {per_day['read']:.0f} ms, msgspec decode to "
        f"columns {per_day['parse']:.0f} ms ({parts['mb'] / parts['parse']:,.0f} MB/s), aggregation "
        f"{per_day['aggregate']:.0f} ms, replacing the day's rows in SQLite {per_day['write']:.0f} ms. Relinking "
        f"distinct sessions over all {days} days took {report.reach_seconds:.2f} s from the activity the "
        f"workers returned ({parts['reach_table']:.1f} s when read back from the activity table, as a "
        "partial rebuild does).",
        "",
        f"Where the time goes: the worker processes used {cpu['workers']:.1f} CPU-seconds and the writing "
        f"process {cpu['writer']:.1f}, so {busy:.1f} of {cpus} CPUs were busy throughout. Reading and "
        f"decoding alone, at the one-process rate above, need {decode_floor:.1f} s on {cpus} CPUs "
        f"({decode_floor / duck:.1f}x DuckDB's whole columns-given run); aggregating and writing every "
        f"table (here {parts['rows']:,.0f} rows a day into the statistics, activity and query tables, "
        "with their indexes), which DuckDB's GROUP BY does not do, add the rest. msgspec is the faster "
        f"of the two readers the issue allows: pyarrow's JSON reader (explicit schema, one thread) takes "
        f"{parts['pyarrow'] * 1000:.0f} ms for the same day before a single column is coded.",
        "",
    ]


def _markdown(v: dict[str, Any]) -> list[str]:
    """The printed and written report."""
    days, per_day, events = v["days"], v["per_day"], v["events"]
    api, ranges, last, alt = v["api"], v["ranges"], v["last"], v["alternatives"]
    mb = v["size"] / 1e6
    lines = [
        "# Analytics benchmark: statistics API vs DuckDB and pandas over the raw day files",
        "",
        f"Command: `.venv/bin/python -m bench.analytics --days {days} --per-day {per_day}` "
        f"(this run: {v['elapsed']:.0f} s end to end; `--days`/`--per-day` scale it down). Machine: "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, pandas {pd.__version__}, "
        f"pyarrow {pa.__version__}, DuckDB {duckdb.__version__}, SQLite {sqlite3.sqlite_version}.",
        "",
        f"Data: {days} days x {per_day:,} events = {events:,} stored events, {mb / 1e3:.2f} GB of plain "
        f"JSONL (written in {v['generated']:.0f} s: one generated day, re-dated and re-keyed per day with "
        "byte replacements), 5 collections, ~11,000 sessions a day of which a fifth belong to users "
        "who return every day, 70% of queries from a Zipf-distributed set and 30% unique, log-normal "
        "response times. UTC. The files sit in the page cache for every reader.",
        "",
        *_rebuild_markdown(v),
        "## Queries (HTTP to `python -m analytics_api`, one request at a time, 200 each after warm-up; ms)",
        "",
        "| range | summary p50 | summary p95 | summary hr-docs p95 | daily timeline p95 "
        "| hourly timeline p95 | DuckDB summary p50 | pandas (guide) | DuckDB p50 / ours p95 |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for n in ranges:
        first = (last - timedelta(days=n - 1)).isoformat()
        base = f"date_from={first}&date_to={last.isoformat()}"
        s50, s95, _ = api[f"/api/analytics/summary?{base}"]
        _, c95, _ = api[f"/api/analytics/summary?{base}&collection_name=hr-docs"]
        _, d95, _ = api[f"/api/analytics/timeline?period=daily&days={n}"]
        _, h95, _ = api[f"/api/analytics/timeline?period=hourly&days={n}"]
        duck50 = p(v["duck_ms"][n], 0.5)
        pandas = v["pandas_ms"].get(n)
        pandas_text = f"{_fmt(pandas)}" if pandas else f"~{_fmt(v['per_pandas_day'] * n)} (extrapolated)"
        lines.append(
            f"| {n} d | {s50:.2f} | {s95:.2f} | {c95:.2f} | {d95:.2f} | {h95:.2f} | {_fmt(duck50)} | "
            f"{pandas_text} | {duck50 / s95:,.0f}x |"
        )
    widest = max(ranges)
    first = (last - timedelta(days=widest - 1)).isoformat()
    ours = api[f"/api/analytics/summary?date_from={first}&date_to={last.isoformat()}"][2]
    theirs = v["duck_answer"]
    ours_p95 = ours["p95_response_time_ms"]
    same = (ours["total_queries"], ours["unique_sessions"]) == (
        theirs["total_queries"],
        theirs["unique_sessions"],
    )
    lines += [
        "",
        f"Targets: summary p95 <= 20 ms for {widest} days: **{'met' if s95 <= 20 else 'not met'}** "
        f"({s95:.2f} ms); >= 100x faster than DuckDB on the raw files: "
        f"**{'met' if duck50 / s95 >= 100 else 'not met'}** ({duck50 / s95:,.0f}x).",
        "",
        f"Same answer, {widest}-day summary: total_queries {ours['total_queries']:,} (DuckDB "
        f"{theirs['total_queries']:,}), unique_sessions {ours['unique_sessions']:,} (DuckDB "
        f"{theirs['unique_sessions']:,}): {'equal' if same else 'DIFFERENT'}; p95 {ours_p95} "
        f"ms vs exact {theirs['p95']} ms ({abs(ours_p95 - theirs['p95']) / theirs['p95']:.3%} "
        "off; the sketch bounds it at 0.5%).",
        "",
        "## Storage",
        "",
        f"Statistics database after the rebuild: {v['db_mb']:.0f} MB ({v['db_mb'] / days:.1f} MB a day, "
        f"{v['db_mb'] / mb:.0%} of the raw logs). By table, MB:",
        "",
        "| " + " | ".join(alt["tables"]) + " |",
        "| " + " | ".join("---:" for _ in alt["tables"]) + " |",
        "| " + " | ".join(f"{size:.0f}" for size in alt["tables"].values()) + " |",
        "",
        *DESIGN,
        "",
        f"Measured here, {widest}-day range over all collections: the reach rows answer in "
        f"{alt['reach_ms']:.2f} ms; `COUNT(DISTINCT session_id)` over the {alt['activity_rows']:,}-row "
        f"activity table takes {alt['distinct_ms']:,.0f} ms.",
    ]
    return lines


DESIGN = (
    "## Design choices",
    "",
    "**Rollups.** `chat_statistics` holds one row per (collection, date, hour) as the guide asks; "
    "`chat_statistics_overall` the same per (date, hour) over all collections and "
    "`chat_statistics_daily` one row per (collection or all, date). A summary reads one daily row "
    "per day of one scope, so its cost grows by one small row per day and never touches hourly "
    "rows or raw logs; a timeline reads one row per point, with p95 precomputed in the row.",
    "",
    "**Percentiles.** Each row holds a log-bucketed histogram of response times (integer bucket "
    "edges growing by 1%, one bucket per millisecond below 100 ms): merging is adding counts, and "
    "the nearest-rank p50/p95/p99 of any merge is within 0.5% of the exact value. A 90-day summary "
    "merges 90 sketches of about 1-2 KB each.",
    "",
    "**Exact distinct sessions.** `chat_statistics_sessions` records each (session, collection, "
    "date, hour) with events, which gives exact per-row unique counts. For ranges, "
    "`chat_statistics_reach` counts, per scope and date, the sessions active that date by the "
    "previous date they were active in that scope. The sessions of [a, b] are exactly those whose "
    "first active date inside the range has its previous date before a, so the answer is "
    "`sum(sessions) where date between a and b and prev_date < a`: a few rows a day, exact, and "
    "independent of the number of sessions. A mergeable sketch (HyperLogLog) was the alternative; "
    "at the 1% bound it needs 2^14 to 2^16 registers per row (12-64 KB) and still only bounds the "
    "error statistically, while the reach rows are exact and smaller. The live path keeps both "
    "tables current (a late event that re-links the next active date is diffed), the rebuild "
    "recomputes reach with one sort of the activity it has just written (read back from the activity "
    "table when only part of the stored days is rebuilt), and both give identical rows.",
    "",
    "**Top queries.** `chat_statistics_queries` holds exact counts per (collection, date, hour, "
    "normalised query) with the smallest original text (order-independent, so live and rebuild "
    "agree). Hourly rows keep their top 10 and daily rows their top 100, maintained incrementally: "
    "counts only grow, so the new top list is among the old one and the keys just counted. A range "
    "merges the daily top-100 lists, so a query outside every day's top 100 can be missed; with "
    "`top` <= 100 and a head-heavy distribution this does not change the answer in practice. When "
    "a day is finalised (the daily job, i.e. `rebuild-stats` of yesterday) its query rows are cut "
    f"to each hour's top {QUERY_ROWS_PER_HOUR} plus the day's top keys, which bounds storage.",
    "",
    "**Fresh and exactly once.** The ingestor applies statistics in the same SQLite transaction "
    "that advances the day files' line offsets, every 0.2 s, so an accepted event shows in every "
    "statistic well within a second and a crash replays exactly the lines not yet applied. Retried "
    "log_ids are dropped by the writer before they reach a file, so neither path sees them. The "
    "rebuild reads exactly the lines the offsets say were applied, which is why it can run beside "
    "a live ingestor and why live and rebuilt rows are equal.",
)


def main() -> int:
    """Run the benchmark, print the report and write docs/analytics-bench.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=90, help="days of data (default 90)")
    parser.add_argument("--per-day", type=int, default=100_000, help="events per day (default 100,000)")
    parser.add_argument(
        "--pandas-days",
        type=int,
        default=7,
        help="largest range pandas reads for real; longer ones are extrapolated (default 7)",
    )
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temporary one)")
    parser.add_argument("--no-doc", action="store_true", help="do not write docs/analytics-bench.md")
    args = parser.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="chatlog-analytics-bench-"))
    try:
        lines = run(args.days, args.per_day, root, args.pandas_days)
    finally:
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    if not args.no_doc:
        DOC.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
