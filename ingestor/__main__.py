"""``chatlog-ingestor`` / ``python -m ingestor``: the ingest daemon in the foreground."""

from __future__ import annotations

import sys

from ingestor.app import create_app
from shared.serving import Listener, configure_logging, run
from shared.settings import Settings, SettingsError


def ingest_listener(settings: Settings) -> Listener:
    """The ingestor bound to its TCP port and Unix socket."""
    return Listener(
        name="ingestor",
        app=create_app(settings),
        host=settings.ingest_host,
        port=settings.ingest_port,
        unix_path=settings.ingest_socket_path,
    )


def main() -> int:
    """Run the ingestor until SIGTERM/SIGINT."""
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"chatlog-ingestor: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    return run([ingest_listener(settings)])


if __name__ == "__main__":
    sys.exit(main())
