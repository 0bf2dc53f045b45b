"""The analytics API's routes: statistics, admin lookups, the dashboard, health and metrics."""

from __future__ import annotations

from aiohttp import web

from analytics_api import keys
from analytics_api.admin import get_conversation, list_conversations
from analytics_api.alerts import alerts
from analytics_api.collections import collections
from analytics_api.dashboard import setup_dashboard_routes
from analytics_api.faq import faq
from analytics_api.grafana import setup_grafana_routes
from analytics_api.health import healthz
from analytics_api.openapi import analytics_openapi
from analytics_api.quality import quality
from analytics_api.report import report
from analytics_api.suggestions import suggestions
from analytics_api.summary import summary
from analytics_api.timeline import timeline
from shared.metrics import metrics_handler
from shared.openapi import openapi_handler


def setup_routes(app: web.Application) -> None:
    """Register every analytics endpoint (the Grafana datasource adds its own under /grafana)."""
    app.router.add_get("/api/analytics/summary", summary)
    app.router.add_get("/api/analytics/timeline", timeline)
    app.router.add_get("/api/analytics/collections", collections)
    app.router.add_get("/api/analytics/alerts", alerts)
    app.router.add_get("/api/analytics/quality", quality)
    app.router.add_get("/api/analytics/faq", faq)
    app.router.add_get("/api/analytics/suggestions", suggestions)
    app.router.add_get("/api/analytics/report", report)
    app.router.add_get("/api/admin/conversations", list_conversations)
    app.router.add_get("/api/admin/conversations/{conversation_id}", get_conversation)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_handler(app[keys.metrics_key].registry))
    app.router.add_get("/openapi.json", openapi_handler(analytics_openapi()))
    setup_grafana_routes(app)
    setup_dashboard_routes(app)
