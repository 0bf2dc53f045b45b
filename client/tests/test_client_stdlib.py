"""The client SDK on its own: standard library only, against a small local HTTP server.

These tests need nothing but the installed ``chatlog_client`` (no pytest, no aiohttp,
no server), so they run in a bare venv: ``python -m unittest discover -s client/tests``.
The tests against a real ingestor are in the server's suite (tests/chatlog_client/).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

from chatlog_client import ChatlogClient, new_conversation_id


class Ingest(BaseHTTPRequestHandler):
    """``POST /v1/logs``: records each request; answers ``statuses`` in turn, then 202."""

    received: ClassVar[list[tuple[str, dict[str, str], list[dict[str, object]]]]] = []
    statuses: ClassVar[list[int]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status = type(self).statuses.pop(0) if type(self).statuses else 202
        if status == 202:
            events = [json.loads(line) for line in body.splitlines() if line.strip()]
            type(self).received.append((self.path, dict(self.headers.items()), events))
        reply = json.dumps({"accepted": 0} if status == 202 else {"error": "unavailable", "message": "busy"})
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if status == 503:
            self.send_header("Retry-After", "0")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply.encode())

    def log_message(self, format: str, *args: object) -> None:
        pass


def event(i: int) -> dict[str, object]:
    """One user message with a Korean text (the wire is UTF-8 JSON)."""
    return {
        "log_id": f"log-{i}",
        "session_id": "s-1",
        "conversation_id": new_conversation_id(None),
        "collection_name": "hr-docs",
        "message_type": "user",
        "message_content": f"연차 신청은 어떻게 하나요? #{i}",
    }


class ClientAgainstLocalServer(unittest.TestCase):
    def setUp(self) -> None:
        Ingest.received = []
        Ingest.statuses = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Ingest)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.tmp = Path(tempfile.mkdtemp(prefix="chatlog-client-test-"))

    def tearDown(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_delivers_every_event_once_as_ndjson_with_the_token(self) -> None:
        client = ChatlogClient(self.url, token="s3cret", spool_path=self.tmp / "spool.ndjson", flush_interval=0.05)
        for i in range(120):
            client.log(event(i))
        self.assertTrue(client.flush(10))
        client.close()
        sent = [e["log_id"] for _, _, events in Ingest.received for e in events]
        self.assertEqual(sorted(sent), sorted(f"log-{i}" for i in range(120)))
        path, headers, events = Ingest.received[0]
        self.assertEqual(path, "/v1/logs")
        self.assertEqual(headers["Authorization"], "Bearer s3cret")
        self.assertEqual(headers["Content-Type"], "application/x-ndjson")
        self.assertEqual(events[0]["message_content"], "연차 신청은 어떻게 하나요? #0")
        self.assertEqual((client.stats.sent, client.stats.spooled, client.stats.errors), (120, 0, 0))

    def test_retries_a_busy_daemon_and_delivers_once(self) -> None:
        Ingest.statuses = [503, 503]
        client = ChatlogClient(self.url, spool_path=self.tmp / "spool.ndjson", flush_interval=0.05)
        for i in range(5):
            client.log(event(i))
        self.assertTrue(client.flush(10))
        client.close()
        sent = [e["log_id"] for _, _, events in Ingest.received for e in events]
        self.assertEqual(sorted(sent), [f"log-{i}" for i in range(5)])
        self.assertEqual(client.stats.spooled, 0)

    def test_spools_what_a_wrong_token_cannot_deliver(self) -> None:
        Ingest.statuses = [401] * 50
        spool = self.tmp / "spool.ndjson"
        client = ChatlogClient(self.url, spool_path=spool, flush_interval=0.05)
        for i in range(3):
            client.log(event(i))
        # Spooled is not delivered: flush says so, and close reports what it left.
        self.assertFalse(client.flush(1))
        self.assertEqual(client.close(1), 3)
        self.assertEqual(Ingest.received, [])
        # What close left waits in the spool, or in the replay file it had taken from it.
        waiting = [p for p in (spool, spool.with_name(spool.name + ".replaying")) if p.exists()]
        spooled = [json.loads(line)["log_id"] for p in waiting for line in p.read_bytes().splitlines() if line.strip()]
        self.assertEqual(sorted(spooled), ["log-0", "log-1", "log-2"])


class StandardLibraryOnly(unittest.TestCase):
    def test_importing_the_thread_client_loads_no_third_party_module(self) -> None:
        code = (
            "import sys, chatlog_client; chatlog_client.ChatlogClient; "
            "print(sorted(m for m in ('aiohttp', 'msgspec', 'numpy', 'pandas') if m in sys.modules))"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        self.assertEqual(out.stdout.strip(), "[]")


if __name__ == "__main__":
    unittest.main()
