"""erase-user: no trace of the user in any file (plain or compressed) or row; others untouched."""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import zstandard

from ingestor.app import create_app
from ingestor.lifecycle.erasure import erase_user
from shared.db import connect_store_sync
from shared.layout import StorageLayout, Stream
from shared.privacy import UserHasher
from shared.reader import ReadCounts, iter_records
from shared.settings import Settings
from shared.wire import LogRecord
from tests.conftest import TEST_SECRET, AiohttpClient
from tests.support.events import make_event
from tests.support.stores import rows


def chatlog(config: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the operator CLI on the test's data directory."""
    env = {**os.environ, "CHATLOG_DATA_DIR": str(config.data_dir), "CHATLOG_USER_HASH_SECRET": TEST_SECRET,
           "CHATLOG_DATABASE_URL": config.database_url, "CHATLOG_NODE_ID": config.node_id}
    return subprocess.run([sys.executable, "-m", "chatlog", *args], env=env, capture_output=True, text=True,
                          timeout=60)


def compress_day(path: Path) -> None:
    """Stand-in for an old day: replace a .jsonl by its .jsonl.zst."""
    path.with_name(path.name + ".zst").write_bytes(zstandard.ZstdCompressor().compress(path.read_bytes()))
    path.unlink()


async def test_erase_user_everywhere(aiohttp_client: AiohttpClient, store_config: Settings) -> None:
    """Every event and conversation of one user goes, in plain and compressed files and the store; others stay."""
    config = store_config
    client = await aiohttp_client(create_app(config))
    rng = random.Random(1)
    old = datetime.now(UTC) - timedelta(days=3)
    events: list[dict[str, Any]] = []
    for user, session in (("victim", "sv"), ("other", "so")):
        for when in (old, datetime.now(UTC) - timedelta(hours=2)):
            events.append(make_event(rng, session_id=f"{session}-{when.day}", user_id=user, created_at=when))
            events.append(make_event(rng, session_id=f"{session}-{when.day}", user_id=user, created_at=when,
                                     message_type="assistant"))
    assert (await client.post("/v1/logs", json=events)).status == 202
    await client.close()  # stops the ingestor: conversations are written, the lock is released
    layout = StorageLayout.from_settings(config)
    old_file = layout.day_files(Stream.LOGS, layout.day_of(old)).plain
    assert old_file is not None
    compress_day(old_file)
    victim = UserHasher(TEST_SECRET.encode()).hash("victim")
    assert any(victim.encode() in p.read_bytes() for p in config.data_dir.rglob("*.jsonl"))
    with contextlib.closing(connect_store_sync(config)) as conn, conn:
        # As the derived state sets aside one of the user's lines it cannot apply: raw bytes kept.
        raw = b'{"user_hash": "%s", "performance": {"response_time_ms": 18446744073709551616}}' % victim.encode()
        conn.execute(
            "INSERT INTO quarantined_lines VALUES ('data', ?, 99, 0, 'integer out of range', ?, '')",
            (layout.today().isoformat(), raw),
        )

    result = chatlog(config, "erase-user", "--user-id", "victim")
    assert result.returncode == 0, result.stderr
    assert "removed 4 data lines" in result.stdout
    assert "1 quarantined lines" in result.stdout

    for path in config.data_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if path.name.endswith(".zst"):
                data = zstandard.ZstdDecompressor().stream_reader(data).read()
            assert victim.encode() not in data, path
    counts = ReadCounts()
    paths = [f.readable for f in layout.days(Stream.LOGS).values() if f.readable]
    remaining = list(iter_records(paths, LogRecord, counts))
    assert len(remaining) == 4 and counts.torn == counts.corrupt == 0
    assert {r.user_hash for r in remaining} == {UserHasher(TEST_SECRET.encode()).hash("other")}
    assert rows(config, "SELECT count(*) FROM chat_sessions WHERE user_hash = ?", (victim,)) == [(0,)]
    assert rows(config, "SELECT count(*) FROM conversations WHERE user_hash = ?", (victim,)) == [(0,)]
    assert rows(config, "SELECT sum(lines) FROM ingest_offsets WHERE stream = 'data'") == [(4,)]
    if config.database_url:
        # The records themselves went with their index rows; the other user's stayed.
        stored = [bytes(r) for (r,) in rows(config, "SELECT record FROM conversation_records")]
        assert len(stored) == 2 and not any(victim.encode() in r for r in stored)


def test_erase_refused_while_locked_and_no_ingestor_answers(config: Settings) -> None:
    """With the data directory locked and no ingestor on the socket, erase-user exits 1 with a clear message."""
    from shared.locking import writer_lock

    layout = StorageLayout.from_settings(config)
    with writer_lock(layout):
        result = chatlog(config, "erase-user", "--user-hash", "abc")
    assert result.returncode == 1
    assert "stop the ingestor" in result.stderr and "Traceback" not in result.stderr


class Crash(Exception):
    """Stands in for the process dying at an erasure step."""


@pytest.mark.parametrize("crash_at", ["committed", "rewrote"])
async def test_erasure_interrupted_by_a_crash_is_finished_by_the_next_start(
    aiohttp_client: AiohttpClient, store_config: Settings, crash_at: str
) -> None:
    """The database commit comes first; the next start rewrites the rest, and nothing is counted twice."""
    config = store_config
    client = await aiohttp_client(create_app(config))
    rng = random.Random(2)
    events = [
        make_event(rng, session_id=f"{user}-{when.day}", user_id=user, created_at=when)
        for user in ("victim", "other")
        for when in (datetime.now(UTC) - timedelta(days=3), datetime.now(UTC) - timedelta(hours=1))
        for _ in range(2)
    ]
    assert (await client.post("/v1/logs", json=events)).status == 202
    await client.close()
    layout = StorageLayout.from_settings(config)
    victim = UserHasher(TEST_SECRET.encode()).hash("victim")

    def crash(name: str) -> None:
        if name == crash_at:
            raise Crash(name)

    with contextlib.closing(connect_store_sync(config)) as conn, pytest.raises(Crash):
        erase_user(layout, conn, victim, step=crash)
    assert sum(victim.encode() in p.read_bytes() for p in (config.data_dir / "data").glob("*.jsonl")) >= 1

    client = await aiohttp_client(create_app(config))  # the start finishes the erasure
    await client.close()
    assert not any(victim.encode() in p.read_bytes() for p in config.data_dir.rglob("*.jsonl"))
    (lines,) = rows(config, "SELECT sum(lines) FROM ingest_offsets WHERE stream = 'data'")[0]
    (messages,) = rows(config, "SELECT sum(message_count) FROM chat_sessions")[0]
    (pending,) = rows(config, "SELECT count(*) FROM meta WHERE key LIKE 'erasure_pending%'")[0]
    (counted,) = rows(config, "SELECT sum(message_count) FROM chat_statistics")[0]
    assert (lines, messages, pending, counted) == (4, 4, 0, 8)
