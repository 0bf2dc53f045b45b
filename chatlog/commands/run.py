"""``chatlog run``: the ingestor and the analytics API together in the foreground."""

from __future__ import annotations

import argparse

from chatlog.cli import CommandError
from ingestor.__main__ import ingest_listener
from shared.logs import configure_logging
from shared.privacy import UserHashKeyError
from shared.serving import Listener, run
from shared.settings import Settings


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """No options: everything comes from CHATLOG_* settings."""


def listeners(settings: Settings) -> list[Listener]:
    """Both services; the ingestor first so that the database exists for the API."""
    found = [ingest_listener(settings)]
    try:
        from analytics_api.__main__ import analytics_listener
    except ModuleNotFoundError:
        return found
    found.append(analytics_listener(settings))
    return found


def main(settings: Settings, args: argparse.Namespace) -> int:
    """Serve until Ctrl-C or SIGTERM; flush and exit 0."""
    configure_logging(settings.log_level)
    try:
        return run(listeners(settings))
    except UserHashKeyError as exc:
        raise CommandError(str(exc)) from None
