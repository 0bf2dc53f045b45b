"""``chatlog-analytics`` / ``python -m analytics_api``: the read-only analytics API in the foreground."""

from __future__ import annotations

import sys

from analytics_api.app import create_app
from shared.serving import Listener, configure_logging, run
from shared.settings import Settings, SettingsError


def analytics_listener(settings: Settings) -> Listener:
    """The analytics API bound to CHATLOG_API_HOST:CHATLOG_API_PORT."""
    return Listener(
        name="analytics", app=create_app(settings), host=settings.api_host, port=settings.api_port
    )


def main() -> int:
    """Run the analytics API until SIGTERM/SIGINT."""
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"chatlog-analytics: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    return run([analytics_listener(settings)])


if __name__ == "__main__":
    sys.exit(main())
