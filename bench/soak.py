"""Soak: a real ingestor under mixed valid and hostile traffic, SIGKILLed at random moments.

Run: ``python -m bench.soak [--seconds N]`` (or ``make bench``); about three minutes by
default. Not a timed test: it prints one table and exits 1 when an acknowledged event
was lost or an event was stored twice.

- ``python -m ingestor`` (which starts its derived-state child) on a temporary data
  directory, TCP on 127.0.0.1 only, with an ingest token and a 2 MiB body limit;
- sender tasks post, over fresh loopback connections, valid NDJSON batches with known
  log_ids (some sent again), and every hostile input of ``bench.soak_traffic``;
- a ``ChatlogClient`` thread logs valid events the whole time (spooling through kills);
- at random moments the ingestor or its derived child is SIGKILLed; the ingestor is
  started again (the child is restarted by the ingestor itself);
- at the end: the client is closed, the derived state catches up, the ingestor stops
  with SIGTERM, and the day files and the SQLite statistics are read back.

A truncated body ends the connection, so "no answer" is its expected outcome; for the
other kinds "no answer" counts the requests that met a killed or restarting ingestor.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from bench.soak_traffic import KINDS, MAX_BODY, TOKEN, Request, Traffic, send
from chatlog_client import ChatlogClient
from shared.layout import StorageLayout, Stream
from shared.reader import ReadCounts, iter_lines
from shared.settings import Settings
from tests.support.events import make_event

SECRET = "soak-user-hash-secret-0123456789"
CATCH_UP_SECONDS = 600.0
SENDERS = 4


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Ingestor:
    """``python -m ingestor`` on the soak's data directory, killed and restarted at will."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = _free_port()
        self.stderr_path = data_dir.parent / "ingestor.stderr"
        self.env = {
            **os.environ, "CHATLOG_DATA_DIR": str(data_dir), "CHATLOG_INGEST_PORT": str(self.port),
            "CHATLOG_INGEST_SOCKET": str(data_dir.parent / "ingest.sock"), "CHATLOG_USER_HASH_SECRET": SECRET,
            "CHATLOG_INGEST_TOKEN": TOKEN, "CHATLOG_MAX_BODY_BYTES": str(MAX_BODY), "CHATLOG_LOG_LEVEL": "WARNING",
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def up(self) -> bool:
        """True while the ingestor process runs."""
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 60.0) -> None:
        """Start and wait until /healthz answers 200; RuntimeError when it cannot start."""
        stderr = os.open(self.stderr_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "ingestor"], env=self.env,
                                         stdout=subprocess.DEVNULL, stderr=stderr)
        finally:
            os.close(stderr)
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the ingestor exited with {self.proc.returncode} while starting")
            if self.health() is not None:
                return
            time.sleep(0.1)
        raise RuntimeError("the ingestor did not become healthy")

    def health(self) -> dict[str, Any] | None:
        """The /healthz body when it answers 200."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as resp:
                body: dict[str, Any] = json.loads(resp.read())
                return body
        except (OSError, ValueError):
            return None

    def child(self) -> psutil.Process | None:
        """The derived-state child, when it runs."""
        if not self.up:
            return None
        assert self.proc is not None
        with contextlib.suppress(psutil.Error):
            children = psutil.Process(self.proc.pid).children()
            return children[0] if children else None
        return None

    def kill(self) -> None:
        """SIGKILL the ingestor (its child sees the end of its stdin and stops by itself)."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(30)

    def kill_all(self, child_pids: set[int]) -> None:
        """At the end: SIGKILL the ingestor if it still runs, and any derived child of ours left over."""
        if self.up:
            self.kill()
        for pid in child_pids:
            with contextlib.suppress(psutil.Error):
                child = psutil.Process(pid)
                if "ingestor.derived" in " ".join(child.cmdline()):
                    child.kill()

    def stop(self, timeout: float = 45.0) -> str:
        """SIGTERM and wait: what happened (its exit code, or that it had to be killed)."""
        if not self.up:
            return "it was not running"
        assert self.proc is not None
        self.proc.terminate()
        try:
            return f"exit code {self.proc.wait(timeout)}"
        except subprocess.TimeoutExpired:
            self.kill()
            return f"no exit within {timeout:.0f} s: SIGKILLed"


@dataclass
class Tally:
    """What the senders saw."""

    answers: dict[str, Counter[int | None]] = field(default_factory=dict)
    acked: set[str] = field(default_factory=set)
    kills: Counter[str] = field(default_factory=Counter)
    peak_rss: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("ingestor", "derived", "both"), 0))
    child_pids: set[int] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)

    def record(self, request: Request, status: int | None) -> None:
        """Count one answer; a 202 acknowledges every event the request carried."""
        self.answers.setdefault(request.kind, Counter())[status] += 1
        if status == 202:
            self.acked.update(request.ids)


async def sender(seed: int, port: int, end: float, tally: Tally, history: deque[Request],
                 unanswered: deque[Request], skip: Sequence[str]) -> None:
    """Post requests of every kind until ``end``; a valid batch left unanswered is sent again later."""
    traffic = Traffic(random.Random(seed), history, unanswered)
    for kind in skip:
        del traffic.kinds[kind]
    while time.monotonic() < end:
        request = traffic.next()
        status = await send(port, request)
        tally.record(request, status)
        if status is None or status >= 500:
            if request.kind in ("valid", "retry"):
                unanswered.append(request)
            await asyncio.sleep(0.05)  # the ingestor is down or restarting: do not spin


async def chaos(ingestor: Ingestor, end: float, tally: Tally, rng: random.Random) -> None:
    """SIGKILL the ingestor or its derived child at random moments; start the ingestor again."""
    await asyncio.sleep(rng.uniform(3, 8))
    while time.monotonic() < end - 5:
        child = ingestor.child()
        if child is not None and rng.random() < 0.4:
            with contextlib.suppress(psutil.Error):
                child.kill()
                tally.kills["derived"] += 1
        elif ingestor.up:
            ingestor.kill()
            tally.kills["ingestor"] += 1
            await asyncio.sleep(rng.uniform(0.0, 1.5))
            await asyncio.to_thread(ingestor.start)
        await asyncio.sleep(rng.uniform(4, 15))


async def sample_rss(ingestor: Ingestor, tally: Tally, stop: asyncio.Event) -> None:
    """Peak RSS of the ingestor, of its derived child, and of both together."""
    while not stop.is_set():
        if ingestor.up and ingestor.proc is not None:
            with contextlib.suppress(psutil.Error):
                parent = psutil.Process(ingestor.proc.pid)
                mine = parent.memory_info().rss
                children = parent.children(recursive=True)
                theirs = sum(c.memory_info().rss for c in children)
                tally.child_pids.update(c.pid for c in children)
                for role, rss in (("ingestor", mine), ("derived", theirs), ("both", mine + theirs)):
                    tally.peak_rss[role] = max(tally.peak_rss[role], rss)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.25)


def client_thread(url: str, spool: Path, end: float, may_close: threading.Event, logged: list[str],
                  result: dict[str, Any]) -> None:
    """A ChatlogClient logging valid events until ``end``, closed once the ingestor is up for good."""
    rng = random.Random(7)
    client = ChatlogClient(url, token=TOKEN, spool_path=spool, flush_interval=0.1)
    while time.monotonic() < end:
        for _ in range(rng.randint(1, 10)):
            event = make_event(rng, session_id=f"client-{rng.randrange(100)}",
                               message_type=rng.choice(("user", "assistant")))
            client.log(event)
            logged.append(event["log_id"])
        time.sleep(0.05)
    may_close.wait(300)
    result["left"] = client.close(120)
    result["stats"] = client.stats


def _ids_in(path: Path, key: str | None = None) -> set[str]:
    ids = set()
    if path.exists():
        for line in path.read_bytes().splitlines():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                entry = json.loads(line)
                ids.add((entry[key] if key else entry)["log_id"])
    return ids


def client_acked(spool: Path, logged: list[str]) -> set[str]:
    """The client's events neither left in its spool nor refused: the daemon acknowledged them."""
    left = _ids_in(spool) | _ids_in(spool.with_name(spool.name + ".replaying"))
    refused = _ids_in(spool.with_name(spool.name + ".rejected"), "event")
    return set(logged) - left - refused


def read_back(data_dir: Path) -> tuple[Counter[str], set[str], ReadCounts]:
    """log_id -> times stored, the log_ids of user events, and what reading the day files met."""
    layout = StorageLayout.from_settings(Settings.for_data_dir(data_dir, user_hash_secret=SECRET))
    stored: Counter[str] = Counter()
    users: set[str] = set()
    counts = ReadCounts()
    for files in layout.days(Stream.LOGS).values():
        if files.readable is None:
            continue
        for line in iter_lines(files.readable, counts):
            try:
                record = json.loads(line)
                stored[record["log_id"]] += 1
            except (ValueError, KeyError, TypeError):
                counts.corrupt += 1
                continue
            if record.get("message_type") == "user":
                users.add(record["log_id"])
    return stored, users, counts


def derived_totals(data_dir: Path) -> tuple[int, int] | str:
    """Statistics' total queries (all collections) and the lines the derived state applied."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{data_dir / 'chatlog.sqlite3'}?mode=ro", uri=True)) as db:
            (queries,) = db.execute(
                "SELECT coalesce(sum(total_queries), 0) FROM chat_statistics_daily WHERE scope = ''").fetchone()
            (applied,) = db.execute("SELECT coalesce(sum(lines), 0) FROM ingest_offsets").fetchone()
    except sqlite3.Error as exc:
        return f"unreadable: {exc}"
    return int(queries), int(applied)


def stderr_errors(path: Path) -> Counter[str]:
    """The distinct last lines of the tracebacks the ingestor and its child wrote."""
    errors: Counter[str] = Counter()
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    in_traceback = False
    for i, line in enumerate(lines):
        if line.startswith("Traceback"):
            in_traceback = True
        elif in_traceback and line and not line.startswith((" ", "\t", "During", "The above")):
            errors[re.sub(r"0x[0-9a-f]+|\d{3,}", "N", line)[:140]] += 1
            in_traceback = i + 1 < len(lines) and lines[i + 1].startswith("Traceback")
    return errors


def print_report(tally: Tally, rows: list[tuple[str, str]]) -> None:
    """One table: the answers per kind of input, then the totals."""
    width = 14
    print(f"{'input':<{width}} {'requests':>8} {'2xx':>6} {'4xx':>6} {'500':>5} {'503':>5} {'5xx other':>9} "
          f"{'no answer':>9}  4xx/5xx statuses")
    for kind, answers in sorted(tally.answers.items()):
        codes = [c for c in answers if c is not None]
        ok = sum(answers[c] for c in codes if 200 <= c < 300)
        client_errors = sum(answers[c] for c in codes if 400 <= c < 500)
        other5xx = sum(answers[c] for c in codes if c >= 500 and c not in (500, 503))
        detail = " ".join(f"{c}x{answers[c]}" for c in sorted(codes) if c >= 400)
        print(f"{kind:<{width}} {sum(answers.values()):>8} {ok:>6} {client_errors:>6} {answers[500]:>5} "
              f"{answers[503]:>5} {other5xx:>9} {answers[None]:>9}  {detail}")
    print("-" * 96)
    for name, value in rows:
        print(f"{name:<40} {value}")


async def wind_down(ingestor: Ingestor, tally: Tally, client: threading.Thread, may_close: threading.Event
                    ) -> str:
    """The ingestor up, the client closed, the derived state caught up, then SIGTERM: how it ended."""
    if not ingestor.up:
        await asyncio.to_thread(ingestor.start)
    may_close.set()
    await asyncio.to_thread(client.join, 180)
    # After the last restart the derived state may have a long backlog (its cold catch-up is
    # slow, see the README's benchmarks): wait for it, bounded, and say how long it took.
    started = time.monotonic()
    while time.monotonic() - started < CATCH_UP_SECONDS:
        health = await asyncio.to_thread(ingestor.health)
        derived = (health or {}).get("derived", {})
        if derived.get("running") and not derived.get("catching_up") and derived.get("lag_bytes") == 0:
            took = time.monotonic() - started
            tally.notes.append(f"the derived state caught up {took:.0f} s after the traffic ended")
            break
        await asyncio.sleep(0.5)
    else:
        tally.notes.append(f"the derived state had not caught up {CATCH_UP_SECONDS:.0f} s after the traffic ended")
    return await asyncio.to_thread(ingestor.stop)


async def soak(seconds: float, work: Path, skip: Sequence[str]) -> int:
    """Run the soak in ``work``; the exit code."""
    data_dir = work / "data"
    ingestor = Ingestor(data_dir)
    tally = Tally()
    history: deque[Request] = deque(maxlen=300)
    unanswered: deque[Request] = deque(maxlen=2000)
    logged: list[str] = []
    client_result: dict[str, Any] = {}
    spool = work / "client-spool.ndjson"
    stop_sampling = asyncio.Event()
    sampler = asyncio.create_task(sample_rss(ingestor, tally, stop_sampling))
    may_close = threading.Event()
    stopped = "not reached (see the notes)"
    try:
        await asyncio.to_thread(ingestor.start)
        end = time.monotonic() + seconds
        client = threading.Thread(target=client_thread, daemon=True, args=(
            f"http://127.0.0.1:{ingestor.port}", spool, end, may_close, logged, client_result))
        client.start()
        tasks = [asyncio.create_task(sender(i, ingestor.port, end, tally, history, unanswered, skip))
                 for i in range(SENDERS)]
        tasks.append(asyncio.create_task(chaos(ingestor, end, tally, random.Random(99))))
        outcome = await asyncio.gather(*tasks, return_exceptions=True)
        for failed in (o for o in outcome if isinstance(o, BaseException)):
            tally.notes.append(f"traffic stopped early: {type(failed).__name__}: {failed}")
        stopped = await wind_down(ingestor, tally, client, may_close)
    except RuntimeError as exc:
        tally.notes.append(str(exc))
    finally:
        may_close.set()
        stop_sampling.set()
        await sampler
        ingestor.kill_all(tally.child_pids)
    tally.acked |= client_acked(spool, logged)
    return report(tally, ingestor, stopped, logged, client_result)


def report(tally: Tally, ingestor: Ingestor, stopped: str, logged: list[str], client_result: dict[str, Any]) -> int:
    """Read the day files and the statistics back, print the table; 1 when events were lost or doubled."""
    data_dir = ingestor.data_dir
    stored, users, counts = read_back(data_dir)
    lost = tally.acked - set(stored)
    duplicated = sum(1 for n in stored.values() if n > 1)
    totals = derived_totals(data_dir)
    stats = client_result.get("stats")
    unexpected_children = len(tally.child_pids) - ingestor.starts - tally.kills["derived"]
    mib = 1024 * 1024
    rows = [
        ("events acked (202)", f"{len(tally.acked)}"),
        ("events stored (distinct log_ids)", f"{len(stored)}"),
        ("lost (acked, not stored)", f"{len(lost)}"),
        ("duplicated (stored more than once)", f"{duplicated}"),
        ("day-file lines torn / corrupt", f"{counts.torn} / {counts.corrupt}"),
        ("stored user events (distinct)", f"{len(users)}"),
    ]
    if isinstance(totals, str):
        rows.append(("derived statistics", totals))
    else:
        queries, applied = totals
        verdict = "equal" if queries == len(users) else f"off by {queries - len(users):+d}"
        rows += [("derived total_queries", f"{queries} ({verdict})"),
                 ("derived lines applied / day-file lines", f"{applied} / {counts.lines}")]
    rows += [
        ("kills: ingestor / derived child", f"{tally.kills['ingestor']} / {tally.kills['derived']}"),
        ("derived children not explained by kills", f"{max(0, unexpected_children)}"),
        ("ingestor at SIGTERM", stopped),
        ("peak RSS MiB: ingestor / child / both", f"{tally.peak_rss['ingestor'] / mib:.0f} / "
         f"{tally.peak_rss['derived'] / mib:.0f} / {tally.peak_rss['both'] / mib:.0f}"),
        ("ChatlogClient logged / left in spool", f"{len(logged)} / {client_result.get('left', 'not closed')}"),
    ]
    if stats is not None:
        rows.append(("ChatlogClient sent/replayed/spooled/rej", f"{stats.sent} / {stats.replayed} / "
                                                                f"{stats.spooled} / {stats.rejected}"))
    for line, n in stderr_errors(ingestor.stderr_path).most_common(8):
        rows.append((f"stderr traceback x{n}", line))
    rows += [("note", note) for note in tally.notes]
    print_report(tally, rows)
    return 1 if lost or duplicated else 0


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the arguments, run the soak in a temporary folder, exit with its verdict."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=150.0, help="how long traffic runs (default 150)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (data, stderr)")
    parser.add_argument("--skip", action="append", default=[], choices=sorted(KINDS),
                        help="leave out one kind of input (repeatable), e.g. to see the rest work")
    args = parser.parse_args(argv)
    # The client's spooling warnings would bury the table; its outcome is in it.
    logging.getLogger("chatlog_client").setLevel(logging.ERROR)
    work = Path(tempfile.mkdtemp(prefix="soak", dir="/tmp"))
    try:
        code = asyncio.run(soak(args.seconds, work, args.skip))
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
