"""Erasure while the ingestor runs and events keep arriving: nothing of the user stays, nothing else moves."""

from __future__ import annotations

import contextlib
import json
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import msgspec
import zstandard

from chat_statistics.top_queries import query_key
from shared.privacy import UserHasher
from tests.conftest import TEST_SECRET
from tests.support.daemon import IngestorProcess
from tests.support.derived import totals
from tests.support.events import make_event

COLLECTION = "hr-docs"
VICTIM_ONLY = "quokka 사원증 재발급은 어디서 하나요 zebra"
SHARED = "How do I reset my password?"
# The same query as SHARED, and the smallest text of it: it is the one top queries show.
VICTIM_SHARED = "HOW DO I RESET MY PASSWORD?"


def post(url: str, events: list[dict[str, Any]]) -> int:
    request = urllib.request.Request(
        url + "/v1/logs", data=json.dumps(events).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


class Poster(threading.Thread):
    """Posts other users' events until stopped; remembers every acknowledged one."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.stopping = threading.Event()
        self.acked: list[dict[str, Any]] = []
        self.rng = random.Random(11)
        self.refused = 0

    def run(self) -> None:
        n = 0
        while not self.stopping.is_set():
            n += 1
            batch = [other_event(self.rng, n, i) for i in range(5)]
            while post(self.url, batch) != 202:  # 503 while the erasure holds the files: retry
                self.refused += 1
                time.sleep(0.05)
            self.acked.extend(batch)
            time.sleep(0.02)


def other_event(rng: random.Random, n: int, i: int) -> dict[str, Any]:
    kind = "user" if i % 2 == 0 else "assistant"
    event = make_event(rng, session_id=f"other-{n % 7}", user_id=f"other-{n % 3}", message_type=kind,
                       collection_name=COLLECTION)
    if kind == "user" and i == 0:
        event["message_content"] = SHARED
    return event


def chatlog(daemon: IngestorProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CHATLOG_DATA_DIR": str(daemon.data_dir), "CHATLOG_USER_HASH_SECRET": TEST_SECRET,
           "CHATLOG_INGEST_SOCKET": str(daemon.socket_path)}
    return subprocess.run([sys.executable, "-m", "chatlog", *args], env=env, capture_output=True, text=True,
                          timeout=300)


def wait_applied(data_dir: Path, lines: int, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while totals(data_dir)[0] != lines:
        assert time.monotonic() < deadline, f"applied {totals(data_dir)[0]} of {lines} lines"
        time.sleep(0.1)


def file_bytes(root: Path) -> dict[Path, bytes]:
    """Every file's content, compressed day files decompressed."""
    out = {}
    for path in root.rglob("*"):
        if path.is_file() and not path.is_socket():
            data = path.read_bytes()
            if path.name.endswith(".zst") and data:
                data = zstandard.ZstdDecompressor().stream_reader(data).read()
            out[path] = data
    return out


def log_ids(data_dir: Path) -> Counter[str]:
    found: Counter[str] = Counter()
    for path in (data_dir / "data").glob("*.jsonl"):
        for line in path.read_bytes().splitlines():
            if line:
                found[msgspec.json.decode(line)["log_id"]] += 1
    return found


def statistics(conn: sqlite3.Connection) -> dict[str, tuple[int, ...]]:
    """The additive counts of every statistics table."""
    columns = "sum(total_queries), sum(message_count), sum(error_count), sum(total_tokens)"
    return {
        table: tuple(conn.execute(f"SELECT {columns} FROM {table}").fetchone())
        for table in ("chat_statistics", "chat_statistics_overall", "chat_statistics_daily WHERE scope = ''")
    }


def test_online_erasure_while_events_arrive(daemon: IngestorProcess) -> None:
    """The CLI erases through the running ingestor; other events are stored and counted once."""
    daemon.start()
    rng = random.Random(7)
    victim = [
        make_event(rng, session_id="victim-s1", user_id="victim", collection_name=COLLECTION,
                   message_content=VICTIM_ONLY),
        make_event(rng, session_id="victim-s1", user_id="victim", collection_name=COLLECTION,
                   message_type="assistant"),
        make_event(rng, session_id="victim-s2", user_id="victim", collection_name=COLLECTION,
                   message_content=VICTIM_SHARED),
        make_event(rng, session_id="victim-s2", user_id="victim", collection_name=COLLECTION,
                   message_type="assistant"),
    ]
    before = [other_event(rng, 1000 + n, i) for n in range(4) for i in range(5)]
    assert post(daemon.url, victim + before) == 202
    wait_applied(daemon.data_dir, len(victim) + len(before))
    with contextlib.closing(sqlite3.connect(daemon.data_dir / "chatlog.sqlite3")) as conn:
        stats_before = statistics(conn)
    assert chatlog(daemon, "backup").returncode == 0  # a backup holds the user too
    backups_before = sorted((daemon.data_dir / "backups").iterdir())

    poster = Poster(daemon.url)
    poster.start()
    time.sleep(0.5)
    result = chatlog(daemon, "erase-user", "--user-id", "victim")
    time.sleep(0.5)
    poster.stopping.set()
    poster.join(60)
    assert result.returncode == 0, result.stderr
    assert "removed 4 data lines" in result.stdout
    assert len(poster.acked) > 20

    others = before + poster.acked
    wait_applied(daemon.data_dir, len(others))
    code, err = daemon.terminate()
    assert code == 0, err
    verified = chatlog(daemon, "verify")  # offsets match the rewritten files
    assert verified.returncode == 0, verified.stdout + verified.stderr

    backups_after = sorted((daemon.data_dir / "backups").iterdir())
    assert len(backups_after) == 1 and backups_after[0] not in backups_before  # replaced by a fresh one
    victim_hash = UserHasher(TEST_SECRET.encode()).hash("victim")
    needles = [victim_hash, VICTIM_ONLY, VICTIM_SHARED, "victim-s1", "victim-s2", query_key(VICTIM_ONLY)]
    for path, data in file_bytes(daemon.data_dir).items():
        for needle in needles:
            assert needle.encode() not in data, (needle, path)

    assert log_ids(daemon.data_dir) == Counter(e["log_id"] for e in others)
    with contextlib.closing(sqlite3.connect(daemon.data_dir / "chatlog.sqlite3")) as conn:
        (applied,) = conn.execute("SELECT sum(lines) FROM ingest_offsets WHERE stream = 'data'").fetchone()
        assert applied == len(others)
        (messages,) = conn.execute("SELECT sum(message_count) FROM chat_sessions").fetchone()
        assert messages == len(others)
        assert conn.execute("SELECT count(*) FROM chat_sessions WHERE user_hash = ?", (victim_hash,)).fetchone() == (0,)
        # Aggregate counts keep the erased events; the posted ones are counted once.
        posted = poster.acked
        added = (
            sum(e["message_type"] == "user" for e in posted), len(posted),
            0, sum(e.get("performance", {}).get("token_count", 0) for e in posted),
        )
        after = statistics(conn)
        for table, counts in stats_before.items():
            assert after[table] == tuple(a + b for a, b in zip(counts, added, strict=True)), table

        shared_key = query_key(SHARED)
        shared_by_others = sum(e["message_content"] == SHARED for e in others if e["message_type"] == "user")
        (rows,) = conn.execute(
            "SELECT sum(count) FROM chat_statistics_queries WHERE query_key = ?", (shared_key,)
        ).fetchone()
        assert rows == shared_by_others
        assert set(conn.execute("SELECT DISTINCT sample_text FROM chat_statistics_queries WHERE query_key = ?",
                                (shared_key,))) == {(SHARED,)}
        assert conn.execute("SELECT count(*) FROM chat_statistics_queries WHERE query_key = ?",
                            (query_key(VICTIM_ONLY),)).fetchone() == (0,)
        for table in ("chat_statistics", "chat_statistics_overall", "chat_statistics_daily"):
            listed = 0
            for (top,) in conn.execute(f"SELECT top_queries FROM {table}" + (
                    " WHERE scope = ''" if table == "chat_statistics_daily" else "")):
                for entry in json.loads(top):
                    if entry["key"] == shared_key:
                        listed += entry["count"]
                        assert entry["query"] == SHARED, table
            assert listed == shared_by_others, table


def test_erasure_endpoint_is_local_only(daemon: IngestorProcess) -> None:
    """Over TCP the endpoint answers 403 whatever is sent; on the socket a malformed hash is a 400."""
    daemon.start()
    request = urllib.request.Request(
        daemon.url + "/v1/admin/erase-user", data=json.dumps({"user_hash": "0" * 64}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        urllib.request.urlopen(request, timeout=30)
        raise AssertionError("erasure was accepted over TCP")
    except urllib.error.HTTPError as exc:
        assert exc.code == 403
        assert json.loads(exc.read())["error"] == "forbidden"
    result = chatlog(daemon, "erase-user", "--user-hash", "not-a-hash")
    assert result.returncode == 1 and "400" in result.stderr and "Traceback" not in result.stderr
    result = chatlog(daemon, "erase-user", "--user-hash", "0" * 64)
    assert result.returncode == 0 and "removed no lines" in result.stdout, result.stderr
