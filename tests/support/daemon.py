"""Running the real ingestor as a subprocess, for crash and signal tests."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

from tests.conftest import TEST_SECRET


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class IngestorProcess:
    """``python -m ingestor`` on a data directory, started and stopped by the test."""

    def __init__(
        self, data_dir: Path, socket_path: Path, port: int | None = None, *,
        database_url: str = "", node_id: str = "", **env: str,
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.socket_path = socket_path
        self.env = {
            **os.environ,
            "CHATLOG_DATA_DIR": str(data_dir),
            "CHATLOG_INGEST_PORT": str(self.port),
            "CHATLOG_INGEST_SOCKET": str(socket_path),
            "CHATLOG_USER_HASH_SECRET": TEST_SECRET,
            "CHATLOG_LOG_LEVEL": "WARNING",
            "CHATLOG_OTLP_PORT": "0",
            # A node of a shared PostgreSQL (both empty: SQLite in the data directory).
            "CHATLOG_DATABASE_URL": database_url,
            "CHATLOG_NODE_ID": node_id,
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the TCP listener."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> IngestorProcess:
        """Start and wait until /healthz answers."""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ingestor"], env=self.env,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"ingestor exited: {err}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("ingestor did not become healthy")

    def kill(self) -> None:
        """SIGKILL: no cleanup of any kind runs."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)
        if self.proc.stderr:
            self.proc.stderr.close()

    def terminate(self, timeout: float = 30.0) -> tuple[int, str]:
        """SIGTERM and wait; return the exit code and stderr."""
        assert self.proc is not None
        self.proc.terminate()
        code = self.proc.wait(timeout)
        err = ""
        if self.proc.stderr:
            err = self.proc.stderr.read().decode()
            self.proc.stderr.close()
        return code, err

    def stop_quietly(self) -> None:
        """Kill if still running, with its derived-state process (test teardown)."""
        if self.proc is not None and self.proc.poll() is None:
            children = psutil.Process(self.proc.pid).children(recursive=True)
            self.proc.kill()
            self.proc.wait(10)
            for child in children:
                with contextlib.suppress(psutil.Error):
                    child.kill()
        if self.proc is not None and self.proc.stderr and not self.proc.stderr.closed:
            self.proc.stderr.close()
