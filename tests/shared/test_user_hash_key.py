"""The store's user-hash key: fingerprinted on first start, checked by the ingestor and the CLI."""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from ingestor.app import create_app
from shared.privacy import KEY_FINGERPRINT_META, UserHasher
from shared.settings import Settings
from tests.conftest import TEST_SECRET, AiohttpClient
from tests.support.daemon import IngestorProcess
from tests.support.events import make_event

OTHER_SECRET = "another-user-hash-secret-9876543210"


def chatlog(data_dir: Path, *args: str, secret: str | None) -> subprocess.CompletedProcess[str]:
    """The operator CLI with the given key in CHATLOG_USER_HASH_SECRET (None: unset)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATLOG_")}
    env["CHATLOG_DATA_DIR"] = str(data_dir)
    if secret is not None:
        env["CHATLOG_USER_HASH_SECRET"] = secret
    return subprocess.run([sys.executable, "-m", "chatlog", *args], env=env, capture_output=True, text=True,
                          timeout=60)


async def store_one_event(aiohttp_client: AiohttpClient, config: Settings) -> None:
    client = await aiohttp_client(create_app(config))
    event = make_event(random.Random(3), session_id="s-victim", user_id="victim")
    assert (await client.post("/v1/logs", json=[event])).status == 202
    await client.close()


def victim_lines(config: Settings) -> int:
    victim = UserHasher(TEST_SECRET.encode()).hash("victim").encode()
    return sum(p.read_bytes().count(victim) for p in (config.data_dir / "data").glob("*.jsonl"))


@pytest.mark.parametrize("secret", [OTHER_SECRET, None], ids=["different-key", "no-key"])
async def test_erase_user_refuses_a_key_that_is_not_the_stores(
    aiohttp_client: AiohttpClient, config: Settings, secret: str | None
) -> None:
    """A wrong or missing key exits non-zero naming CHATLOG_USER_HASH_SECRET, creates no key, erases nothing."""
    await store_one_event(aiohttp_client, config)
    assert victim_lines(config) == 1

    result = chatlog(config.data_dir, "erase-user", "--user-id", "victim", secret=secret)

    assert result.returncode == 1, result.stdout
    assert "CHATLOG_USER_HASH_SECRET" in result.stderr and "Traceback" not in result.stderr
    assert "removed" not in result.stdout
    assert not (config.data_dir / ".user_hash_secret").exists()
    assert victim_lines(config) == 1


async def test_erase_user_with_the_stores_key_erases(aiohttp_client: AiohttpClient, config: Settings) -> None:
    """The right key passes the check."""
    await store_one_event(aiohttp_client, config)
    result = chatlog(config.data_dir, "erase-user", "--user-id", "victim", secret=TEST_SECRET)
    assert result.returncode == 0, result.stderr
    assert victim_lines(config) == 0


async def test_fingerprint_is_recorded_and_is_not_the_key(aiohttp_client: AiohttpClient, config: Settings) -> None:
    """The first start records an HMAC of a label under the key; no byte of the key is in the database."""
    await store_one_event(aiohttp_client, config)
    with contextlib.closing(sqlite3.connect(config.db_path)) as conn:
        (fingerprint,) = conn.execute("SELECT value FROM meta WHERE key = ?", (KEY_FINGERPRINT_META,)).fetchone()
    assert len(fingerprint) == 64 and TEST_SECRET not in fingerprint
    for path in config.data_dir.iterdir():
        if path.is_file():
            assert TEST_SECRET.encode() not in path.read_bytes(), path


def test_generated_key_is_used_by_the_cli(tmp_path: Path, short_dir: Path) -> None:
    """Without CHATLOG_USER_HASH_SECRET the ingestor's generated key file is the store's key for the CLI."""
    data_dir = tmp_path / "data"
    proc = IngestorProcess(data_dir, short_dir / "ingest.sock", CHATLOG_USER_HASH_SECRET="")
    try:
        proc.start()
    finally:
        proc.terminate()
    assert (data_dir / ".user_hash_secret").exists()
    result = chatlog(data_dir, "erase-user", "--user-id", "nobody", secret=None)
    assert result.returncode == 0, result.stderr


def test_ingestor_refuses_to_start_with_a_changed_key(tmp_path: Path, short_dir: Path) -> None:
    """A second start with another key exits non-zero with a message naming CHATLOG_USER_HASH_SECRET."""
    data_dir = tmp_path / "data"
    first = IngestorProcess(data_dir, short_dir / "ingest.sock")
    try:
        first.start()
    finally:
        assert first.terminate()[0] == 0
    second = IngestorProcess(data_dir, short_dir / "ingest.sock", CHATLOG_USER_HASH_SECRET=OTHER_SECRET)
    with pytest.raises(RuntimeError) as failure:
        second.start()
    second.stop_quietly()
    assert second.proc is not None and second.proc.returncode == 2
    message = str(failure.value)
    assert "CHATLOG_USER_HASH_SECRET" in message and "Traceback" not in message
    # The first key still works.
    again = IngestorProcess(data_dir, short_dir / "ingest.sock")
    try:
        again.start()
    finally:
        again.stop_quietly()
