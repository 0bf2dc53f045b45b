"""The built-in dashboard: static pages served by the analytics service.

``GET /`` is the analytics dashboard, ``GET /admin/conversations`` the hidden admin page
(the page itself is public: it asks for the admin token in the browser, and the data
stays behind the admin API), and ``/static/`` the folder of scripts, styles and the
vendored chart library (uPlot). The files are shipped as they are: there is no build step,
no CDN and no web font, so the dashboard works offline.

The pages only read the API with ``fetch`` and write every piece of API text into the
page as text, never as markup; the Content-Security-Policy below backs that up by
refusing inline scripts and any script or connection to another origin.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Final

from aiohttp import web

STATIC_DIR: Final = Path(__file__).resolve().parent / "static"
STATIC_PREFIX: Final = "/static/"
INDEX_PATH: Final = "/"
ADMIN_PATH: Final = "/admin/conversations"

CONTENT_SECURITY_POLICY: Final = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

_PAGE_HEADERS: Final[Mapping[str, str]] = {
    "Content-Type": "text/html; charset=utf-8",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}

# Asset names carry no version, so browsers revalidate (cheap: Last-Modified / ETag) instead of
# keeping a stale script after an upgrade. The admin page is never stored at all.
_STATIC_CACHE: Final = "no-cache"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _page(filename: str, extra: Mapping[str, str]) -> Handler:
    """A handler answering one HTML file of the static folder with the page headers."""
    path = STATIC_DIR / filename
    headers = {**_PAGE_HEADERS, **extra}

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(path, headers=headers)

    handler.__doc__ = f"Serve static/{filename}."
    return handler


async def _static_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Cache and sniffing headers for files under ``/static/`` (aiohttp's static route sets none)."""
    if request.path.startswith(STATIC_PREFIX):
        response.headers.setdefault("Cache-Control", _STATIC_CACHE)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")


def setup_dashboard_routes(app: web.Application) -> None:
    """Register ``GET /``, ``GET /admin/conversations`` and the ``/static/`` folder on ``app``.

    Call it once, before the application starts (it also adds an ``on_response_prepare``
    hook that sets cache headers on static files).
    """
    app.router.add_get(INDEX_PATH, _page("index.html", {"Cache-Control": _STATIC_CACHE}), name="dashboard")
    admin_headers = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex, nofollow"}
    app.router.add_get(ADMIN_PATH, _page("admin.html", admin_headers), name="dashboard_admin")
    app.router.add_static(STATIC_PREFIX, STATIC_DIR, name="static")
    app.on_response_prepare.append(_static_headers)
