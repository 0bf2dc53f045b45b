"""``chatlog-analytics`` / ``python -m analytics_api``: the read-only analytics API in the foreground."""

from __future__ import annotations

import sys

from analytics_api.app import create_app
from shared.serving import Listener, serve_from_env
from shared.settings import Settings


def analytics_listener(settings: Settings) -> Listener:
    """The analytics API bound to CHATLOG_API_HOST:CHATLOG_API_PORT."""
    return Listener(name="analytics", app=create_app(settings), host=settings.api_host, port=settings.api_port)


def main() -> int:
    """Run until SIGTERM/SIGINT."""
    return serve_from_env("chatlog-analytics", lambda settings: [analytics_listener(settings)])


if __name__ == "__main__":
    sys.exit(main())
