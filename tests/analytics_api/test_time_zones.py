"""Zone transitions: every view counts the hours and days around them exactly once.

Events are posted every 15 minutes across a transition day, through a real ingestor in
that zone; the expected buckets are worked out here from the instants alone: a bucket
is a local (date, hour), it starts at the first instant whose local time falls in it,
and a bucket no instant falls in does not exist.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient

from analytics_api.app import create_app as create_analytics
from ingestor.app import create_app as create_ingestor
from shared.settings import Settings
from tests.conftest import AiohttpClient
from tests.support.events import make_event
from tests.support.statistics_oracle import applied

STEP = timedelta(minutes=15)
CASES = [
    ("America/New_York", date(2026, 3, 8)),  # 02:00 skipped
    ("America/New_York", date(2026, 11, 1)),  # 01:00 twice
    ("Europe/Berlin", date(2026, 3, 29)),  # 02:00 skipped
    ("Europe/Berlin", date(2026, 10, 25)),  # 02:00 twice
    ("Australia/Lord_Howe", date(2026, 4, 5)),  # 01:30-02:00 twice (30-minute shift)
    ("Australia/Lord_Howe", date(2026, 10, 4)),  # 02:00-02:30 skipped
    ("Asia/Kathmandu", date(2026, 6, 1)),  # +05:45: hours start at a quarter past UTC
    ("America/Sao_Paulo", date(2018, 11, 4)),  # midnight skipped: the day starts at 01:00
    ("Pacific/Apia", date(2011, 12, 31)),  # 2011-12-30 skipped whole (-10:00 to +14:00)
]


def day_start(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of a local date, found by scanning the 15-minute UTC grid."""
    t = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(days=2)
    while t.astimezone(tz).date() < day:
        t += STEP
    return t


def grid(first: date, last: date, tz: ZoneInfo) -> list[datetime]:
    """Every 15-minute UTC instant of the local dates ``first..last``."""
    t, end = day_start(first, tz), day_start(last + timedelta(days=1), tz)
    out = []
    while t < end:
        out.append(t)
        t += STEP
    return out


def key(t: datetime, tz: ZoneInfo, hourly: bool) -> tuple[str, int]:
    """The local bucket of an instant."""
    local = t.astimezone(tz)
    return local.date().isoformat(), local.hour if hourly else -1


def expected(instants: list[datetime], tz: ZoneInfo, hourly: bool) -> tuple[dict[Any, datetime], Counter[Any]]:
    """Each bucket's first instant, and its event count (one event per instant)."""
    starts: dict[Any, datetime] = {}
    for t in instants:
        starts.setdefault(key(t, tz, hourly), t)
    return starts, Counter(key(t, tz, hourly) for t in instants)


@pytest.fixture(params=CASES, ids=[f"{z}-{d}" for z, d in CASES])
async def zone_day(request: pytest.FixtureRequest, aiohttp_client: AiohttpClient, config: Settings,
                   ) -> tuple[TestClient[Any, Any], ZoneInfo, date, list[datetime]]:
    """An analytics API over one user event per 15 minutes across a transition day and the
    days around it, stored by a real ingestor in that zone."""
    zone, day = request.param
    tz = ZoneInfo(zone)
    # Days years back are kept (and not compressed, which would not change what is read).
    zoned = dataclasses.replace(config, timezone=tz, log_retention_days=20_000, log_compress_after_days=20_000)
    ingest = await aiohttp_client(create_ingestor(zoned))
    instants = grid(day - timedelta(days=1), day + timedelta(days=1), tz)
    rng = random.Random(day.toordinal())
    events = [make_event(rng, session_id=f"s{i}", created_at=t) for i, t in enumerate(instants)]
    assert (await ingest.post("/v1/logs", json=events)).status == 202
    await applied(zoned, len(events), within=30)
    return await aiohttp_client(create_analytics(zoned)), tz, day, instants


async def test_hourly_timeline_lists_each_hour_once(zone_day: Any) -> None:
    """Each local hour of the day is one point at its first instant, skipped hours none."""
    api, tz, day, instants = zone_day
    on_day = [t for t in instants if t.astimezone(tz).date() == day]
    starts, counts = expected(on_day, tz, hourly=True)
    params = {"period": "hourly", "days": "1", "date_to": day.isoformat()}
    points = (await (await api.get("/api/analytics/timeline", params=params)).json())["points"]
    got = [datetime.fromisoformat(p["start"]) for p in points]
    assert got == sorted(starts.values())
    assert all(a < b for a, b in itertools.pairwise(got))
    # The points tile the day: consecutive starts, from its first instant to the next day's.
    assert got[0] == day_start(day, tz)
    for point, start in zip(points, got, strict=True):
        assert point["total_queries"] == counts[key(start, tz, hourly=True)], point
        assert datetime.fromisoformat(point["start"]).utcoffset() == start.astimezone(tz).utcoffset()
    assert sum(p["total_queries"] for p in points) == len(on_day)


async def test_daily_timeline_and_summary(zone_day: Any) -> None:
    """Each existing date is one point at its first instant; a summary of the day counts it whole."""
    api, tz, day, instants = zone_day
    starts, counts = expected(instants, tz, hourly=False)
    params = {"period": "daily", "days": "3", "date_to": (day + timedelta(days=1)).isoformat()}
    points = (await (await api.get("/api/analytics/timeline", params=params)).json())["points"]
    got = [datetime.fromisoformat(p["start"]) for p in points]
    assert got == sorted(starts.values())
    assert [p["total_queries"] for p in points] == [counts[key(s, tz, hourly=False)] for s in got]
    params = {"date_from": day.isoformat(), "date_to": day.isoformat()}
    summary = await (await api.get("/api/analytics/summary", params=params)).json()
    assert summary["total_queries"] == counts[(day.isoformat(), -1)]


def _grafana(first: datetime, last: datetime, interval_ms: int) -> dict[str, Any]:
    return {"range": {"from": first.isoformat(), "to": last.isoformat()}, "intervalMs": interval_ms,
            "maxDataPoints": 2000, "targets": [{"refId": "A", "target": "queries"}]}


async def test_grafana_series_stamp_each_bucket_once(zone_day: Any) -> None:
    """Grafana's hourly and daily points are the same buckets, stamped with their first
    instant, none read twice (a repeated hour used to be counted in both of its UTC hours)."""
    api, tz, day, instants = zone_day
    on_day = [t for t in instants if t.astimezone(tz).date() == day]
    for hourly, first, last in (
        (True, day_start(day, tz), day_start(day + timedelta(days=1), tz) - timedelta(seconds=1)),
        (False, instants[0], instants[-1]),
    ):
        selected = on_day if hourly else instants
        starts, counts = expected(selected, tz, hourly)
        body = _grafana(first, last, 60_000 if hourly else 86_400_000)
        resp = await api.post("/grafana/query", json=body)
        assert resp.status == 200, await resp.text()
        points = (await resp.json())[0]["datapoints"]
        want = [[counts[k], int(s.timestamp() * 1000)] for k, s in sorted(starts.items(), key=lambda i: i[1])]
        assert points == want
        assert sum(v for v, _ in points) == len(selected)
