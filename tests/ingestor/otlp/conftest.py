"""A real ingestor with its OTLP/HTTP receiver on a free port, shared by a test module."""

from __future__ import annotations

import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.daemon import IngestorProcess, free_port


@dataclass
class Receiver:
    """The running daemon and its OTLP base URL."""

    daemon: IngestorProcess
    url: str

    @property
    def data_dir(self) -> Path:
        """Its data directory."""
        return self.daemon.data_dir


def start_receiver(folder: Path, **env: str) -> Receiver:
    """``python -m ingestor`` with OTLP on a free port."""
    port = free_port()
    daemon = IngestorProcess(folder / "data", folder / "ingest.sock", CHATLOG_OTLP_PORT=str(port), **env).start()
    # The receiver's listener starts right after the ingest listener that /healthz answered on.
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    return Receiver(daemon, f"http://127.0.0.1:{port}")


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    """One receiver for the module's tests (each test uses its own trace ids)."""
    folder = Path(tempfile.mkdtemp(prefix="cl", dir="/tmp"))
    running = start_receiver(folder)
    try:
        yield running
    finally:
        running.daemon.stop_quietly()
        shutil.rmtree(folder, ignore_errors=True)
