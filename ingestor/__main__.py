"""``chatlog-ingestor`` / ``python -m ingestor``: the ingest daemon in the foreground."""

from __future__ import annotations

import gc
import sys

from aiohttp import web

from ingestor.app import create_app
from shared.privacy import UserHashKeyError
from shared.serving import Listener, serve_from_env
from shared.settings import Settings


async def _freeze_startup_heap(app: web.Application) -> None:
    """Leave what start-up built (modules, the rebuilt idempotency window) out of every collection.

    None of it is garbage, yet each full collection walked all of it: a ~30 ms stall of every
    request in flight, the worst of the single-event ack latencies. Runs once, after the
    storage context has started (it is appended after it).
    """
    gc.freeze()


def ingest_listener(settings: Settings) -> Listener:
    """The ingestor bound to its TCP port and Unix socket."""
    app = create_app(settings)
    # Only the daemon: tests build many apps in one interpreter and do want them collected.
    app.on_startup.append(_freeze_startup_heap)
    return Listener(
        name="ingestor",
        app=app,
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
