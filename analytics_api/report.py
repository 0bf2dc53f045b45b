"""``GET /api/analytics/report``: the period's report as HTML (default), Markdown or JSON.

The same report as ``chatlog report`` (``insights.report``), built in the database's
read thread from one read transaction. The HTML is one self-contained page (inline
CSS and SVG charts, no script) served with a Content-Security-Policy that lets it
load nothing.
"""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from analytics_api import keys, params
from insights.report.build import MAX_DAYS, build_report, empty_report
from insights.report.page import CSP
from insights.report.render import CONTENT_TYPES, FORMATS, render
from shared.errors import BadParameter

DEFAULT_DAYS = 7
DEFAULT_FORMAT = "html"


async def report(request: web.Request) -> web.Response:
    """The report of a date range (default: the last 7 days), optionally of one collection."""
    query = request.query
    fmt = params.choice(query, "format", DEFAULT_FORMAT, FORMATS)
    collection = params.collection(query)
    first, last = params.day_range(query, request.app[keys.layout_key].today(), DEFAULT_DAYS)
    if last - first >= timedelta(days=MAX_DAYS):
        raise BadParameter("date_from", f"a report covers at most {MAX_DAYS} days")
    settings = request.app[keys.settings_key]
    answer = await request.app[keys.database_key].read(
        lambda conn: build_report(conn, settings, collection, first, last),
        empty_report(settings, collection, first, last),
    )
    headers = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff"} if fmt == "html" else {}
    return web.Response(text=render(answer, fmt), content_type=CONTENT_TYPES[fmt], charset="utf-8",
                        headers=headers)
