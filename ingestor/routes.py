"""The ingestor's routes."""

from __future__ import annotations

from aiohttp import web

from ingestor import keys, views
from ingestor.erase_endpoint import setup_erasure
from ingestor.openapi import ingest_openapi
from shared.metrics import metrics_handler
from shared.openapi import openapi_handler


def setup_routes(app: web.Application) -> None:
    """Register every ingest endpoint."""
    app.router.add_post("/v1/logs", views.post_logs)
    app.router.add_post("/v1/conversations", views.post_conversation)
    app.router.add_post("/v1/feedback", views.post_feedback)
    app.router.add_get("/healthz", views.healthz)
    app.router.add_get("/metrics", metrics_handler(app[keys.metrics_key].registry))
    setup_erasure(app)
    app.router.add_get("/openapi.json", openapi_handler(ingest_openapi()))
