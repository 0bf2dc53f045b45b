"""``GET /healthz`` of the analytics API."""

from __future__ import annotations

from aiohttp import web

from analytics_api import keys
from shared.errors import Unavailable, json_response


async def healthz(request: web.Request) -> web.Response:
    """200 while it can answer (with zeros before the ingestor has created the database)."""
    database = request.app[keys.database_key]
    try:
        ready = await database.available()
    except Unavailable:
        request.app[keys.metrics_key].database_available.set(0)
        raise
    request.app[keys.metrics_key].database_available.set(1 if ready else 0)
    return json_response({
        "status": "ok", "service": "analytics", "database": "ready" if ready else "not created yet",
        "store": database.store,
    })
