"""Two real ingestor nodes on one PostgreSQL give what one SQLite ingestor gives for the union of their events."""

from __future__ import annotations

import asyncio
import json
import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import psycopg
import pytest

from ingestor.app import create_app as create_ingestor
from shared.settings import Settings
from tests.conftest import AiohttpClient
from tests.support.daemon import free_port
from tests.support.multinode import (
    differences,
    health,
    load,
    log_ids,
    message_total,
    metrics_text,
    node,
    nodes,
    post,
    session_messages,
    union_reference,
    wait_for,
)
from tests.support.postgres import PostgresServer
from tests.support.statistics_oracle import applied, generate, post_all
from tests.support.stores import on_postgres, rows


def split(events: list[dict[str, Any]], seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Each event to one node or the other: a session's events reach both, in the same hours and on other days."""
    rng = random.Random(seed)
    a: list[dict[str, Any]] = []
    b: list[dict[str, Any]] = []
    for event in events:
        (a if rng.random() < 0.5 else b).append(event)
    return a, b


@pytest.mark.slow
async def test_two_nodes_equal_one_sqlite_over_the_union(
    aiohttp_client: AiohttpClient, config: Settings, postgres_url: str, tmp_path: Path, short_dir: Path
) -> None:
    events = generate(5, datetime.now(UTC), count=800, days=3.0)
    first, second = split(events, 5)
    pg = on_postgres(config, postgres_url, "node-a")
    with nodes(tmp_path / "nodes", short_dir, postgres_url, "node-a", "node-b") as (a, b):
        async with aiohttp.ClientSession() as session:
            for proc, part in ((a, first), (b, second)):
                for start in range(0, len(part), 150):
                    assert await post(session, proc.url, part[start:start + 150]) == 202
        await wait_for(lambda: message_total(pg) == len(events) == session_messages(pg), within=60)
    both = {e["session_id"] for e in first} & {e["session_id"] for e in second}
    assert len(both) > 50, "the split put few sessions on both nodes"
    ingest = await aiohttp_client(create_ingestor(config))
    await post_all(ingest, events)
    await applied(config, len(events), within=30)
    assert differences(pg, config) == []
    # A session seen on both nodes the same day counts once: distinct sessions of the union.
    union: dict[str, set[str]] = {}
    for event in events:
        union.setdefault(event["created_at"][:10], set()).add(event["session_id"])
    daily = dict(rows(pg, "SELECT date, unique_sessions FROM chat_statistics_daily WHERE scope = ''"))
    assert daily == {day: len(sessions) for day, sessions in union.items()}
    assert sum(daily.values()) < sum(
        len({e["session_id"] for e in part if e["created_at"][:10] == day}) for part in (first, second) for day in daily
    )


@pytest.mark.slow
async def test_a_node_killed_under_load_counts_every_acknowledged_event_once(
    postgres_url: str, tmp_path: Path, short_dir: Path
) -> None:
    """SIGKILL of one node (ingestor and derived process) while both ingest; restarted, it resumes.

    Nothing acknowledged is lost, nothing is counted twice, and the tables equal the union's."""
    pg = on_postgres(Settings.for_data_dir(tmp_path / "unused"), postgres_url, "node-a")
    acked: set[str] = set()
    with nodes(tmp_path / "nodes", short_dir, postgres_url, "node-a", "node-b") as (a, b):
        stop = asyncio.Event()
        loads = [asyncio.create_task(load(proc.url, acked, stop, seed)) for seed, proc in enumerate((a, b, a, b))]
        await asyncio.sleep(2.0)
        assert a.proc is not None
        children = psutil.Process(a.proc.pid).children(recursive=True)  # its derived process, mid-commit or not
        for child in children:
            child.kill()
        await asyncio.to_thread(a.kill)
        await asyncio.to_thread(psutil.wait_procs, children, 10)
        await asyncio.sleep(1.0)  # node-b alone
        await asyncio.to_thread(a.start, 60)
        await asyncio.sleep(2.0)
        stop.set()
        await asyncio.gather(*loads)
        assert len(acked) > 1000, "the load did not get going"
        for proc in (a, b):
            code, err = await asyncio.to_thread(proc.terminate, 60)
            assert code == 0, err[-2000:]
    stored = log_ids(a.data_dir) + log_ids(b.data_dir)
    assert acked <= set(stored)
    assert len(stored) == len(set(stored)), "an event was stored twice"
    assert message_total(pg) == session_messages(pg) == len(stored)
    assert rows(pg, "SELECT count(*) FROM quarantined_lines") == [(0,)]
    reference = await asyncio.to_thread(union_reference, [a.data_dir, b.data_dir], tmp_path / "reference")
    assert message_total(reference) == len(stored)
    assert differences(pg, reference) == []


def terminate_backends(url: str) -> int:
    """pg_terminate_backend on every other session of the database at ``url`` (a lost connection); how many."""
    server, dbname = url.rsplit("/", 1)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        found = conn.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()", (dbname,)
        ).fetchone()
    return int(found[0]) if found else 0


@pytest.mark.slow
async def test_ingest_goes_on_while_postgres_is_unreachable_and_the_state_catches_up(
    postgres_server: PostgresServer, postgres_url: str, tmp_path: Path, short_dir: Path
) -> None:
    """Backends terminated, then the server stopped, while both nodes ingest: every answer stays 202,
    health and metrics say the database is unreachable, and once it is back the state catches up
    without a restart and equals the union's."""
    pg = on_postgres(Settings.for_data_dir(tmp_path / "unused"), postgres_url, "node-a")
    acked: set[str] = set()
    statuses: list[int] = []
    with nodes(tmp_path / "nodes", short_dir, postgres_url, "node-a", "node-b") as (a, b):
        stop = asyncio.Event()
        loads = [asyncio.create_task(load(proc.url, acked, stop, seed, statuses))
                 for seed, proc in enumerate((a, b, a, b))]
        await asyncio.sleep(1.0)
        terminated = 0
        for _ in range(3):  # the softer cut: connections lost, the server up
            terminated += await asyncio.to_thread(terminate_backends, postgres_url)
            await asyncio.sleep(0.5)
        assert terminated >= 4  # each node's derived process and ingestor at least
        try:
            await asyncio.to_thread(postgres_server.stop)
            cut, acked_at_cut = len(statuses), len(acked)
            await wait_for(lambda: not any(health(p.url)["derived"]["database_reachable"] for p in (a, b)), within=20)
            body = json.dumps(health(a.url))
            text = metrics_text(a.url)
            assert "chatlog_ingest_derived_database_up 0.0" in text
            assert health(a.url)["derived"]["database_down_seconds"] > 0
            address = f"127.0.0.1:{postgres_server.port}"
            assert address not in body and address not in text and postgres_url not in body + text
            await asyncio.sleep(2.0)
            during = statuses[cut:]
            written_in_outage = len(acked)
        finally:
            await asyncio.to_thread(postgres_server.start)
        back = time.monotonic()
        stop.set()
        await asyncio.gather(*loads)
        assert len(during) > 20 and set(during) == {202}, "ingest stopped while the database was down"
        assert set(statuses) == {202}
        await wait_for(lambda: message_total(pg) == len(acked), within=90)
        caught_up = time.monotonic() - back
        await wait_for(lambda: all(health(p.url)["derived"]["database_reachable"] for p in (a, b)), within=20)
        assert "chatlog_ingest_derived_database_up 1.0" in metrics_text(a.url)
        print(f"{written_in_outage - acked_at_cut} events acknowledged while the server was down; all {len(acked)} "
              f"counted {caught_up:.1f} s after it started again")
        for proc in (a, b):
            code, err = await asyncio.to_thread(proc.terminate, 60)
            assert code == 0, err[-2000:]
    stored = log_ids(a.data_dir) + log_ids(b.data_dir)
    assert set(stored) == acked and len(stored) == len(acked)
    assert message_total(pg) == session_messages(pg) == len(stored)
    assert rows(pg, "SELECT count(*) FROM quarantined_lines") == [(0,)]
    reference = await asyncio.to_thread(union_reference, [a.data_dir, b.data_dir], tmp_path / "reference")
    assert differences(pg, reference) == []


@pytest.mark.slow
def test_an_ingestor_started_with_its_database_unreachable_exits_with_a_clear_error(
    tmp_path: Path, short_dir: Path
) -> None:
    url = f"postgresql://chatlog:not-this-password@127.0.0.1:{free_port()}/chatlog"
    proc = node(tmp_path, short_dir, url, "node-a")
    try:
        with pytest.raises(RuntimeError) as failed:
            proc.start(timeout=60)
        assert proc.proc is not None and proc.proc.wait(10) == 2
    finally:
        proc.stop_quietly()
    assert "chatlog-ingestor: cannot use PostgreSQL at postgresql://" in str(failed.value)
    assert "not-this-password" not in str(failed.value) and "Traceback" not in str(failed.value)
