"""Admin lookup benchmark: 30 days, 100,000 conversations, through the real HTTP API.

Run: ``python -m bench.conversations [--conversations N]``. Generates conversation
records straight into 30 day files with their index rows (the last 7 days plain, the
older ones compressed by the product's own compression), starts the analytics API on
a real socket and measures p50/p95 of:

- ``GET /api/admin/conversations/{id}`` for ids on plain days and on compressed days;
- ``GET /api/admin/conversations?user_hash=...`` (first page of 50);
- ``GET /api/admin/conversations?user_hash=...&cursor=...`` (a later page).

Target: p95 <= 20 ms for each.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, timedelta
from pathlib import Path

import aiohttp
import msgspec

from analytics_api.app import create_app
from ingestor.conversations.store import _row
from ingestor.lifecycle.compression import compress_day
from shared.db import connect_writer_sync
from shared.layout import StorageLayout, Stream
from shared.serving import Listener, start
from shared.settings import Settings
from shared.wire import ConversationMessage, ConversationMetadata, ConversationRecord
from tests.support.events import ANSWER, QUESTIONS

TOKEN = "bench-admin-token"
DAYS = 30


def generate(settings: Settings, conversations: int, seed: int) -> tuple[list[str], list[str], list[str]]:
    """Write the day files and the index; return ids on plain days, on compressed days, and users."""
    rng = random.Random(seed)
    layout = StorageLayout.from_settings(settings)
    layout.ensure_dirs()
    users = [f"{rng.getrandbits(256):064x}" for _ in range(2000)]
    today = layout.today()
    encoder = msgspec.json.Encoder()
    plain_ids: list[str] = []
    old_ids: list[str] = []
    conn = connect_writer_sync(settings.db_path)
    per_day = conversations // DAYS
    for back in range(DAYS):
        day = today - timedelta(days=back)
        start = layout.day_start(day).astimezone(UTC)
        path = layout.day_path(Stream.CONVERSATIONS, day)
        rows = []
        offset = 0
        with open(path, "wb") as f:
            for i in range(per_day):
                cid = f"c-{back:02d}-{i:05d}"
                at = start + timedelta(seconds=i * 86400 // per_day)
                messages = [
                    ConversationMessage("user", rng.choice(QUESTIONS), at),
                    ConversationMessage("assistant", ANSWER, at + timedelta(seconds=4)),
                ]
                record = ConversationRecord(
                    cid, rng.choice(("hr-docs", "it-helpdesk", "legal-kb")), rng.choice(users), messages,
                    ConversationMetadata(1, True, "low", f"{messages[0].content} — topics: 휴가"),
                    at, at + timedelta(seconds=4), at + timedelta(minutes=31),
                )
                line = encoder.encode(record)
                f.write(line + b"\n")
                rows.append(_row(record, day, offset, len(line)))
                offset += len(line) + 1
                (plain_ids if back < 7 else old_ids).append(cid)
        with conn:
            conn.executemany(
                "INSERT OR REPLACE INTO conversations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
            )
        if back >= 7:
            compress_day(layout, Stream.CONVERSATIONS, day, level=settings.zstd_level)
    conn.close()
    return plain_ids, old_ids, users


async def timed(session: aiohttp.ClientSession, urls: Sequence[str]) -> list[float]:
    """Latency in ms of each GET, one at a time."""
    out = []
    for url in urls:
        started = time.perf_counter()
        async with session.get(url, headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
            await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"{url}: {resp.status}")
        out.append((time.perf_counter() - started) * 1000)
    return out


def p(values: list[float], q: int) -> float:
    """The q-th percentile."""
    return statistics.quantiles(values, n=100)[q - 1]


async def main_async(conversations: int, requests: int) -> None:
    """Generate, serve, measure, print."""
    root = Path(tempfile.mkdtemp(prefix="chatlog-conv-bench-"))
    try:
        settings = Settings.for_data_dir(root, admin_token=TOKEN, ingest_socket="")
        started = time.perf_counter()
        plain_ids, old_ids, users = generate(settings, conversations, seed=1)
        print(f"generated {len(plain_ids) + len(old_ids):,} conversations over {DAYS} days "
              f"in {time.perf_counter() - started:.1f}s ({len(old_ids):,} on compressed days)")
        runners = await start([Listener("analytics", create_app(settings), host="127.0.0.1", port=0)])
        port = runners[0].addresses[0][1]
        base = f"http://127.0.0.1:{port}/api/admin/conversations"
        rng = random.Random(2)
        try:
            async with aiohttp.ClientSession() as session:
                await timed(session, [f"{base}/{plain_ids[0]}"] * 20)  # warm-up
                results = {
                    "lookup by id, plain day": await timed(
                        session, [f"{base}/{rng.choice(plain_ids)}" for _ in range(requests)]),
                    "lookup by id, compressed day": await timed(
                        session, [f"{base}/{rng.choice(old_ids)}" for _ in range(requests)]),
                    "list by user_hash, first page": await timed(
                        session, [f"{base}?user_hash={rng.choice(users)}&limit=50" for _ in range(requests)]),
                    "list, all, page of 50": await timed(session, [f"{base}?limit=50"] * requests),
                }
        finally:
            for runner in runners:
                await runner.cleanup()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"{'request':<34}{'p50 ms':>9}{'p95 ms':>9}   target p95 <= 20 ms")
    for name, values in results.items():
        print(f"{name:<34}{p(values, 50):>9.2f}{p(values, 95):>9.2f}   {'ok' if p(values, 95) <= 20 else 'MISSED'}")


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(main_async(args.conversations, args.requests))


if __name__ == "__main__":
    main()
