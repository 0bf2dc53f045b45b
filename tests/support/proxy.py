"""A minimal round-robin reverse proxy: many analytics APIs behind one URL, as a load balancer puts them.

Each request goes to the next upstream in turn, method, path, query, body and
end-to-end headers unchanged; the answer comes back as the upstream gave it (bodies
are passed through still encoded). ``counts`` says how many requests each upstream got.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

# Hop-by-hop headers (RFC 9110 7.6.1) and those the proxy's own framing sets.
_NOT_FORWARDED = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "host",
     "content-length"}
)


class RoundRobinProxy:
    """Forwards each request to the next of ``upstreams`` (base URLs such as ``http://127.0.0.1:8701``)."""

    def __init__(self, upstreams: list[str]) -> None:
        self.upstreams = [url.rstrip("/") for url in upstreams]
        self.counts: Counter[str] = Counter()
        self._turns = itertools.cycle(self.upstreams)
        self._session_key = web.AppKey("proxy_session", aiohttp.ClientSession)

    def app(self) -> web.Application:
        """The proxy's application (serve it with ``aiohttp_client`` or a runner)."""
        app = web.Application()
        app.cleanup_ctx.append(self._session)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        return app

    async def _session(self, app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession(auto_decompress=False) as session:
            app[self._session_key] = session
            yield

    async def _forward(self, request: web.Request) -> web.Response:
        upstream = next(self._turns)
        self.counts[upstream] += 1
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _NOT_FORWARDED}
        session = request.app[self._session_key]
        async with session.request(
            request.method, upstream + request.path_qs, headers=headers, data=await request.read(),
            allow_redirects=False,
        ) as answer:
            body = await answer.read()
            kept = {k: v for k, v in answer.headers.items() if k.lower() not in _NOT_FORWARDED}
            return web.Response(status=answer.status, body=body, headers=kept)
