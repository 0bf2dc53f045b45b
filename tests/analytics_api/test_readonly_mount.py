"""The analytics API on a read-only mount of the data directory, as docker-compose mounts it.

It must answer with the ingestor stopped (no ``-wal``/``-shm``), follow the ingestor when
it comes back and writes, and never create a file, on a read-only mount or a writable one.
Real processes and a real read-only bind mount (root only; skipped with the reason when
this machine cannot mount).
"""

from __future__ import annotations

import json
import random
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.analytics import AnalyticsProcess
from tests.support.daemon import IngestorProcess
from tests.support.events import make_event


def post(ingestor: IngestorProcess, events: list[dict[str, Any]]) -> None:
    """Post events to the running ingestor (202)."""
    request = urllib.request.Request(ingestor.url + "/v1/logs", data=json.dumps(events).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 202


def queries(count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` user events of the last minute."""
    rng = random.Random(seed)
    return [make_event(rng, session_id=f"s{seed}-{i}") for i in range(count)]


def until_total(api: AnalyticsProcess, total: int, seconds: float = 20.0) -> None:
    """Wait until the summary counts ``total`` queries."""
    deadline = time.monotonic() + seconds
    body: Any = None
    while time.monotonic() < deadline:
        status, body = api.get("/api/analytics/summary")
        if status == 200 and body["total_queries"] == total:
            return
        time.sleep(0.1)
    raise AssertionError(f"summary never reached {total}: {body}")


def listing(root: Path) -> set[str]:
    """Every path under ``root``."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


ENDPOINTS = (
    "/healthz",
    "/api/analytics/summary",
    "/api/analytics/timeline?period=hourly&days=2",
    "/api/analytics/collections",
    "/api/admin/conversations",
)


def answers_everywhere(api: AnalyticsProcess, total: int) -> None:
    """Every endpoint answers 200 (no 503 "unable to open database file"), with the data."""
    for path in ENDPOINTS:
        status, body = api.get(path)
        assert status == 200, (path, body)
    assert api.get("/api/analytics/summary")[1]["total_queries"] == total
    grafana = {"range": {"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"},
               "targets": [{"refId": "A", "target": "queries"}]}
    assert api.get("/grafana/query", grafana)[0] == 200


@pytest.fixture
def stored(tmp_path: Path, short_dir: Path) -> Iterator[tuple[IngestorProcess, Path]]:
    """A data directory holding 30 queries, its ingestor stopped cleanly (no -wal, no -shm)."""
    ingestor = IngestorProcess(tmp_path / "data", short_dir / "ingest.sock").start()
    try:
        post(ingestor, queries(30, 1))
        api = AnalyticsProcess(ingestor.data_dir)
        try:
            until_total(api, 30)
        finally:
            api.stop()
        code, err = ingestor.terminate()
        assert code == 0, err
        yield ingestor, ingestor.data_dir
    finally:
        ingestor.stop_quietly()


@pytest.fixture
def read_only_mount(stored: tuple[IngestorProcess, Path], tmp_path: Path) -> Iterator[Path]:
    """The stored data directory bind-mounted read-only."""
    target = tmp_path / "ro"
    target.mkdir()
    source = stored[1]
    try:
        subprocess.run(["mount", "--bind", str(source), str(target)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        # As the full-disk fixture does: make test runs as root (CI does), where this works.
        pytest.fail(f"cannot bind-mount here (needs root and CAP_SYS_ADMIN): {exc}")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(target)], check=True, capture_output=True)
        with pytest.raises(OSError):
            (target / "probe").touch()
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False, capture_output=True)


def test_writable_directory_gets_no_new_file(stored: tuple[IngestorProcess, Path]) -> None:
    """With the ingestor stopped, reading a writable data directory creates nothing (no -wal/-shm)."""
    _, data_dir = stored
    before = listing(data_dir)
    assert not {"chatlog.sqlite3-wal", "chatlog.sqlite3-shm"} & before
    api = AnalyticsProcess(data_dir)
    try:
        answers_everywhere(api, 30)
    finally:
        api.stop()
    assert listing(data_dir) == before


def test_read_only_mount_answers_and_follows_the_writer(stored: tuple[IngestorProcess, Path],
                                                         read_only_mount: Path) -> None:
    """On a read-only mount: answers with the ingestor stopped, shows what a restarted
    ingestor writes, still answers once it stopped again, and creates no file."""
    ingestor, data_dir = stored
    before = listing(data_dir)
    api = AnalyticsProcess(read_only_mount)
    try:
        answers_everywhere(api, 30)
        assert listing(data_dir) == before
        ingestor.start()
        post(ingestor, queries(12, 2))
        until_total(api, 42)
        answers_everywhere(api, 42)
        code, err = ingestor.terminate()
        assert code == 0, err
        answers_everywhere(api, 42)
        ingestor.start()
        post(ingestor, queries(5, 3))
        until_total(api, 47)
    finally:
        api.stop()
