"""The derived-state process: restarted when it dies, exactly once across restarts, bounded lag, no orphans."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import aiohttp
import psutil
import pytest
from aiohttp.test_utils import TestClient

from ingestor import keys
from ingestor.derived.process import DERIVED_LAG_LIMIT_BYTES, STOP_TIMEOUT_SECONDS, DerivedStateProcess
from ingestor.derived.status import DerivedStatus
from ingestor.metrics import IngestMetrics
from shared.layout import StorageLayout
from shared.settings import Settings
from tests.ingestor.test_daemon import _load, read_back
from tests.support.daemon import IngestorProcess
from tests.support.derived import DerivedHarness, totals, until
from tests.support.events import make_event


def derived_child(daemon: IngestorProcess) -> psutil.Process:
    """The ingestor's derived-state process."""
    assert daemon.proc is not None
    (child,) = [c for c in psutil.Process(daemon.proc.pid).children() if "ingestor.derived" in " ".join(c.cmdline())]
    return child


async def health(url: str) -> dict[str, Any]:
    """The ingestor's /healthz body."""
    async with aiohttp.ClientSession() as session, session.get(url + "/healthz") as resp:
        body: dict[str, Any] = await resp.json()
        return body


@pytest.mark.slow
async def test_killed_derived_process_is_restarted_and_counts_once(daemon: IngestorProcess) -> None:
    """SIGKILL of the derived process under load: ingest goes on, a new one resumes, every line counted once."""
    daemon.start()
    first = derived_child(daemon)
    acked: set[str] = set()
    stop = asyncio.Event()
    loaders = [asyncio.create_task(_load(daemon.url, acked, stop, seed)) for seed in range(4)]
    await asyncio.sleep(1.0)
    first.kill()
    await asyncio.sleep(1.5)
    stop.set()
    await asyncio.gather(*loaders)
    assert (await health(daemon.url))["derived"]["restarts"] >= 1
    second = derived_child(daemon)
    assert second.pid != first.pid
    records, _ = read_back(daemon.data_dir)
    assert acked <= {r.log_id for r in records}
    await until(lambda: totals(daemon.data_dir)[0] == len(records))
    assert totals(daemon.data_dir) == (len(records), len(records))


@pytest.mark.slow
async def test_derived_process_finishes_and_exits_when_the_ingestor_dies(daemon: IngestorProcess) -> None:
    """A SIGKILLed ingestor leaves no orphan: its derived process applies what was written and exits."""
    daemon.start()
    child = derived_child(daemon)
    rng = random.Random(3)
    async with aiohttp.ClientSession() as session:
        batch = [make_event(rng) for _ in range(200)]
        async with session.post(daemon.url + "/v1/logs", json=batch) as resp:
            assert resp.status == 202
    await asyncio.to_thread(daemon.kill)
    await asyncio.to_thread(child.wait, 30)
    assert totals(daemon.data_dir) == (200, 200)


@pytest.mark.slow
async def test_a_stop_is_bounded_when_the_derived_process_cannot_finish(daemon: IngestorProcess) -> None:
    """SIGTERM while the derived process is stuck: the ingestor exits 0 in bounded time; a start applies the rest."""
    daemon.start()
    child = derived_child(daemon)
    rng = random.Random(5)
    child.suspend()  # stands in for a backlog too long to apply within a stop
    async with aiohttp.ClientSession() as session:
        batch = [make_event(rng) for _ in range(100)]
        async with session.post(daemon.url + "/v1/logs", json=batch) as resp:
            assert resp.status == 202
    started = asyncio.get_running_loop().time()
    code, err = await asyncio.to_thread(daemon.terminate, 40.0)
    took = asyncio.get_running_loop().time() - started
    assert code == 0, err
    assert took < STOP_TIMEOUT_SECONDS + 10, took
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
    daemon.start()
    await until(lambda: totals(daemon.data_dir) == (100, 100))


async def test_lagging_derived_state_gets_503_until_it_catches_up(client: TestClient[Any, Any]) -> None:
    """Past the lag bound new events get 503 overloaded with Retry-After; under it they are accepted."""
    derived = client.app[keys.derived_key]
    await derived.wait_ready()
    rng = random.Random(4)
    derived.status = DerivedStatus(
        lag_bytes=DERIVED_LAG_LIMIT_BYTES + 1, applied_lines=0, open_conversations=0, saved=0, dropped=0
    )
    refused = await client.post("/v1/logs", json=[make_event(rng)])
    assert refused.status == 503
    assert refused.headers["Retry-After"] == "1"
    assert (await refused.json())["error"] == "overloaded"
    body = await (await client.get("/healthz")).json()
    assert body["derived"]["lag_bytes"] == DERIVED_LAG_LIMIT_BYTES + 1
    derived.status = DerivedStatus(lag_bytes=0, applied_lines=0, open_conversations=0, saved=0, dropped=0)
    assert (await client.post("/v1/logs", json=[make_event(rng)])).status == 202


async def test_statistics_follow_the_files_through_the_process(client: TestClient[Any, Any], config: Any) -> None:
    """Events posted over HTTP reach chat_sessions via the derived process within seconds."""
    rng = random.Random(5)
    assert (await client.post("/v1/logs", json=[make_event(rng, session_id="s-x") for _ in range(7)])).status == 202
    await until(lambda: totals(config.data_dir)[1] == 7, seconds=10)
    body = await (await client.get("/healthz")).json()
    assert body["derived"]["running"] is True


async def test_open_conversations_stay_bounded_during_a_catch_up(
    config: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backlog of many conversations is applied with the sweep already running: the bound holds."""
    import functools

    from ingestor.conversations import service
    from ingestor.derived import state as state_module
    from ingestor.derived.state import DerivedState

    # The bound is 50,000 open conversations; a small one makes a small backlog show it.
    small = functools.partial(service.ConversationService, max_open=50)
    monkeypatch.setattr(service, "ConversationService", small)
    monkeypatch.setattr(state_module, "conversation_service", service.conversation_service)
    StorageLayout.from_settings(config).ensure_dirs()
    harness = DerivedHarness(config, None)  # type: ignore[arg-type]
    rng = random.Random(9)
    for start in range(0, 600, 100):
        harness.write([make_event(rng, conversation_id=f"c-{n}", session_id=f"s-{n}")
                       for n in range(start, start + 100)])
    harness.files.close()
    state = DerivedState(config)
    await state.start()
    try:
        assert state.applier.applied_lines == 600
        assert len(state.conversations.assembler) <= 50
    finally:
        await state.stop()


def test_pacing_is_off_while_the_database_is_down_and_until_its_backlog_is_applied(config: Settings) -> None:
    """503 pacing must not stop ingest during a database outage, nor while the derived state catches up after it."""
    derived = DerivedStateProcess(config, IngestMetrics())
    over = DERIVED_LAG_LIMIT_BYTES + 1
    derived._observe(DerivedStatus(over, 1, 0, 0, 0))
    assert derived.behind()
    derived._observe(DerivedStatus(over, 1, 0, 0, 0, database_down_seconds=4.0))
    assert not derived.behind()
    assert derived.health()["database_reachable"] is False
    derived._observe(DerivedStatus(over, 2, 0, 0, 0))  # back, applying the lines written meanwhile
    assert not derived.behind()
    assert derived.health()["database_reachable"] is True
    derived._observe(DerivedStatus(0, 3, 0, 0, 0))  # caught up: pacing applies again
    derived._observe(DerivedStatus(over, 4, 0, 0, 0))
    assert derived.behind()
