"""The statistics oracle: generated events, and every figure the statistics should show for them.

``expected_summary`` and friends compute every figure independently of chatlog:
DuckDB over the raw generated events (pandas only converts instants to local time),
and a normalisation of queries written here from the contract's words.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
import unicodedata
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import pandas as pd
from aiohttp.test_utils import TestClient

from shared.settings import Settings
from tests.support.stores import rows

STAT_TABLES = (
    "chat_statistics",
    "chat_statistics_overall",
    "chat_statistics_daily",
    "chat_statistics_queries",
    "chat_statistics_sessions",
    "chat_statistics_reach",
)
COLLECTIONS = ("hr-docs", "it-helpdesk", "legal-kb")
# Variants of the same queries: case, spacing, full-width forms (NFKC) and Korean.
QUERY_VARIANTS = (
    ("How do I reset my password?", "how do i reset my password?", "  HOW do I   reset my password? "),
    ("ＶＰＮ 접속이 안 됩니다", "VPN 접속이 안 됩니다", "vpn  접속이 안 됩니다"),
    ("연차 휴가는 어떻게 신청하나요?",),
    ("What is the parental leave policy?", "what is the PARENTAL leave policy?"),
    ("법인카드 사용 한도는 얼마인가요?",),
    ("재택근무 규정 알려주세요", "재택근무\t규정 알려주세요"),
)


def generate(seed: int, now: datetime, count: int = 900, days: float = 4.0) -> list[dict[str, Any]]:
    """User/assistant events over the last ``days`` days, with errors, regenerations and edge instants.

    Sessions return on later days and some switch collections, so distinct sessions
    over ranges differ from sums of days. Two sessions sit on either side of 15:00 UTC
    (midnight in Asia/Seoul) of the previous day.
    """
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    weights = (6, 3, 1)
    for i in range(count):
        at = now - timedelta(seconds=rng.uniform(60, days * 86400))
        session = f"s-{rng.randrange(max(1, count // 6))}"
        collection = rng.choices(COLLECTIONS, weights)[0]
        events.append(_event(rng, i, session, collection, at))
    boundary = datetime.combine(now.date() - timedelta(days=1), datetime.min.time(), UTC) + timedelta(
        hours=15
    )
    for i, at in enumerate(
        (boundary - timedelta(milliseconds=1), boundary, boundary + timedelta(minutes=59))
    ):
        events.append(_event(rng, count + i, "s-boundary", "legal-kb", at, kind="user"))
        events.append(_event(rng, count + 10 + i, "s-boundary", "legal-kb", at, kind="assistant"))
    rng.shuffle(events)
    return events


def _event(
    rng: random.Random, index: int, session: str, collection: str, at: datetime, kind: str | None = None
) -> dict[str, Any]:
    kind = kind or rng.choice(("user", "assistant"))
    event: dict[str, Any] = {
        "log_id": f"log-{index}",
        "session_id": session,
        "collection_name": collection,
        "message_type": kind,
        "message_content": rng.choice(rng.choice(QUERY_VARIANTS)) if kind == "user" else "answer",
        "created_at": at.isoformat(),
    }
    if rng.random() < 0.06:
        event["status"] = "error"
        event["error"] = {"type": "Timeout", "message": "upstream timed out"}
    if rng.random() < 0.05:
        event["is_regeneration"] = True
    if kind == "assistant" and rng.random() < 0.9:
        performance: dict[str, int] = {"token_count": rng.randrange(20, 1500)}
        if rng.random() < 0.95:
            performance["response_time_ms"] = int(rng.lognormvariate(7.0, 0.6))
        event["performance"] = performance
    return event


def frame(events: list[dict[str, Any]], tz: ZoneInfo) -> pd.DataFrame:
    """The raw events as a flat frame with their local date and hour."""
    at = pd.to_datetime(pd.Series([e["created_at"] for e in events]), utc=True, format="ISO8601")
    local = at.dt.tz_convert(tz)
    return pd.DataFrame(
        {
            "session_id": [e["session_id"] for e in events],
            "collection_name": [e["collection_name"] for e in events],
            "message_type": [e["message_type"] for e in events],
            "message_content": [e["message_content"] for e in events],
            "status": [e.get("status", "ok") for e in events],
            "is_regeneration": [bool(e.get("is_regeneration", False)) for e in events],
            "response_time_ms": pd.array(
                [e.get("performance", {}).get("response_time_ms") for e in events], dtype="Int64"
            ),
            "token_count": pd.array(
                [e.get("performance", {}).get("token_count") for e in events], dtype="Int64"
            ),
            "local_date": local.dt.strftime("%Y-%m-%d"),
            "local_hour": local.dt.hour.astype("int64"),
        }
    )


def normalise(text: str) -> str:
    """The contract's grouping: NFKC, case folding, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _where(collection: str | None) -> str:
    return "AND collection_name = $collection" if collection is not None else ""


def expected_summary(
    events: pd.DataFrame, collection: str | None, first: date, last: date, top: int = 10
) -> dict[str, Any]:
    """Every summary field, computed with DuckDB over the raw events."""
    con = duckdb.connect()
    con.register("events", events)
    args: dict[str, Any] = {"first": first.isoformat(), "last": last.isoformat()}
    if collection is not None:
        args["collection"] = collection
    scope = f"local_date BETWEEN $first AND $last {_where(collection)}"
    (queries, sessions, tokens, avg, errors, regens), *_ = con.execute(
        f"""SELECT count(*) FILTER (WHERE message_type = 'user'), count(DISTINCT session_id),
                   coalesce(sum(token_count) FILTER (WHERE message_type = 'assistant'), 0),
                   avg(response_time_ms) FILTER (WHERE message_type = 'assistant'),
                   count(*) FILTER (WHERE status = 'error'), count(*) FILTER (WHERE is_regeneration)
            FROM events WHERE {scope}""",
        args,
    ).fetchall()
    times = [
        r
        for (r,) in con.execute(
            f"SELECT response_time_ms FROM events WHERE {scope} AND message_type = 'assistant' "
            "AND response_time_ms IS NOT NULL",
            args,
        ).fetchall()
    ]
    per_collection = dict(
        con.execute(
            "SELECT collection_name, count(*) FILTER (WHERE message_type = 'user') FROM events "
            f"WHERE {scope} GROUP BY 1",
            args,
        ).fetchall()
    )
    texts = [
        t
        for (t,) in con.execute(
            f"SELECT message_content FROM events WHERE {scope} AND message_type = 'user'", args
        ).fetchall()
    ]
    con.close()
    percentiles = [
        float(np.quantile(times, q, method="inverted_cdf")) if times else None for q in (0.5, 0.95, 0.99)
    ]
    return {
        "total_queries": queries,
        "unique_sessions": sessions,
        "total_tokens": int(tokens),
        "avg_response_time_ms": avg,
        "p50_response_time_ms": percentiles[0],
        "p95_response_time_ms": percentiles[1],
        "p99_response_time_ms": percentiles[2],
        "error_count": errors,
        "error_rate": errors / queries if queries else 0.0,
        "regeneration_count": regens,
        "regeneration_rate": regens / queries if queries else 0.0,
        "top_queries": expected_top(texts, top),
        "collections": per_collection,
    }


def expected_top(texts: list[str], top: int) -> list[dict[str, Any]]:
    """Query groups by count, then by normalised text; each shown by its smallest collapsed original."""
    counts: dict[str, int] = {}
    shown: dict[str, str] = {}
    for text in texts:
        key = normalise(text)
        counts[key] = counts.get(key, 0) + 1
        collapsed = " ".join(text.split())
        shown[key] = min(shown.get(key, collapsed), collapsed)
    ranked = sorted(counts, key=lambda k: (-counts[k], k))[:top]
    return [{"query": shown[k], "count": counts[k]} for k in ranked]


def expected_buckets(
    events: pd.DataFrame, collection: str | None, hourly: bool
) -> dict[tuple[str, int], dict[str, Any]]:
    """Per local day (hour -1) or hour: the timeline fields, with DuckDB."""
    con = duckdb.connect()
    con.register("events", events)
    hour = "local_hour" if hourly else "-1"
    args = {"collection": collection} if collection is not None else {}
    rows = con.execute(
        f"""SELECT local_date, {hour} AS h, count(*) FILTER (WHERE message_type = 'user'),
                   count(DISTINCT session_id),
                   coalesce(sum(token_count) FILTER (WHERE message_type = 'assistant'), 0),
                   avg(response_time_ms) FILTER (WHERE message_type = 'assistant'),
                   quantile_disc(response_time_ms, 0.95) FILTER (WHERE message_type = 'assistant'),
                   count(*) FILTER (WHERE status = 'error'), count(*) FILTER (WHERE is_regeneration)
            FROM events WHERE true {_where(collection)} GROUP BY 1, 2""",
        args,
    ).fetchall()
    con.close()
    names = (
        "total_queries",
        "unique_sessions",
        "total_tokens",
        "avg_response_time_ms",
        "p95_response_time_ms",
        "error_count",
        "regeneration_count",
    )
    return {(d, int(h)): dict(zip(names, values, strict=True)) for d, h, *values in rows}


def close_to(actual: float | None, expected: float | None, relative: float) -> bool:
    """Both None, or within ``relative`` of each other."""
    if actual is None or expected is None:
        return actual is None and expected is None
    return abs(actual - expected) <= relative * abs(expected) + 1e-9


def snapshot(db_path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every statistics table, sorted."""
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in STAT_TABLES}


async def post_all(
    client: TestClient[Any, Any], events: list[dict[str, Any]], per_request: int = 150
) -> None:
    """Post events in batches; each must be accepted."""
    for start in range(0, len(events), per_request):
        resp = await client.post("/v1/logs", json=events[start : start + per_request])
        assert resp.status == 202, await resp.text()


async def applied(config: Settings, messages: int, within: float = 10.0) -> float:
    """Wait until the statistics hold ``messages`` events; return how long that took."""
    started = asyncio.get_running_loop().time()
    while True:
        found = rows(config, "SELECT coalesce(sum(message_count), 0) FROM chat_statistics_daily WHERE scope = ''")
        total = found[0][0] if found else 0
        elapsed = asyncio.get_running_loop().time() - started
        if total >= messages or elapsed > within:
            return elapsed
        await asyncio.sleep(0.02)
