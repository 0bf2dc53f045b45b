"""The guide's reference ingest design (§4.1), served over HTTP for comparison.

asyncio.Queue(maxsize=100), batches of 20, aiofiles appending json.dumps per line,
acknowledged on enqueue (not durable). Run: ``python -m bench.guide_design DIR PORT``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import aiofiles
from aiohttp import web


class HybridLoggingService:
    """The guide's service, as written there (modulo the path)."""

    def __init__(self, log_dir: Path) -> None:
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=100)
        self.batch_size = 20
        self.log_dir = log_dir

    async def log_async(self, log_data: dict[str, Any]) -> None:
        """Enqueue one event (the caller is answered once this returns)."""
        await self.queue.put(log_data)

    async def process_batch(self) -> None:
        """Collect up to 20 events (5 s timeout) and append them."""
        batch = []
        while len(batch) < self.batch_size:
            try:
                item = await asyncio.wait_for(self.queue.get(), timeout=5.0)
                batch.append(item)
            except TimeoutError:
                break
        if batch:
            await self._save_to_jsonl(batch)

    async def _save_to_jsonl(self, batch: list[dict[str, Any]]) -> None:
        date_str = datetime.now().strftime("%Y-%m-%d")
        file_path = f"{self.log_dir}/{date_str}.jsonl"
        async with aiofiles.open(file_path, "a") as f:
            for item in batch:
                await f.write(json.dumps(item) + "\n")


async def _serve(log_dir: Path, port: int) -> None:
    service = HybridLoggingService(log_dir)

    async def post_logs(request: web.Request) -> web.Response:
        body = await request.json()
        events = body if isinstance(body, list) else [body]
        for event in events:
            await service.log_async(event)
        return web.json_response({"accepted": len(events)}, status=202)

    async def processor() -> None:
        while True:
            await service.process_batch()

    app = web.Application()
    app.router.add_post("/v1/logs", post_logs)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    task = asyncio.create_task(processor())
    try:
        await asyncio.Event().wait()
    finally:
        task.cancel()
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(_serve(Path(sys.argv[1]), int(sys.argv[2])))
