"""The analytics API's Prometheus metrics and the middleware that records them."""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class AnalyticsMetrics:
    """Request counts and latencies by route, in a registry of this application."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "chatlog_analytics_requests",
            "Requests answered, by route and status",
            ["route", "status"],
            registry=r,
        )
        self.seconds = Histogram(
            "chatlog_analytics_request_seconds",
            "Time to answer a request, by route",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.admin_auth_failures = Counter(
            "chatlog_admin_auth_failures",
            "Admin requests refused for a missing or wrong token",
            registry=r,
        )
        self.database_available = Gauge(
            "chatlog_analytics_database_available",
            "1 once the statistics database can be read",
            registry=r,
        )

    def middleware(self) -> Middleware:
        """Count and time every request (outermost, so it sees the final status)."""

        @web.middleware
        async def measure(request: web.Request, handler: Handler) -> web.StreamResponse:
            started = time.perf_counter()
            resource = request.match_info.route.resource
            # Route templates, not raw paths: unknown URLs must not create new series.
            route = resource.canonical if resource is not None else "unmatched"
            status = 500
            try:
                response = await handler(request)
                status = response.status
                return response
            except web.HTTPException as exc:
                status = exc.status
                raise
            finally:
                self.requests.labels(route=route, status=str(status)).inc()
                self.seconds.labels(route=route).observe(time.perf_counter() - started)

        return measure
