"""The analytics API as a real process: ``python -m analytics_api`` with its settings in the environment."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from tests.support.daemon import free_port
from tests.support.grafana_requests import data_query_request, target

ADMIN_TOKEN = "readonly-admin-token"

# Every statistics endpoint of the API, with parameters that reach each of its queries.
GETS = (
    "/healthz",
    "/api/analytics/summary",
    "/api/analytics/summary?collection_name=low-kb&top=3",
    "/api/analytics/timeline?period=hourly&days=2",
    "/api/analytics/timeline?period=daily&days=7&collection_name=hr-docs",
    "/api/analytics/collections",
    "/api/analytics/quality",
    "/api/analytics/faq?min_count=1",
    "/api/analytics/suggestions",
    "/api/analytics/alerts",
    "/api/analytics/report?format=json",
)
POSTS = (
    ("/grafana/metrics", {}),
    ("/grafana/query", data_query_request([target("queries"), target("top_queries", {"top": 3}, "B")], hours=24)),
)


async def answer(client: TestClient[Any, Any], path: str, body: Any = None) -> tuple[int, Any]:
    """Status and JSON body of a GET (or, with ``body``, a POST) through an aiohttp test client."""
    resp = await (client.get(path) if body is None else client.post(path, json=body))
    return resp.status, await resp.json()


class AnalyticsProcess:
    """``python -m analytics_api`` on a data directory (``environ``: more CHATLOG_* variables)."""

    def __init__(self, data_dir: Path, **environ: str) -> None:
        self.port = free_port()
        env = {**os.environ, "CHATLOG_DATA_DIR": str(data_dir), "CHATLOG_API_PORT": str(self.port),
               "CHATLOG_ADMIN_TOKEN": ADMIN_TOKEN, "CHATLOG_LOG_LEVEL": "WARNING", **environ}
        self.proc = subprocess.Popen([sys.executable, "-m", "analytics_api"], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.proc.stderr.read().decode() if self.proc.stderr else ""
            with contextlib.suppress(OSError):
                self.get("/healthz")
                return
            time.sleep(0.05)
        raise TimeoutError("analytics API did not start")

    def get(self, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        """Status and JSON body of a GET (or, with ``body``, a POST)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data,
                                         headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def stop(self) -> None:
        """SIGTERM and wait."""
        self.proc.terminate()
        self.proc.wait(20)
        if self.proc.stderr:
            self.proc.stderr.close()
