"""Importing while the ingestor runs: ``POST /v1/logs`` over its Unix socket, in batches.

The running ingestor stays the one writer of the day files: it hashes, redacts,
writes, fsyncs and only then answers 202, so a batch counts as imported exactly when
an ingest would be acknowledged; its group commit and its derived-state process
(which applies old days' new lines as it is told of them) need nothing special.
A 503 (overloaded, or the derived state catching up: the import is paced by it) is
retried after its ``Retry-After``; a 422 names the events the ingestor refused, which
become rejects while the rest is sent again.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import sqlite3
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import msgspec
import psycopg

from chatlog.importing.pipeline import Pending
from chatlog.unix_http import UnixHTTPConnection
from shared.db import connect_store_reader_sync
from shared.layout import StorageLayout, Stream
from shared.settings import Settings

ONLINE_BATCH_EVENTS = 2000
REQUEST_TIMEOUT_SECONDS = 120.0
# Retrying 503s this long without one batch stored means the ingestor is not coming back.
STALL_SECONDS = 600.0


class OnlineImportFailed(RuntimeError):
    """The running ingestor could not be reached, or kept refusing; what was acknowledged stays imported."""


class OnlineStore:
    """Posts batches to the running ingestor's Unix socket; each is stored once answered 202."""

    def __init__(self, socket_path: Path, max_body_bytes: int, batch_events: int = ONLINE_BATCH_EVENTS) -> None:
        self._socket_path = socket_path
        self._body_limit = max(1, max_body_bytes * 3 // 4)  # headroom: the limit counts the whole body
        self._conn: UnixHTTPConnection | None = None
        self._encoder = msgspec.json.Encoder()
        self.batch_events = batch_events
        self.retries = 0

    def store(self, batch: Sequence[Pending]) -> list[tuple[Pending, list[tuple[str, str]]]]:
        """Post ``batch`` in bodies under the size limit; the events the ingestor refused, with why."""
        refused: list[tuple[Pending, list[tuple[str, str]]]] = []
        lines = [self._encoder.encode(p.event) + b"\n" for p in batch]
        start = 0
        while start < len(batch):
            size, end = 0, start
            while end < len(batch) and (end == start or size + len(lines[end]) <= self._body_limit):
                size += len(lines[end])
                end += 1
            refused.extend(self._post(list(batch[start:end]), lines[start:end]))
            start = end
        return refused

    def _post(self, items: list[Pending], lines: list[bytes]) -> list[tuple[Pending, list[tuple[str, str]]]]:
        refused: list[tuple[Pending, list[tuple[str, str]]]] = []
        stalled_since = time.monotonic()
        while items:
            status, headers, body = self._request(b"".join(lines))
            if status == 202:
                return refused
            if status == 422:
                bad: dict[int, list[tuple[str, str]]] = {}
                for error in _json(body).get("errors", []):
                    bad.setdefault(_index(error.get("index")), []).append(
                        (str(error.get("path", "$")), str(error.get("message", "refused")))
                    )
                if not bad.keys() <= set(range(len(items))):
                    raise OnlineImportFailed(f"the ingestor answered 422 without naming the events: {body[:200]!r}")
                refused.extend((items[i], problems) for i, problems in bad.items())
                keep = [i for i in range(len(items)) if i not in bad]
                items, lines = [items[i] for i in keep], [lines[i] for i in keep]
                continue
            if status == 413 and len(items) > 1:
                half = len(items) // 2
                refused.extend(self._post(items[:half], lines[:half]))
                refused.extend(self._post(items[half:], lines[half:]))
                return refused
            if status == 503:
                if time.monotonic() - stalled_since > STALL_SECONDS:
                    raise OnlineImportFailed(
                        f"the ingestor kept answering 503 for {STALL_SECONDS:.0f} s: {body[:200]!r}"
                    )
                self.retries += 1
                time.sleep(_retry_after(headers.get("Retry-After")))
                continue
            raise OnlineImportFailed(f"the ingestor answered {status}: {body[:300]!r}")
        return refused

    def _request(self, body: bytes) -> tuple[int, http.client.HTTPMessage, bytes]:
        for attempt in range(2):
            if self._conn is None:
                self._conn = UnixHTTPConnection(self._socket_path, REQUEST_TIMEOUT_SECONDS)
            try:
                self._conn.request("POST", "/v1/logs", body=body,
                                   headers={"Content-Type": "application/x-ndjson"})
                response = self._conn.getresponse()
                return response.status, response.msg, response.read()
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                # A kept-alive connection the server closed meanwhile: once more on a new one.
                # (Sending a batch twice is harmless: its log_ids make the second a no-op.)
                if attempt == 1 or not isinstance(exc, (http.client.RemoteDisconnected, BrokenPipeError,
                                                        ConnectionResetError)):
                    raise OnlineImportFailed(
                        f"the ingestor's socket {self._socket_path} does not answer ({exc}); "
                        "what was reported imported is stored: run the import again to finish it"
                    ) from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _json(body: bytes) -> dict[str, list[dict[str, object]]]:
    try:
        answer = json.loads(body)
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _index(value: object) -> int:
    return value if isinstance(value, int) else -1


def _retry_after(header: str | None) -> float:
    try:
        return min(30.0, max(0.1, float(header or 1)))
    except ValueError:
        return 1.0


def unapplied_days(settings: Settings, layout: StorageLayout, days: Sequence[date]) -> list[date]:
    """The days whose file is not yet applied to its end (``ingest_offsets`` records a different size)."""
    if not days:
        return []
    try:
        conn = connect_store_reader_sync(settings, node=True)
        if conn is None:
            return list(days)
        with contextlib.closing(conn):
            recorded = dict(conn.execute(
                "SELECT day, size FROM ingest_offsets WHERE stream = ?", (Stream.LOGS.value,)
            ).fetchall())
    except (sqlite3.Error, psycopg.Error):
        return list(days)
    behind = []
    for day in days:
        path = layout.day_files(Stream.LOGS, day).readable
        if path is None:
            continue
        try:
            size = path.stat().st_size
        except OSError:
            continue
        if recorded.get(day.isoformat()) != size:
            behind.append(day)
    return behind


def wait_until_applied(settings: Settings, layout: StorageLayout, days: Sequence[date], timeout: float) -> list[date]:
    """Wait until the running ingestor's derived state has applied every line of ``days``; those it has not."""
    deadline = time.monotonic() + timeout
    behind = unapplied_days(settings, layout, days)
    while behind and time.monotonic() < deadline:
        time.sleep(0.2)
        behind = unapplied_days(settings, layout, behind)
    return behind
