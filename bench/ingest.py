"""Ingest benchmark: chatlog over HTTP against the bare-storage ceiling and the guide's design.

Run: ``python -m bench.ingest`` (or ``make bench``). Traffic is realistic and mixed: user
questions and assistant answers (Korean and English text), user ids to hash, retrieval
info on the answers. One run measures, on this machine:

- batched: 100 events per request, 8 requests in flight, durable (fsynced) acks, and the
  ingestor's CPU time per event (its own process, not the derived-state one);
- bare-storage ceiling: the same NDJSON msgspec-decoded and validated, encoded, appended
  and fsynced per batch of 100 in-process: no HTTP, no hashing, no redaction;
- ingest-path ceiling: as above plus chatlog's record building (hash, redaction, ids);
- guide: the guide's §4.1 design (Queue(100), batch 20, aiofiles, ack on enqueue),
  timed until every event is in its file;
- single: 1 event per request, 16 in flight: events/s and p99 ack latency;
- batched again with PII redaction off, right after, for the cost of redaction;
- the peak memory of the ingestor and its derived-state process during the run.

``--baseline-tree DIR`` also runs the daemon from another source tree (e.g. an
unpacked older commit) on the same traffic, alternating with this one, so that a
before/after comparison shares the machine's load of the moment.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import aiohttp
import msgspec
import psutil

from ingestor.records import RecordBuilder
from ingestor.redaction import content_redactor
from shared.layout import StorageLayout
from shared.privacy import UserHasher
from shared.settings import Settings
from shared.wire import LogEventIn
from tests.support.events import make_event

SECRET = "bench-user-hash-secret-0123456789"


def ndjson_bodies(requests: int, per_request: int, seed: int) -> list[bytes]:
    """Pre-encoded NDJSON bodies of realistic mixed traffic (Korean and English text).

    Half user questions, half assistant answers with retrieval info, every event with a
    user id to hash.
    """
    rng = random.Random(seed)
    bodies = []
    # About ten messages per session and a few thousand users, as in a real chat service.
    sessions = max(1, requests * per_request // 10)
    for _ in range(requests):
        events = [
            make_event(
                rng, message_type=rng.choice(("user", "assistant")),
                session_id=f"s-{seed}-{rng.randrange(sessions)}", user_id=f"user-{rng.randrange(5000)}",
            )
            for _ in range(per_request)
        ]
        bodies.append(b"".join(msgspec.json.encode(e) + b"\n" for e in events))
    return bodies


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited during start-up")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError as exc:
            if getattr(exc, "code", None):  # an HTTP error answer still means it is up
                return
            time.sleep(0.05)
    raise TimeoutError(url)


class RssSampler:
    """Peak memory of a process and its children (the derived-state process), sampled while a phase runs.

    ``peak`` sums RSS, which counts the pages both interpreters share (libpython, the
    extension modules) twice; ``peak_pss`` sums PSS, which counts each shared page once
    (split among the processes mapping it): the tree's real footprint.
    """

    def __init__(self, pid: int) -> None:
        self._proc = psutil.Process(pid)
        self.peak = 0
        self.peak_pss = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            procs = [self._proc, *self._proc.children(recursive=True)]
            rss = pss = 0
            for proc in procs:
                with contextlib.suppress(psutil.Error):
                    info = proc.memory_full_info()
                    rss += info.rss
                    pss += info.pss
            self.peak = max(self.peak, rss)
            self.peak_pss = max(self.peak_pss, pss)
            await asyncio.sleep(0.1)

    def __enter__(self) -> RssSampler:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task:
            self._task.cancel()


async def drive(url: str, bodies: Sequence[bytes], in_flight: int) -> tuple[float, list[float]]:
    """Post every body with ``in_flight`` concurrent requests; return seconds and latencies."""
    queue: Iterator[bytes] = iter(bodies)
    latencies: list[float] = []
    headers = {"Content-Type": "application/x-ndjson"}

    async def worker(session: aiohttp.ClientSession) -> None:
        for body in queue:
            while True:
                started = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    if resp.status == 202:
                        latencies.append(time.perf_counter() - started)
                        break
                    if resp.status != 503:
                        raise RuntimeError(f"unexpected {resp.status}")
                    await asyncio.sleep(0.01)

    connector = aiohttp.TCPConnector(limit=in_flight)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(in_flight)))
        return time.perf_counter() - started, latencies


def bare_storage_ceiling(bodies: Sequence[bytes], directory: Path) -> float:
    """Events/s of msgspec decode + validate, encode, append, fsync per batch: nothing else."""
    decoder = msgspec.json.Decoder(LogEventIn)
    encoder = msgspec.json.Encoder()
    fd = os.open(directory / "bare.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    events = 0
    started = time.perf_counter()
    try:
        for body in bodies:
            decoded = decoder.decode_lines(body)
            os.write(fd, encoder.encode_lines(decoded))
            os.fsync(fd)
            events += len(decoded)
    finally:
        os.close(fd)
    return events / (time.perf_counter() - started)


def ceiling(bodies: Sequence[bytes], directory: Path) -> float:
    """Events/s of decode + build + encode + append + fsync per batch, no HTTP."""
    settings = Settings.for_data_dir(directory, user_hash_secret=SECRET)
    builder = RecordBuilder(
        StorageLayout.from_settings(settings), UserHasher(SECRET.encode()), 30, content_redactor(settings)
    )
    decoder = msgspec.json.Decoder(LogEventIn)
    fd = os.open(directory / "ceiling.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    events = 0
    started = time.perf_counter()
    try:
        for body in bodies:
            records = builder.build(decoder.decode_lines(body))
            os.write(fd, b"".join(r.line for r in records))
            os.fsync(fd)
            events += len(records)
    finally:
        os.close(fd)
    return events / (time.perf_counter() - started)


async def chatlog_phase(
    bodies: Sequence[bytes], singles: Sequence[bytes], directory: Path, tree: Path | None = None, **extra_env: str
) -> dict[str, float]:
    """The real ingestor in a subprocess (from ``tree`` if given): batched and single-event load, CPU, RSS."""
    port = _free_port()
    env = {
        **os.environ,
        "CHATLOG_DATA_DIR": str(directory),
        "CHATLOG_INGEST_PORT": str(port),
        "CHATLOG_INGEST_SOCKET": "",
        "CHATLOG_USER_HASH_SECRET": SECRET,
        "CHATLOG_LOG_LEVEL": "WARNING",
        **extra_env,
    }
    # Run from the tree's directory: ``-m`` puts it first on sys.path (the derived process inherits it).
    proc = subprocess.Popen([sys.executable, "-m", "ingestor"], env=env, cwd=tree)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_healthy(base + "/healthz", proc)
        with RssSampler(proc.pid) as rss:
            await drive(base + "/v1/logs", bodies[:20], 8)  # warm-up
            cpu_before = psutil.Process(proc.pid).cpu_times()
            seconds, _ = await drive(base + "/v1/logs", bodies[20:], 8)
            acked = time.perf_counter()
            cpu_after = psutil.Process(proc.pid).cpu_times()
            batched_events = sum(b.count(b"\n") for b in bodies[20:])
            await _derived_caught_up(directory, sum(b.count(b"\n") for b in bodies))
            derived_lag = time.perf_counter() - acked
            single_seconds, latencies = await drive(base + "/v1/logs", singles, 16) if singles else (1.0, [0.0] * 2)
        return {
            "batched_eps": batched_events / seconds,
            "cpu_us_per_event": (cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system)
            / batched_events * 1e6,
            "single_eps": len(singles) / single_seconds,
            "single_p50_ms": statistics.median(latencies) * 1000,
            "single_p99_ms": statistics.quantiles(latencies, n=100)[98] * 1000,
            "rss_mb": rss.peak / 2**20,
            "pss_mb": rss.peak_pss / 2**20,
            "derived_lag_s": derived_lag,
        }
    finally:
        proc.terminate()
        proc.wait(30)


async def guide_phase(bodies: Sequence[bytes], directory: Path) -> dict[str, float]:
    """The guide's design in a subprocess, timed until every event is in its file."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.guide_design", str(directory), str(port)])
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_healthy(base + "/v1/logs", proc)
        total = sum(b.count(b"\n") for b in bodies)
        started = time.perf_counter()
        ack_seconds, _ = await drive(base + "/v1/logs", [b"[" + b.strip().replace(b"\n", b",") + b"]"
                                                         for b in bodies], 8)
        while _lines(directory) < total:
            await asyncio.sleep(0.02)
        written = time.perf_counter() - started
        return {"ack_eps": total / ack_seconds, "written_eps": total / written}
    finally:
        proc.terminate()
        proc.wait(30)


async def _derived_caught_up(directory: Path, events: int) -> None:
    """Wait until the derived state (sessions, statistics, conversations) has applied ``events`` lines."""
    uri = f"file:{directory / 'chatlog.sqlite3'}?mode=ro"
    while True:
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
            (applied,) = db.execute("SELECT coalesce(sum(lines), 0) FROM ingest_offsets").fetchone()
        if applied >= events:
            return
        await asyncio.sleep(0.02)


def _lines(directory: Path) -> int:
    return sum(p.read_bytes().count(b"\n") for p in directory.glob("*.jsonl"))


async def main_async(requests: int, singles: int, baseline_tree: Path | None) -> None:
    """Run every phase and print the figures and ratios."""
    bodies = ndjson_bodies(requests + 20, 100, seed=1)
    single_bodies = ndjson_bodies(singles, 1, seed=2)
    sizes = [len(line) for line in bodies[0].splitlines()]
    root = Path(tempfile.mkdtemp(prefix="chatlog-bench-"))
    trees: list[tuple[str, Path | None]] = [("chatlog", None)]
    if baseline_tree is not None:
        trees.insert(0, ("baseline", baseline_tree.resolve()))
    on: dict[str, dict[str, float]] = {}
    off: dict[str, dict[str, float]] = {}
    try:
        for name in ("bare", "ceiling", "guide"):
            (root / name).mkdir()
        bare = bare_storage_ceiling(bodies[20:], root / "bare")
        ceil = ceiling(bodies[20:], root / "ceiling")
        # Each tree's redaction-off phase runs right after its redaction-on one: the ratio
        # of the two then shares the machine's load of the moment.
        for name, tree in trees:
            on[name] = await chatlog_phase(bodies, single_bodies, root / f"{name}-on", tree)
            off[name] = await chatlog_phase(bodies, [], root / f"{name}-off", tree, CHATLOG_PII_REDACTION="false")
        guide = await guide_phase(bodies[20 : 20 + max(20, requests // 4)], root / "guide")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    mean = statistics.mean(sizes)
    print(f"events: {requests * 100} batched + {singles} single; mean event {mean:.0f} bytes; "
          "half user questions, half assistant answers")
    print(f"{'measure':<52}" + "".join(f"{name:>16}" for name, _ in trees))

    def row(label: str, value: Callable[[str], str]) -> None:
        print(f"{label:<52}" + "".join(f"{value(name):>16}" for name, _ in trees))

    row("batched (100/req, 8 in flight, fsynced)", lambda n: f"{on[n]['batched_eps']:,.0f} ev/s")
    row("ingestor CPU per batched event", lambda n: f"{on[n]['cpu_us_per_event']:.1f} us")
    row("batched, PII redaction off", lambda n: f"{off[n]['batched_eps']:,.0f} ev/s")
    row("ingestor CPU per batched event, redaction off", lambda n: f"{off[n]['cpu_us_per_event']:.1f} us")
    row("statistics current, after the last batched ack", lambda n: f"{on[n]['derived_lag_s']:.2f} s")
    row("single (1/req, 16 in flight)", lambda n: f"{on[n]['single_eps']:,.0f} ev/s")
    row("single p50 ack latency", lambda n: f"{on[n]['single_p50_ms']:.1f} ms")
    row("single p99 ack latency", lambda n: f"{on[n]['single_p99_ms']:.1f} ms")
    row("ingestor + derived process, peak RSS sum", lambda n: f"{on[n]['rss_mb']:.0f} MB")
    row("ingestor + derived process, peak PSS sum", lambda n: f"{on[n]['pss_mb']:.0f} MB")
    print(f"{'bare-storage ceiling (decode+encode+append+fsync)':<52}{bare:>16,.0f} ev/s")
    print(f"{'ingest-path ceiling (+ hash, redact, build)':<52}{ceil:>16,.0f} ev/s")
    print(f"{'guide design, until written (not durable)':<52}{guide['written_eps']:>16,.0f} ev/s")
    print(f"{'guide design, acks on enqueue':<52}{guide['ack_eps']:>16,.0f} ev/s")
    print()
    for name, _ in trees:
        ours, plain = on[name], off[name]
        print(f"[{name}]")
        print(f"batched / bare-storage ceiling = {ours['batched_eps'] / bare:.2f}   (target >= 0.50)")
        print(f"batched / guide written        = {ours['batched_eps'] / guide['written_eps']:.1f}x  (target >= 10x)")
        print(f"single p99                     = {ours['single_p99_ms']:.1f} ms (target <= 10 ms)")
        print(f"redaction on / off             = {ours['batched_eps'] / plain['batched_eps']:.2f}   (target >= 0.90)")
        print(f"peak memory                    = {ours['pss_mb']:.0f} MB PSS, {ours['rss_mb']:.0f} MB RSS "
              "(target <= 150 MB)")


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=600, help="batched requests of 100 events")
    parser.add_argument("--singles", type=int, default=4000, help="single-event requests")
    parser.add_argument(
        "--baseline-tree", type=Path, default=None,
        help="also run the daemon from this source tree (an older commit, unpacked) for a before/after",
    )
    args = parser.parse_args(argv)
    asyncio.run(main_async(args.requests, args.singles, args.baseline_tree))


if __name__ == "__main__":
    main()
