"""Prometheus exposition shared by both services: one registry per application."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


def metrics_handler(registry: CollectorRegistry) -> Handler:
    """A ``GET /metrics`` handler exposing one registry in the Prometheus text format."""

    async def metrics(request: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return metrics
