"""``chatlog-ingestor`` / ``python -m ingestor``: the ingest daemon in the foreground."""

from __future__ import annotations

import sys

from ingestor.app import create_app
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


def main() -> int:
    """Run until SIGTERM/SIGINT; 2 with a message when the user-hash key is not the store's."""
    try:
        return serve_from_env("chatlog-ingestor", lambda settings: [ingest_listener(settings)])
    except UserHashKeyError as exc:
        print(f"chatlog-ingestor: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
