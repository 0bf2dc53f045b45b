"""Running aiohttp applications in the foreground on TCP and Unix sockets.

SIGTERM and SIGINT stop the listeners first, let in-flight requests finish, then run
every application's cleanup (which flushes what was accepted), and return 0.

Errors that aiohttp's protocol layer answers itself, before any middleware runs (a request
line or header it cannot parse, a URL or header over the size limits, a broken chunked
body), get the same JSON error shape as every other error: see ``JsonErrorAppRunner``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
import stat
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from aiohttp import web

from shared.errors import http_error_body
from shared.logs import configure_logging
from shared.settings import Settings, SettingsError

log = logging.getLogger("chatlog.serving")


class JsonErrorRequestHandler(web.RequestHandler):
    """aiohttp's per-connection protocol, answering its own errors in the one JSON shape."""

    __slots__ = ()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500:
            # aiohttp's version logs the error and refuses once a response has begun; keep both.
            super().handle_error(request, status, exc, message)
        else:
            # A request the HTTP parser refuses is the client's doing, not ours: hostile or
            # broken clients must not fill the log with tracebacks (aiohttp logs each at ERROR).
            self.logger.debug("refused a malformed request from %s: %s", request.remote, exc)
            if request.writer.output_size > 0:
                raise ConnectionError("a response was already sent: no error answer is possible")
        response = web.Response(
            body=msgspec.json.encode(http_error_body(status, message or "")),
            status=status,
            content_type="application/json",
        )
        response.force_close()
        return response


class JsonErrorServer(web.Server):
    """aiohttp's low-level server whose connections are ``JsonErrorRequestHandler``s."""

    def __init__(self, made: web.Server, **kwargs: Any) -> None:
        super().__init__(
            made.request_handler,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            **kwargs,
        )

    def __call__(self) -> web.RequestHandler:
        return JsonErrorRequestHandler(self, loop=self._loop, **self._kwargs)


class JsonErrorAppRunner(web.AppRunner):
    """An AppRunner whose protocol-level errors (400 from the HTTP parser, 500/504 outside any
    middleware) answer ``{"error": code, "message": text}`` instead of aiohttp's plain text.

    aiohttp has no setting for this: ``handle_error`` of its ``RequestHandler`` builds those
    answers, and ``Server.__call__`` is what creates the handler of each connection, so this
    runner serves the application through a ``Server`` that creates our subclass.
    """

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()
        # The application's own handler settings (debug, access log, handler_args) carry over.
        return JsonErrorServer(made, **made._kwargs)


@dataclass(frozen=True)
class Listener:
    """One application and where it listens."""

    name: str
    app: web.Application
    host: str | None = None
    port: int | None = None
    unix_path: Path | None = None
    unix_mode: int = 0o660


def remove_stale_socket(path: Path) -> None:
    """Remove a Unix socket file left by a dead process; refuse to steal a live one."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise RuntimeError(f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError as exc:
        if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
            path.unlink(missing_ok=True)
            return
        raise
    else:
        raise RuntimeError(f"another process is listening on {path}")
    finally:
        probe.close()


async def start(listeners: Sequence[Listener]) -> list[web.AppRunner]:
    """Set up every application and start its sites; return the runners."""
    runners: list[web.AppRunner] = []
    try:
        for listener in listeners:
            runner: web.AppRunner = JsonErrorAppRunner(listener.app, access_log=None, shutdown_timeout=30.0)
            await runner.setup()
            runners.append(runner)
            if listener.port is not None:
                site: web.BaseSite = web.TCPSite(runner, listener.host, listener.port)
                await site.start()
                log.info("%s listening on http://%s:%s", listener.name, listener.host, listener.port)
            if listener.unix_path is not None:
                listener.unix_path.parent.mkdir(parents=True, exist_ok=True)
                remove_stale_socket(listener.unix_path)
                site = web.UnixSite(runner, str(listener.unix_path))
                await site.start()
                os.chmod(listener.unix_path, listener.unix_mode)
                log.info("%s listening on unix:%s", listener.name, listener.unix_path)
    except BaseException:
        for started in reversed(runners):
            await started.cleanup()
        raise
    return runners


async def serve_until_signalled(listeners: Sequence[Listener]) -> None:
    """Serve until SIGTERM or SIGINT, then stop accepting and clean up in reverse order."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runners = await start(listeners)
    try:
        await stop.wait()
        log.info("stopping: no new connections, flushing what was accepted")
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
        for listener in listeners:
            if listener.unix_path is not None:
                with contextlib.suppress(FileNotFoundError):
                    listener.unix_path.unlink()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    log.info("stopped cleanly")


def serve_from_env(program: str, make_listeners: Callable[[Settings], Sequence[Listener]]) -> int:
    """A service's ``main``: settings from the environment (2 with a message naming the
    bad variable), logging, then serve in the foreground until SIGTERM/SIGINT."""
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"{program}: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    return run(make_listeners(settings))


def run(listeners: Sequence[Listener]) -> int:
    """Run in the foreground; 0 on a clean stop."""
    asyncio.run(serve_until_signalled(listeners))
    return 0
