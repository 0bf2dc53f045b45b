"""``chatlog-ingestor`` / ``python -m ingestor``: the ingest daemon in the foreground."""

from __future__ import annotations

import gc
import sys

from aiohttp import web

from ingestor.app import create_app
from ingestor.otlp.app import create_otlp_app
from shared.db import DatabaseUnreachable
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
    except (UserHashKeyError, DatabaseUnreachable) as exc:
        # Unreachable at start: the key check, offsets and any pending erasure need the database
        # before the first event is taken; the service manager starts it again (a running
        # ingestor rides out an outage: its files take the events).
        print(f"chatlog-ingestor: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
