"""PostgreSQL nodes benchmark: N real ingestors at their top batched rate against one PostgreSQL.

Run: ``python -m bench.postgres_nodes`` (a few minutes; ``--seconds``, ``--nodes`` and
``--repeat`` for longer runs). One real PostgreSQL (Debian's binaries, started like the
tests' server by ``tests.support.postgres.running_server``, then switched to durable
settings: fsync, synchronous_commit and full_page_writes on, as a production server
runs) serves, in turn, N = 1, 2, 4 ingestor processes (``python -m ingestor``, each with
its derived-state child), each node with a data directory of its own, its own
``CHATLOG_NODE_ID``, the same user-hash secret and a fresh database per N. Before them,
one SQLite node takes the same load: the single-machine baseline.

Each node is loaded at its top batched rate (``bench.ingest``: 100 events a request, 8
requests in flight per node, fsynced acks) for a fixed time. Measured, per N:

- acknowledged events/s, summed over the nodes;
- derived lines applied/s into the store (``SELECT sum(lines) FROM public.ingest_offsets``)
  while the load runs, and over load plus drain;
- the derived lag when the load stops (acknowledged events not yet applied) and the
  time it takes to drain;
- PostgreSQL's commits/s and rows/s (``pg_stat_database``: ``xact_commit``, and
  ``tup_inserted + tup_updated + tup_deleted``) and rows per applied line;
- how many of the nodes' connections wait on the global advisory lock that serialises
  every node's write transaction (sampled from ``pg_stat_activity``);
- CPU, in cores (CPU seconds per wall second): PostgreSQL's server processes, the nodes
  (ingestors and their derived processes), this load driver, and the whole machine
  (``psutil.cpu_times``; "other" is what else ran on the machine meanwhile). PostgreSQL
  busy and the machine busy are different verdicts: lines/s that stop growing while
  PostgreSQL has idle CPU and the machine has none is the machine's limit.

Every ratio is against PostgreSQL with one node, and that one against the SQLite node.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import msgspec
import psutil
import psycopg

from bench.ingest import SECRET, _free_port, _wait_healthy
from shared.postgres.dialect import WRITE_LOCK_KEY
from tests.support.events import make_event
from tests.support.postgres import PostgresServer, running_server

IN_FLIGHT = 8
PER_REQUEST = 100
# Production durability: the tests' server runs with all of these off.
DURABLE = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}


def body_pool(requests: int, seed: int, shared_sessions: float = 0.0) -> list[bytes]:
    """NDJSON bodies of mixed traffic (``bench.ingest``'s mix) without log ids, so they can be re-sent.

    The ingestor drops a log_id it stored recently (a retry); without one it assigns a
    fresh id, so a pool of a few hundred bodies cycled for the whole run stores every
    event. Each node's pool has sessions of its own (a chat backend keeps a session on
    one host), about ten messages per session; ``shared_sessions`` of the events belong
    to sessions every node's pool uses (a session whose requests land on two backends).
    """
    rng = random.Random(seed)
    sessions = max(1, requests * PER_REQUEST // 10)
    bodies = []
    for _ in range(requests):
        events = []
        for _ in range(PER_REQUEST):
            shared = rng.random() < shared_sessions
            event = make_event(
                rng, message_type=rng.choice(("user", "assistant")),
                session_id=f"shared-{rng.randrange(sessions)}" if shared else f"s{seed}-{rng.randrange(sessions)}",
                user_id=f"user-{rng.randrange(5000)}",
            )
            del event["log_id"]
            events.append(event)
        bodies.append(b"".join(msgspec.json.encode(e) + b"\n" for e in events))
    return bodies


@dataclass
class Node:
    """One ingestor process (and its derived-state child) on a data directory of its own."""

    name: str
    data_dir: Path
    database_url: str
    port: int = field(default_factory=_free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {
            **os.environ,
            "CHATLOG_DATA_DIR": str(self.data_dir),
            "CHATLOG_INGEST_PORT": str(self.port),
            "CHATLOG_INGEST_SOCKET": "",
            "CHATLOG_OTLP_PORT": "0",
            "CHATLOG_USER_HASH_SECRET": SECRET,
            "CHATLOG_LOG_LEVEL": "WARNING",
            "CHATLOG_NODE_ID": self.name,
            "CHATLOG_DATABASE_URL": self.database_url,
        }
        self.proc = subprocess.Popen([sys.executable, "-m", "ingestor"], env=env)
        _wait_healthy(self.url + "/healthz", self.proc)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def health(self) -> dict[str, object]:
        with urllib.request.urlopen(self.url + "/healthz", timeout=5) as resp:
            return dict(msgspec.json.decode(resp.read()))


class Store:
    """Where the nodes' derived state goes: how many lines it has applied, its server's counters.

    The server's views (``pg_stat_database``, ``pg_stat_activity``, ``pg_locks``) are read
    over a connection to another database, so that only the line counts, read here on the
    nodes' database, add to its commit counter; those reads are counted and subtracted.
    """

    def __init__(self, server: PostgresServer | None, url: str, sqlite_path: Path | None) -> None:
        self.server = server
        self.url = url
        self.sqlite_path = sqlite_path
        self._conn = psycopg.connect(url, autocommit=True) if url else None
        self._monitor = psycopg.connect(server.url(), autocommit=True) if server is not None else None
        self._dbname = url.rsplit("/", 1)[-1]
        self.own_transactions = 0

    def close(self) -> None:
        for conn in (self._conn, self._monitor):
            if conn is not None:
                conn.close()

    def applied_lines(self) -> int:
        if self._conn is None:
            assert self.sqlite_path is not None
            if not self.sqlite_path.exists():
                return 0
            with contextlib.closing(sqlite3.connect(f"file:{self.sqlite_path}?mode=ro", uri=True)) as db:
                (lines,) = db.execute(
                    "SELECT coalesce(sum(lines), 0) FROM ingest_offsets WHERE stream = 'data'"
                ).fetchone()
            return int(lines)
        self.own_transactions += 1
        row = self._conn.execute(
            "SELECT coalesce(sum(lines), 0) FROM public.ingest_offsets WHERE stream = 'data'"
        ).fetchone()
        return int(row[0]) if row else 0

    def counters(self) -> tuple[int, int]:
        """The nodes' database's (commits, rows written) so far, less this benchmark's reads; (0, 0) on SQLite."""
        if self._monitor is None:
            return 0, 0
        self._monitor.execute("SELECT pg_stat_clear_snapshot()")
        row = self._monitor.execute(
            "SELECT xact_commit, tup_inserted + tup_updated + tup_deleted FROM pg_stat_database WHERE datname = %s",
            (self._dbname,),
        ).fetchone()
        assert row is not None
        return int(row[0]) - self.own_transactions, int(row[1])

    def write_lock(self) -> tuple[int, int]:
        """(held, waited for) right now: the global write lock every node's write transaction takes."""
        if self._monitor is None:
            return 0, 0
        row = self._monitor.execute(
            "SELECT count(*) FILTER (WHERE granted), count(*) FILTER (WHERE NOT granted) FROM pg_locks"
            " WHERE locktype = 'advisory' AND ((classid::bigint << 32) | objid::bigint) = %s"
            " AND database = (SELECT oid FROM pg_database WHERE datname = %s)",
            (WRITE_LOCK_KEY, self._dbname),
        ).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def connections(self) -> int:
        """Connections to the nodes' database right now, this benchmark's own line-count one left out."""
        if self._monitor is None:
            return 0
        row = self._monitor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> %s",
            (self._dbname, self._conn.info.backend_pid if self._conn is not None else 0),
        ).fetchone()
        return int(row[0]) if row else 0

    def postmaster(self) -> psutil.Process | None:
        if self.server is None:
            return None
        pid = int((self.server.data / "postmaster.pid").read_text().split()[0])
        return psutil.Process(pid)


class CpuMeter:
    """CPU seconds used by process trees (and the machine) between ``start`` and ``stop``, sampled.

    A tree's processes come and go (PostgreSQL forks a backend per connection); each
    one's CPU time is read every ``interval`` and its growth since first seen summed, a
    process born after ``start`` counting from zero.
    """

    def __init__(self, roots: dict[str, list[psutil.Process]], interval: float = 0.25,
                 alone: frozenset[str] = frozenset()) -> None:
        self._roots = roots
        self._alone = alone  # groups whose roots count without their children
        self._interval = interval
        self._first: dict[tuple[str, int], float] = {}
        self._last: dict[tuple[str, int], float] = {}
        self._born_after_start: set[tuple[str, int]] = set()
        self._machine: tuple[float, float] = (0.0, 0.0)
        self.machine_busy = 0.0
        self._task: asyncio.Task[None] | None = None
        self._started = False

    def _sample(self) -> None:
        for group, roots in self._roots.items():
            for root in roots:
                with contextlib.suppress(psutil.Error):
                    tree = [root] if group in self._alone else [root, *root.children(recursive=True)]
                    for proc in tree:
                        with contextlib.suppress(psutil.Error):
                            times = proc.cpu_times()
                            key = (group, proc.pid)
                            used = times.user + times.system
                            if key not in self._first:
                                self._first[key] = used
                                if self._started:
                                    self._born_after_start.add(key)
                            self._last[key] = used

    @staticmethod
    def _machine_times() -> tuple[float, float]:
        times = psutil.cpu_times()
        idle = times.idle + getattr(times, "iowait", 0.0)
        return sum(times) - idle, idle

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            self._sample()

    def start(self) -> None:
        self._sample()
        self._started = True
        self._machine = self._machine_times()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._sample()
        busy, _ = self._machine_times()
        self.machine_busy = busy - self._machine[0]

    def used(self, group: str) -> float:
        return sum(
            last - (0.0 if key in self._born_after_start else self._first[key])
            for key, last in self._last.items() if key[0] == group
        )


@dataclass
class Result:
    """One configuration's figures."""

    label: str
    nodes: int
    load_s: float
    acked: int
    applied_during_load: int
    lag_at_end: int
    lag_bytes_at_end: int
    drain_s: float
    drained: bool
    commits: int
    rows: int
    lock_held: float
    connections: int
    lock_waiters_mean: float
    cpu_cores: dict[str, float]
    quarantined: int

    @property
    def drain_eps(self) -> float:
        """Lines/s while draining: the derived state alone, no ingest beside it."""
        return self.lag_at_end / self.drain_s if self.drain_s > 0 else 0.0

    @property
    def acked_eps(self) -> float:
        return self.acked / self.load_s

    @property
    def applied_eps_load(self) -> float:
        return self.applied_during_load / self.load_s

    @property
    def applied_eps_total(self) -> float:
        return (self.applied_during_load + self.lag_at_end) / (self.load_s + self.drain_s)

    @property
    def commits_ps(self) -> float:
        return self.commits / (self.load_s + self.drain_s)

    @property
    def rows_ps(self) -> float:
        return self.rows / (self.load_s + self.drain_s)


async def _load(urls: Sequence[str], pools: Sequence[list[bytes]], seconds: float) -> tuple[int, float]:
    """Post each node's pool round and round, IN_FLIGHT requests per node, for ``seconds``; events acked."""
    acked = 0
    headers = {"Content-Type": "application/x-ndjson"}
    deadline = time.perf_counter() + seconds

    async def worker(session: aiohttp.ClientSession, url: str, pool: list[bytes], start: int) -> None:
        nonlocal acked
        index = start
        while time.perf_counter() < deadline:
            body = pool[index % len(pool)]
            index += IN_FLIGHT
            async with session.post(url + "/v1/logs", data=body, headers=headers) as resp:
                await resp.read()
                if resp.status == 202:
                    acked += PER_REQUEST
                elif resp.status == 503:  # back-pressure: the node's queue is full
                    await asyncio.sleep(0.01)
                else:
                    raise RuntimeError(f"{url}: unexpected {resp.status}")

    connector = aiohttp.TCPConnector(limit=IN_FLIGHT * len(urls))
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(
            worker(session, url, pool, k) for url, pool in zip(urls, pools, strict=True) for k in range(IN_FLIGHT)
        ))
        return acked, time.perf_counter() - started


async def _wait_applied(store: Store, lines: int, give_up_after: float) -> bool:
    deadline = time.monotonic() + give_up_after
    while store.applied_lines() < lines:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.2)
    return True


async def _settled_counters(store: Store) -> tuple[int, int]:
    """The counters once they stop moving: backends publish their statistics up to ~1 s late."""
    previous = store.counters()
    for _ in range(24):
        await asyncio.sleep(0.5)
        current = store.counters()
        if current == previous:
            return current
        previous = current
    return previous


async def run_configuration(
    label: str, nodes: list[Node], store: Store, pools: Sequence[list[bytes]], seconds: float, drain_timeout: float,
) -> Result:
    """Start the nodes, warm them up, load them for ``seconds``, wait for the drain, stop them."""
    try:
        for node in nodes:
            node.start()
        urls = [node.url for node in nodes]
        warm, _ = await _load(urls, [pool[:4] for pool in pools], 2.0)
        if not await _wait_applied(store, warm, drain_timeout):
            raise RuntimeError(f"{label}: the warm-up never reached the store")
        applied_before = store.applied_lines()
        counters_before = await _settled_counters(store)
        roots: dict[str, list[psutil.Process]] = {
            "chatlog nodes": [psutil.Process(node.proc.pid) for node in nodes if node.proc is not None],
            "driver": [psutil.Process()],
        }
        postmaster = store.postmaster()
        if postmaster is not None:
            roots["postgres"] = [postmaster]
        # The driver's children are the nodes: count the driver alone.
        meter = CpuMeter(roots, alone=frozenset({"driver"}))
        lock_samples: list[tuple[int, int]] = []
        connections = [0]

        async def sample_lock() -> None:
            while True:
                lock_samples.append(store.write_lock())
                if len(lock_samples) % 10 == 1:
                    connections.append(store.connections())
                await asyncio.sleep(0.1)

        meter.start()
        sampler = asyncio.get_running_loop().create_task(sample_lock())
        acked, load_s = await _load(urls, pools, seconds)
        applied_at_end = store.applied_lines() - applied_before
        lag_bytes = 0
        for node in nodes:
            derived = node.health().get("derived")
            if isinstance(derived, dict):
                lag_bytes += int(derived.get("lag_bytes") or 0)
        drain_started = time.perf_counter()
        drained = await _wait_applied(store, applied_before + acked, drain_timeout)
        drain_s = time.perf_counter() - drain_started
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        await meter.stop()
        commits_after, rows_after = await _settled_counters(store)
        quarantined = 0
        for node in nodes:
            derived = node.health().get("derived")
            if isinstance(derived, dict):
                quarantined += int(derived.get("quarantined") or 0)
        wall = load_s + drain_s
        cores = {group: meter.used(group) / wall for group in roots}
        cores["machine"] = meter.machine_busy / wall
        return Result(
            label=label, nodes=len(nodes), load_s=load_s, acked=acked,
            applied_during_load=applied_at_end, lag_at_end=acked - applied_at_end, lag_bytes_at_end=lag_bytes,
            drain_s=drain_s, drained=drained,
            commits=commits_after - counters_before[0], rows=rows_after - counters_before[1],
            connections=max(connections),
            lock_held=statistics.mean(min(held, 1) for held, _ in lock_samples) if lock_samples else 0.0,
            lock_waiters_mean=statistics.mean(waited for _, waited in lock_samples) if lock_samples else 0.0,
            cpu_cores=cores,
            quarantined=quarantined,
        )
    finally:
        for node in nodes:
            node.stop()


def make_durable(server: PostgresServer) -> dict[str, str]:
    """Switch the tests' server to production durability (a reload suffices); return what it runs with."""
    with psycopg.connect(server.url(), autocommit=True) as conn:
        for name, value in DURABLE.items():
            conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
        conn.execute("SELECT pg_reload_conf()")
        time.sleep(0.5)
        shown = {}
        for name in (*DURABLE, "shared_buffers", "max_connections"):
            row = conn.execute(f"SHOW {name}").fetchone()
            shown[name] = str(row[0]) if row else "?"
        row = conn.execute("SHOW server_version").fetchone()
        shown["server_version"] = str(row[0]) if row else "?"
    return shown


@contextlib.contextmanager
def _workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="chatlog-pgnodes-") as root:
        yield Path(root)


async def main_async(node_counts: Sequence[int], seconds: float, repeat: int, pool_requests: int,
                     drain_timeout: float, durable: bool, shared_sessions: float) -> None:
    pools = [body_pool(pool_requests, 100 + k, shared_sessions) for k in range(max(node_counts))]
    results: list[Result] = []
    with _workdir() as root, running_server() as server:
        settings = make_durable(server) if durable else {"fsync": "off (the tests' settings)"}
        for round_ in range(repeat):
            sqlite_dir = root / f"sqlite-{round_}"
            store = Store(None, "", sqlite_dir / "chatlog.sqlite3")
            try:
                results.append(await run_configuration(
                    "SQLite, 1 node", [Node("solo", sqlite_dir, "")], store, pools[:1], seconds, drain_timeout))
            finally:
                store.close()
            for count in node_counts:
                url = server.create_database()
                store = Store(server, url, None)
                nodes = [Node(f"node-{k}", root / f"pg{count}-{round_}-{k}", url) for k in range(count)]
                try:
                    results.append(await run_configuration(
                        f"PostgreSQL, {count} node{'s' if count > 1 else ''}", nodes, store, pools[:count],
                        seconds, drain_timeout))
                finally:
                    store.close()
    report(results, settings, seconds, repeat)


def _median(results: Sequence[Result], attr: str) -> float:
    return statistics.median(float(getattr(r, attr)) for r in results)


def report(results: Sequence[Result], settings: dict[str, str], seconds: float, repeat: int) -> None:
    """One column per configuration (medians over the rounds), then the ratios and the verdict."""
    labels = list(dict.fromkeys(r.label for r in results))
    by_label = {label: [r for r in results if r.label == label] for label in labels}
    cpu = psutil.cpu_count() or 1
    print(f"one PostgreSQL {settings.get('server_version', '')} on this machine ({cpu} cores); "
          + ", ".join(f"{k}={v}" for k, v in settings.items() if k != "server_version"))
    print(f"load: {seconds:.0f} s per configuration, {PER_REQUEST} events a request, {IN_FLIGHT} in flight per node"
          f"{f', median of {repeat} rounds' if repeat > 1 else ''}")
    width = 21

    def row(name: str, values: Sequence[str]) -> None:
        print(f"{name:<44}" + "".join(f"{v:>{width}}" for v in values))

    def med(label: str, attr: str) -> float:
        return _median(by_label[label], attr)

    def cores(label: str, group: str) -> float:
        return statistics.median(r.cpu_cores.get(group, 0.0) for r in by_label[label])

    row("", labels)
    row("acknowledged events/s (all nodes)", [f"{med(lab, 'acked_eps'):,.0f}" for lab in labels])
    row("lines applied/s while loaded", [f"{med(lab, 'applied_eps_load'):,.0f}" for lab in labels])
    row("lines applied/s, load + drain", [f"{med(lab, 'applied_eps_total'):,.0f}" for lab in labels])
    row("lag when the load stopped (events)", [f"{med(lab, 'lag_at_end'):,.0f}" for lab in labels])
    row("lag when the load stopped (MB of files)", [f"{med(lab, 'lag_bytes_at_end') / 2**20:,.1f}" for lab in labels])
    row("time to drain it", [
        f"{med(lab, 'drain_s'):.1f} s" + ("" if all(r.drained for r in by_label[lab]) else " (cut)") for lab in labels
    ])
    row("lines applied/s while draining (no ingest)", [f"{med(lab, 'drain_eps'):,.0f}" for lab in labels])
    row("lines quarantined (should be 0)", [f"{med(lab, 'quarantined'):,.0f}" for lab in labels])
    row("PostgreSQL commits/s", [f"{med(lab, 'commits_ps'):,.0f}" if "Postgre" in lab else "-" for lab in labels])
    row("PostgreSQL rows/s (ins+upd+del)", [f"{med(lab, 'rows_ps'):,.0f}" if "Postgre" in lab else "-"
                                            for lab in labels])

    def per_line(label: str) -> str:
        lines = sum(r.applied_during_load + r.lag_at_end for r in by_label[label])
        if "Postgre" not in label or not lines:
            return "-"
        rows = sum(r.rows for r in by_label[label])
        commits = sum(r.commits for r in by_label[label])
        return f"{rows / lines:.2f} / {lines / max(commits, 1):,.0f}"

    row("rows per line / lines per commit", [per_line(lab) for lab in labels])
    row("share of the time the write lock is held", [
        f"{med(lab, 'lock_held'):.0%}" if "Postgre" in lab else "-" for lab in labels
    ])
    row("nodes waiting for the write lock (mean)", [
        f"{med(lab, 'lock_waiters_mean'):.2f}" if "Postgre" in lab else "-" for lab in labels
    ])
    row("CPU cores: PostgreSQL", [f"{cores(lab, 'postgres'):.2f}" if "Postgre" in lab else "-" for lab in labels])
    def pg_cpu_per_line(label: str) -> str:
        lines = sum(r.applied_during_load + r.lag_at_end for r in by_label[label])
        used = sum(r.cpu_cores.get("postgres", 0.0) * (r.load_s + r.drain_s) for r in by_label[label])
        return f"{used / lines * 1e6:.1f} us" if "Postgre" in label and lines else "-"

    row("connections to PostgreSQL (most seen)", [
        f"{med(lab, 'connections'):.0f}" if "Postgre" in lab else "-" for lab in labels
    ])
    row("PostgreSQL CPU per line applied", [pg_cpu_per_line(lab) for lab in labels])
    row("CPU cores: chatlog nodes", [f"{cores(lab, 'chatlog nodes'):.2f}" for lab in labels])
    row("CPU cores: load driver", [f"{cores(lab, 'driver'):.2f}" for lab in labels])
    row("CPU cores: whole machine", [f"{cores(lab, 'machine'):.2f} of {cpu}" for lab in labels])
    row("CPU cores: other work on the machine", [
        f"{max(0.0, cores(lab, 'machine') - sum(cores(lab, g) for g in ('postgres', 'chatlog nodes', 'driver'))):.2f}"
        for lab in labels
    ])
    pg_labels = [lab for lab in labels if "Postgre" in lab]
    if not pg_labels:
        return
    base = pg_labels[0]
    print()
    row(f"ratio against {base}", pg_labels)
    for name, attr in (("acknowledged events/s", "acked_eps"), ("lines applied/s, load + drain", "applied_eps_total"),
                       ("PostgreSQL commits/s", "commits_ps"), ("PostgreSQL rows/s", "rows_ps")):
        row(name, [f"{med(lab, attr) / max(med(base, attr), 1e-9):.2f}" for lab in pg_labels])
    sqlite = next((lab for lab in labels if lab.startswith("SQLite")), None)
    if sqlite is not None:
        print(f"{base} / {sqlite}: acknowledged {med(base, 'acked_eps') / med(sqlite, 'acked_eps'):.2f}, "
              f"lines applied {med(base, 'applied_eps_total') / med(sqlite, 'applied_eps_total'):.2f}")
    print()
    print(verdict(by_label, pg_labels, cpu))


def verdict(by_label: dict[str, list[Result]], pg_labels: Sequence[str], cpu: int) -> str:
    """Where lines/s stops growing with N, and whether PostgreSQL or the machine was the busy one."""
    def med(label: str, attr: str) -> float:
        return _median(by_label[label], attr)

    def cores(label: str, group: str) -> float:
        return statistics.median(r.cpu_cores.get(group, 0.0) for r in by_label[label])

    saturated_at = None
    for previous, label in itertools.pairwise(pg_labels):
        if med(label, "applied_eps_total") < 1.15 * med(previous, "applied_eps_total"):
            saturated_at = previous
            break
    lines = []
    if saturated_at is None:
        lines.append(f"lines applied/s still grew up to {pg_labels[-1]}: no saturation seen in this range")
    else:
        lines.append(f"lines applied/s stops growing after {saturated_at} (less than +15% for the next step)")
    last = saturated_at or pg_labels[-1]
    pg, machine = cores(last, "postgres"), cores(last, "machine")
    other = max(0.0, machine - sum(cores(last, g) for g in ("postgres", "chatlog nodes", "driver")))
    lines.append(
        f"at {last}: PostgreSQL used {pg:.2f} of {cpu} cores"
        + (" (PostgreSQL is busy)" if pg >= 0.5 * cpu else " (PostgreSQL is not the busy one)")
        + f"; the whole machine {machine:.2f} of {cpu}, {other:.2f} of them other work"
        + (" (the machine is the limit)" if machine > 0.85 * cpu else "")
    )
    most = pg_labels[-1]
    held = statistics.median(r.lock_held for r in by_label[most])
    waiting = _median(by_label[most], "lock_waiters_mean")
    if waiting >= 0.5:
        lines.append(
            f"at {most}: the global write lock is held {held:.0%} of the time with {waiting:.1f} nodes waiting"
            " for it: the nodes' derived writes run one at a time"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", default="1,2,4", help="node counts to run against PostgreSQL, comma-separated")
    parser.add_argument("--seconds", type=float, default=15.0, help="load time per configuration")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of every configuration (medians reported)")
    parser.add_argument("--pool-requests", type=int, default=200,
                        help="distinct 100-event bodies per node, cycled for the whole load")
    parser.add_argument("--drain-timeout", type=float, default=300.0, help="give up waiting for the drain after this")
    parser.add_argument("--shared-sessions", type=float, default=0.0,
                        help="share of events in sessions that every node sees (0 = each node its own sessions)")
    parser.add_argument("--no-fsync", action="store_true",
                        help="keep the tests' server settings (fsync and synchronous_commit off)")
    args = parser.parse_args(argv)
    counts = sorted({int(n) for n in args.nodes.split(",") if n.strip()})
    if not counts or min(counts) < 1:
        parser.error("--nodes needs node counts >= 1")
    asyncio.run(main_async(counts, args.seconds, args.repeat, args.pool_requests, args.drain_timeout,
                           durable=not args.no_fsync, shared_sessions=args.shared_sessions))


if __name__ == "__main__":
    main()
