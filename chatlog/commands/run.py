"""``chatlog run``: the ingestor and the analytics API together in the foreground.

The analytics API runs in a process of its own (``python -m analytics_api``, same
settings from the same environment). In one process the two would share one event
loop and one GIL, so a heavy analytics request (the CPU of building a year of series)
delayed every ingest acknowledgement behind it; apart, the operating system schedules
them independently, and the analytics process runs at a lower priority so that on a
busy machine ingest comes first.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading

from chatlog.cli import CommandError
from ingestor.__main__ import ingest_listeners
from shared.logs import configure_logging
from shared.privacy import UserHashKeyError
from shared.serving import run
from shared.settings import Settings

log = logging.getLogger("chatlog.run")

# Added niceness of the analytics process: ingest wins the CPU when both want it.
ANALYTICS_NICENESS = 5
STOP_TIMEOUT_SECONDS = 30.0


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """No options: everything comes from CHATLOG_* settings."""


def _lower_priority() -> None:
    with contextlib.suppress(OSError):
        os.nice(ANALYTICS_NICENESS)


def start_analytics() -> subprocess.Popen[bytes]:
    """The analytics API as a child process reading the same CHATLOG_* environment."""
    return subprocess.Popen([sys.executable, "-m", "analytics_api"], preexec_fn=_lower_priority)


def _stop_when_child_exits(child: subprocess.Popen[bytes], stopping: threading.Event) -> None:
    """An analytics API that dies (a port in use, a crash) stops ``chatlog run`` too,
    cleanly, so that a supervisor sees the failure instead of half a service."""
    code = child.wait()
    if stopping.is_set():
        return
    if code == 0:
        # Ctrl-C reaches the whole process group: the child stopped cleanly first.
        log.info("the analytics API stopped; stopping")
    else:
        log.error("the analytics API exited with code %s; stopping", code)
    os.kill(os.getpid(), signal.SIGTERM)


def main(settings: Settings, args: argparse.Namespace) -> int:
    """Serve until Ctrl-C or SIGTERM; flush and exit 0 (non-zero when the API failed)."""
    configure_logging(settings.log_level)
    child = start_analytics()
    stopping = threading.Event()
    watcher = threading.Thread(target=_stop_when_child_exits, args=(child, stopping), daemon=True)
    watcher.start()
    try:
        code = run(ingest_listeners(settings))
    except UserHashKeyError as exc:
        raise CommandError(str(exc)) from None
    finally:
        stopping.set()
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
        try:
            child.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    if child.returncode not in (0, -signal.SIGTERM, -signal.SIGINT):
        return code or 1
    return code
