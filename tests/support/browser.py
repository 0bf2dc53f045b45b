"""A small headless-Chromium driver over the Chrome DevTools Protocol, for browser tests.

It starts the system's Chromium (Debian package ``chromium``; nothing is downloaded at run
time), reads the DevTools port from the profile's ``DevToolsActivePort`` file and talks CDP
over aiohttp's websocket client: open a page, evaluate JavaScript, take a screenshot.
Script exceptions, ``console.error`` and browser errors (CSP violations...) are collected
per page so a test can insist on a clean console.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp

CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--no-default-browser-check",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
    "--disable-dev-shm-usage", "--no-proxy-server", "--hide-scrollbars", "--mute-audio", "--remote-debugging-port=0",
)


class BrowserError(RuntimeError):
    """Chromium is missing, did not start, or a command failed."""


def find_chromium() -> str:
    """The Chromium executable: ``$CHATLOG_CHROMIUM`` or a system install; a clear error when there is none."""
    for candidate in (os.environ.get("CHATLOG_CHROMIUM", ""), *CANDIDATES):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise BrowserError("headless Chromium not found: install it with `apt-get install -y chromium` "
                       "(or point CHATLOG_CHROMIUM at a Chromium/Chrome executable)")


class Browser:
    """One Chromium process and its DevTools connection; use ``async with await Browser.launch()``."""

    def __init__(self, process: asyncio.subprocess.Process, profile: Path) -> None:
        self._process = process
        self._profile = profile
        self._http = aiohttp.ClientSession()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._pages: dict[str, Page] = {}
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    async def launch(cls, seconds: float = 15.0) -> Browser:
        """Start Chromium with a throw-away profile and connect to it."""
        profile = Path(tempfile.mkdtemp(prefix="chatlog-chromium-"))
        with open(profile / "stderr.log", "wb") as log:
            process = await asyncio.create_subprocess_exec(
                find_chromium(), *FLAGS, f"--user-data-dir={profile}", "about:blank",
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=log,
            )
        browser = cls(process, profile)
        try:
            await browser._connect(seconds)
        except BaseException:
            await browser.close()
            raise
        return browser

    async def _connect(self, seconds: float) -> None:
        port_file = self._profile / "DevToolsActivePort"
        async with asyncio.timeout(seconds):
            while not (port_file.exists() and len(port_file.read_text().split()) >= 2):
                if self._process.returncode is not None:
                    tail = (self._profile / "stderr.log").read_text(errors="replace")[-2000:]
                    raise BrowserError(f"chromium exited with {self._process.returncode}: {tail}")
                await asyncio.sleep(0.05)
        port, path = port_file.read_text().split()[:2]
        self._ws = await self._http.ws_connect(f"ws://127.0.0.1:{port}{path}", max_msg_size=0)
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._ws is not None
        async for message in self._ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            data: dict[str, Any] = message.json()
            future = self._pending.pop(data.get("id", -1), None)
            if future is not None and not future.done():
                future.set_result(data)
            elif "method" in data and data.get("sessionId") in self._pages:
                self._pages[data["sessionId"]].on_event(data["method"], data.get("params", {}))
        for future in self._pending.values():
            if not future.done():
                future.set_exception(BrowserError("DevTools connection closed"))

    async def send(self, method: str, params: Mapping[str, Any] | None = None, session: str | None = None,
                   seconds: float = 15.0) -> dict[str, Any]:
        """Send one CDP command and return its result (raise on a protocol error)."""
        if self._ws is None or self._ws.closed:
            raise BrowserError("not connected")
        command_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[command_id] = future
        message: dict[str, Any] = {"id": command_id, "method": method, "params": dict(params or {})}
        if session is not None:
            message["sessionId"] = session
        await self._ws.send_json(message)
        async with asyncio.timeout(seconds):
            answer = await future
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error']}")
        result: dict[str, Any] = answer.get("result", {})
        return result

    async def new_page(self, width: int = 1360, height: int = 900) -> Page:
        """A fresh tab with the given viewport, its console watched."""
        target = await self.send("Target.createTarget", {"url": "about:blank"})
        attached = await self.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
        page = Page(self, attached["sessionId"])
        self._pages[page.session] = page
        for domain in ("Page", "Runtime", "Log"):
            await page.send(f"{domain}.enable")
        await page.send("Emulation.setDeviceMetricsOverride",
                        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        return page

    async def close(self) -> None:
        """Close Chromium (politely, then by force) and remove its profile."""
        if self._ws is not None and not self._ws.closed:
            with contextlib.suppress(Exception):
                await self.send("Browser.close", seconds=3.0)
        try:
            await asyncio.wait_for(self._process.wait(), 5.0)
        except TimeoutError:
            self._process.kill()
            await self._process.wait()
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await self._reader
        await self._http.close()
        shutil.rmtree(self._profile, ignore_errors=True)

    async def __aenter__(self) -> Browser:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        await self.close()


class Page:
    """One tab: navigate, evaluate, wait for a condition, screenshot."""

    def __init__(self, browser: Browser, session: str) -> None:
        self.browser = browser
        self.session = session
        self.errors: list[str] = []  # script exceptions, console.error, CSP and other browser errors
        self.network_errors: list[str] = []  # failed requests and HTTP error answers
        self.requests: list[str] = []  # every URL the tab asked for, once ``Network.enable`` was sent
        self._loaded = asyncio.Event()

    async def send(self, method: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A CDP command in this tab."""
        return await self.browser.send(method, params, self.session)

    def on_event(self, method: str, params: dict[str, Any]) -> None:
        """Record load and error events of this tab."""
        if method == "Page.loadEventFired":
            self._loaded.set()
        elif method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            self.errors.append(details.get("exception", {}).get("description") or details.get("text", "exception"))
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.errors.append(" ".join(str(arg.get("value", arg.get("description", ""))) for arg in params["args"]))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            target = self.network_errors if entry.get("source") == "network" else self.errors
            target.append(f"{entry['text']} {entry.get('url', '')}".strip())

    async def goto(self, url: str, seconds: float = 15.0) -> None:
        """Navigate and wait for the load event."""
        self._loaded.clear()
        answer = await self.send("Page.navigate", {"url": url})
        if answer.get("errorText"):
            raise BrowserError(f"navigating to {url}: {answer['errorText']}")
        async with asyncio.timeout(seconds):
            await self._loaded.wait()

    async def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression (promises awaited); raise on a script error."""
        answer = await self.send("Runtime.evaluate",
                                 {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in answer:
            details = answer["exceptionDetails"]
            raise BrowserError(details.get("exception", {}).get("description") or details.get("text"))
        return answer["result"].get("value")

    async def wait_for(self, expression: str, seconds: float = 10.0) -> Any:
        """Poll until the expression is truthy; return its value."""
        try:
            async with asyncio.timeout(seconds):
                while True:
                    if value := await self.evaluate(expression):
                        return value
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise BrowserError(f"timed out waiting for {expression!r}; page errors: {self.errors}") from None

    async def screenshot(self, path: Path) -> None:
        """A PNG of the whole page (not only the viewport)."""
        metrics = await self.send("Page.getLayoutMetrics")
        size = metrics["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        shot = await self.send("Page.captureScreenshot",
                               {"format": "png", "captureBeyondViewport": True, "clip": clip})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
