"""Every file and folder a real run creates is private: folders 0750, files 0640, backups 0600."""

from __future__ import annotations

import json
import os
import random
import stat
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TEST_SECRET
from tests.support.daemon import IngestorProcess
from tests.support.events import make_event


@pytest.fixture
def common_umask() -> Iterator[None]:
    """The usual 022, under which SQLite and mkdir make 0644 files and 0755 folders."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def post(url: str, path: str, body: object) -> int:
    request = urllib.request.Request(
        url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(response.status)


def chatlog(data_dir: Path, socket_path: Path, *args: str) -> None:
    env = {**os.environ, "CHATLOG_DATA_DIR": str(data_dir), "CHATLOG_USER_HASH_SECRET": TEST_SECRET,
           "CHATLOG_INGEST_SOCKET": str(socket_path)}
    result = subprocess.run([sys.executable, "-m", "chatlog", *args], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr


def modes(root: Path) -> dict[Path, int]:
    """The permission bits of everything under ``root`` and of ``root`` itself."""
    found = {root: stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        found[path] = stat.S_IMODE(path.lstat().st_mode)
    return found


def test_everything_a_run_creates_is_private(
    common_umask: None, tmp_path: Path, short_dir: Path
) -> None:
    """Ingestor, derived process and CLI (backup, online and offline erasure) expose nothing to others."""
    data_dir = tmp_path / "deep" / "data"  # the parents are created too
    socket_path = data_dir / "ingest.sock"  # the default place, inside the data folder
    daemon = IngestorProcess(data_dir, short_dir / "unused.sock", CHATLOG_INGEST_SOCKET=str(socket_path))
    rng = random.Random(5)
    try:
        daemon.start()
        events = [make_event(rng, session_id="s1", user_id="u1"),
                  make_event(rng, session_id="s1", user_id="u1", message_type="assistant"),
                  make_event(rng, session_id="s2", user_id="u2")]
        assert post(daemon.url, "/v1/logs", events) == 202
        conversation = {"conversation_id": "c-posted", "collection_name": "hr-docs", "user_id": "u3",
                        "messages": [{"role": "user", "content": "재택근무 규정 알려주세요"},
                                     {"role": "assistant", "content": "주 2회까지 가능합니다."}]}
        assert post(daemon.url, "/v1/conversations", conversation) == 202
        chatlog(data_dir, socket_path, "backup")
        chatlog(data_dir, socket_path, "erase-user", "--user-id", "u2")  # online, over the socket
        running = modes(data_dir)
        assert running[socket_path] == 0o660
    finally:
        daemon.terminate()
    chatlog(data_dir, socket_path, "erase-user", "--user-id", "u1")  # offline, under the writer lock
    chatlog(data_dir, socket_path, "backup")

    found = {**running, **modes(data_dir)}
    found.pop(socket_path)
    assert any(p.parent.name == "conversations" for p in found)
    assert any(p.parent.name == "backups" for p in found)
    assert data_dir / "chatlog.sqlite3-wal" in found
    assert stat.S_IMODE((tmp_path / "deep").stat().st_mode) == 0o750
    wrong = {}
    for path, mode in found.items():
        if not path.exists():
            continue
        if path.is_dir():
            expected = 0o750
        elif path.parent.name == "backups" or path.name.startswith("."):
            expected = 0o600  # backups, the key and the lock files
        else:
            expected = 0o640
        if mode != expected:
            wrong[str(path.relative_to(tmp_path))] = oct(mode)
    assert not wrong


def test_client_spool_is_private(common_umask: None, tmp_path: Path) -> None:
    """The client's spool holds raw user ids: its folder is 0700, its files 0600."""
    from chatlog_client._spool import Spool

    spool = Spool.claim(tmp_path / "spool" / "events.ndjson")
    try:
        spool.append([b'{"user_id": "kim"}\n'])
        spool.reject([b'{"user_id": "lee"}\n'])
    finally:
        spool.close()
    found = modes(tmp_path / "spool")
    assert found.pop(tmp_path / "spool") == 0o700
    assert found and set(found.values()) == {0o600}, found
