"""Many ingestors on one PostgreSQL: real daemons as nodes, and the one-SQLite reference they must equal.

Each node is a real ``python -m ingestor`` (``IngestorProcess``) with a data directory,
a socket and a ``CHATLOG_NODE_ID`` of its own, all on one database. The reference for
what they must show together is one SQLite derived state over the union of their
events: ``union_reference`` joins the nodes' day files into one data directory and
applies it exactly as an ingestor start does (``catch_up_stopped``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from ingestor.derived.state import catch_up_stopped
from shared.layout import StorageLayout, Stream
from shared.settings import Settings
from tests.conftest import TEST_SECRET
from tests.support.daemon import IngestorProcess
from tests.support.events import make_event
from tests.support.stores import SHARED_TABLES, rows

# Compared over tests.support.stores.SHARED_TABLES.
# The FAQ's pairing of an answer with its question follows file order ("the latest user
# message before it ... in the same day file"): across nodes that is the order they applied
# in, so the pairing columns (candidates, a session's current question and last answer) are
# compared only where they do not depend on it: the counts and texts, the sessions present.
ORDER_FREE_COLUMNS = {
    "faq_questions": "date, collection_name, question_key, sample_text, count",
    "faq_sessions": "date, session_id",
}


def _normal(value: object) -> object:
    return bytes(value) if isinstance(value, memoryview) else value


def table_rows(config: Settings, table: str) -> list[tuple[Any, ...]]:
    """Every row of one shared table, in key order, with blobs as bytes."""
    order = SHARED_TABLES[table]
    columns = ORDER_FREE_COLUMNS.get(table, "*")
    return [tuple(map(_normal, r)) for r in rows(config, f"SELECT {columns} FROM {table} ORDER BY {order}")]


def differences(mine: Settings, reference: Settings) -> list[str]:
    """The shared tables whose rows differ between two stores (empty when every one is equal)."""
    return [table for table in SHARED_TABLES if table_rows(mine, table) != table_rows(reference, table)]


def message_total(config: Settings) -> int:
    """Events counted in the statistics (every node's, on PostgreSQL)."""
    found = rows(config, "SELECT coalesce(sum(message_count), 0) FROM chat_statistics_daily WHERE scope = ''")
    return int(found[0][0]) if found else 0


def session_messages(config: Settings) -> int:
    """Events counted in chat_sessions."""
    found = rows(config, "SELECT coalesce(sum(message_count), 0) FROM chat_sessions")
    return int(found[0][0]) if found else 0


async def wait_for(check: Callable[[], bool], within: float, step: float = 0.1) -> float:
    """Wait until ``check()``; return how long it took (raises after ``within`` seconds)."""
    started = time.monotonic()
    while not await asyncio.to_thread(check):
        if time.monotonic() - started > within:
            raise TimeoutError(f"not within {within} s")
        await asyncio.sleep(step)
    return time.monotonic() - started


def node(root: Path, short_dir: Path, url: str, name: str, **env: str) -> IngestorProcess:
    """An ingestor node: its own data directory and socket, the shared database, its node id."""
    return IngestorProcess(root / name / "data", short_dir / f"{name}.sock", database_url=url, node_id=name, **env)


@contextmanager
def nodes(root: Path, short_dir: Path, url: str, *names: str, **env: str) -> Iterator[list[IngestorProcess]]:
    """Started nodes, killed (with their derived processes) at the end."""
    started: list[IngestorProcess] = []
    try:
        for name in names:
            started.append(node(root, short_dir, url, name, **env).start(timeout=60))
        yield started
    except BaseException:
        for proc in started:  # what the nodes said, for the failure's report
            if proc.proc is not None and proc.proc.poll() is None and proc.proc.stderr is not None:
                children = psutil.Process(proc.proc.pid).children(recursive=True)
                for victim in [psutil.Process(proc.proc.pid), *children]:
                    with contextlib.suppress(psutil.Error):
                        victim.kill()
                proc.proc.wait(10)
                psutil.wait_procs(children, 10)
                print(f"--- {proc.data_dir.parent.name} stderr ---\n{proc.proc.stderr.read().decode()[-4000:]}")
        raise
    finally:
        for proc in started:
            proc.stop_quietly()


def health(url: str) -> dict[str, Any]:
    """An ingestor's /healthz body (whatever its status code)."""
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=5) as resp:
            body: dict[str, Any] = json.load(resp)
    except urllib.error.HTTPError as exc:
        body = json.load(exc)
    return body


def metrics_text(url: str) -> str:
    """An ingestor's /metrics text."""
    with urllib.request.urlopen(url + "/metrics", timeout=5) as resp:
        return str(resp.read().decode())


async def post(session: aiohttp.ClientSession, url: str, events: list[dict[str, Any]]) -> int:
    """POST one batch; the status."""
    async with session.post(url + "/v1/logs", json=events) as resp:
        await resp.read()
        return resp.status


async def load(
    url: str, acked: set[str], stop: asyncio.Event, seed: int, statuses: list[int] | None = None,
    sessions: int = 40,
) -> None:
    """Post batches of 50 until told to stop; remember every log_id that got a 202.

    Sessions are drawn from a small shared pool (``s-0`` .. ``s-<sessions>``), so the
    same sessions reach every node that runs a load in the same hour.
    """
    rng = random.Random(seed)
    async with aiohttp.ClientSession() as session:
        while not stop.is_set():
            batch = [
                make_event(rng, session_id=f"s-{rng.randrange(sessions)}",
                           message_type=rng.choice(("user", "assistant")))
                for _ in range(50)
            ]
            try:
                status = await post(session, url, batch)
            except (aiohttp.ClientError, OSError):
                await asyncio.sleep(0.05)
                continue
            if statuses is not None:
                statuses.append(status)
            if status == 202:
                acked.update(e["log_id"] for e in batch)
            else:
                await asyncio.sleep(0.05)


def union_reference(data_dirs: list[Path], root: Path) -> Settings:
    """One SQLite derived state over every node's day files joined (the union of their events).

    Each day's log and feedback lines of every node go into one day file, and the
    derived state applies it as a start does. Call it with the nodes stopped.
    """
    settings = Settings.for_data_dir(root / "data", user_hash_secret=TEST_SECRET, ingest_socket="",
                                     ingest_port=0, api_port=0)
    layout = StorageLayout.from_settings(settings)
    layout.ensure_dirs()
    for stream in (Stream.LOGS, Stream.FEEDBACK):
        joined: dict[str, bytearray] = {}
        for data_dir in data_dirs:
            theirs = StorageLayout.from_settings(Settings.for_data_dir(data_dir))
            for day, files in sorted(theirs.days(stream).items()):
                assert files.plain is not None and files.zst is None, "reference: plain day files only"
                joined.setdefault(day.isoformat(), bytearray()).extend(files.plain.read_bytes())
        for day, content in joined.items():
            target = layout.stream_dir(stream) / f"{day}.jsonl"
            target.write_bytes(bytes(content))
            target.chmod(0o640)
    catch_up_stopped(settings, layout)
    return settings


def log_ids(data_dir: Path) -> list[str]:
    """Every log_id in a node's log day files (read after the node stopped)."""
    layout = StorageLayout.from_settings(Settings.for_data_dir(data_dir))
    found = []
    for files in layout.days(Stream.LOGS).values():
        if files.plain is None:
            continue
        for line in files.plain.read_bytes().splitlines():
            if line.strip():
                found.append(json.loads(line)["log_id"])
    return found
