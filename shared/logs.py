"""One log format for every chatlog process (no secrets or raw ids are ever logged)."""

from __future__ import annotations

import logging


def configure_logging(level: str) -> None:
    """One plain log format for both services (no secrets or raw ids are ever logged)."""
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        # The CLI configures a terse format for its subcommands first; a service it runs
        # (``chatlog run``) logs like the services do.
        force=True,
    )
    # aiohttp's access log would print every ingest request; keep it at warning.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
