"""``chatlog-ingestor`` / ``python -m ingestor``: the ingest daemon in the foreground."""

from __future__ import annotations

import sys

from ingestor.app import create_app
from ingestor.otlp.app import create_otlp_app
from shared.privacy import UserHashKeyError
from shared.serving import Listener, serve_from_env
from shared.settings import Settings


def ingest_listener(settings: Settings) -> Listener:
    """The ingestor bound to its TCP port and Unix socket."""
    return Listener(
        name="ingestor",
        app=create_app(settings),
        host=settings.ingest_host,
        port=settings.ingest_port,
        unix_path=settings.ingest_socket_path,
    )


def ingest_listeners(settings: Settings) -> list[Listener]:
    """The ingestor, and its OTLP/HTTP receiver unless ``CHATLOG_OTLP_PORT`` is 0.

    The receiver stores through the ingest application, so it comes after it: set up once the
    ingest storage is open, and (cleanup runs in reverse) stopped before it is flushed and closed.
    """
    ingest = ingest_listener(settings)
    if not settings.otlp_port:
        return [ingest]
    otlp = Listener(name="otlp", app=create_otlp_app(settings, ingest.app), host=settings.otlp_host,
                    port=settings.otlp_port)
    return [ingest, otlp]


def main() -> int:
    """Run until SIGTERM/SIGINT; 2 with a message when the user-hash key is not the store's."""
    try:
        return serve_from_env("chatlog-ingestor", ingest_listeners)
    except UserHashKeyError as exc:
        print(f"chatlog-ingestor: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
