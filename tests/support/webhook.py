"""A real webhook receiver on loopback: records every POST, answers the statuses it is given."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from tests.support.daemon import free_port


class Receiver:
    """What the receiver was sent, and what it answers next (then 200 for ever)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []  # bodies it answered 2xx
        self.attempts = 0
        self.statuses: list[int] = []  # answered in order before 200
        self.hang = False
        self.delay = 0.0  # seconds before each answer (a slow webhook)
        self.url = ""
        self._arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        body = json.loads(await request.read())
        if self.hang:
            await asyncio.sleep(3600)
        await asyncio.sleep(self.delay)
        status = self.statuses.pop(0) if self.statuses else 200
        if status < 300:
            self.received.append(body)
            self._arrived.set()
        return web.Response(status=status)

    def alerts(self, state: str | None = None) -> list[dict[str, Any]]:
        """The ``alert`` objects received (of one state)."""
        return [b["alert"] for b in self.received if state is None or b["alert"]["state"] == state]

    async def wait_for(self, count: int, seconds: float = 30.0) -> None:
        """Until ``count`` notifications have been received."""
        async with asyncio.timeout(seconds):
            while len(self.received) < count:
                self._arrived.clear()
                await self._arrived.wait()


@asynccontextmanager
async def webhook_receiver() -> AsyncIterator[Receiver]:
    """A started receiver on 127.0.0.1 (its ``url``), stopped at the end."""
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    receiver.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield receiver
    finally:
        await runner.cleanup()
