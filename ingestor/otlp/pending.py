"""Retrieval spans waiting, durably, for the chat span of their trace.

An exporter sends spans as they end, in batches: a retrieval span usually ends (and may be
sent) before the chat span of the same trace, possibly in an earlier request. Such a retrieval
is appended to ``otlp/pending-retrievals.jsonl`` and fsynced before its request is answered,
and kept in memory by trace id for ``CHATLOG_OTLP_JOIN_SECONDS``; a chat span of that trace
arriving later takes its ``retrieval_info`` from there. On start the file is read back (a torn
last line skipped) and rewritten with only the unexpired entries, so a SIGKILL loses no
acknowledged retrieval and the file stays small. Memory and file are bounded by
``MAX_PENDING`` traces: past it the oldest are forgotten (their answers then carry no
retrieval_info, nothing else is lost).

A retrieval span that arrives after its chat span was stored stays pending too: the stored
answer is not changed (day files are append-only and every statistic counts an answer once),
but a later chat span of the trace (the next turn of an agent loop) joins it.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

import msgspec

from ingestor.otlp.genai import Retrieval

MAX_PENDING = 10_000
FILE_MODE = 0o640


class PendingRetrievals:
    """Retrievals by trace id, each also a fsynced line of the pending file."""

    def __init__(self, path: Path, keep_seconds: float, max_pending: int = MAX_PENDING) -> None:
        self._path = path
        self._keep_seconds = keep_seconds
        self._max = max_pending
        self._by_trace: OrderedDict[str, tuple[float, list[Retrieval]]] = OrderedDict()
        self._lock = asyncio.Lock()

    def __len__(self) -> int:
        return len(self._by_trace)

    def load(self) -> None:
        """Read the file back and rewrite it with what has not expired (blocking: at start)."""
        self._path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
        now = time.time()
        try:
            lines = self._path.read_bytes().split(b"\n")
        except FileNotFoundError:
            lines = []
        for line in lines:
            try:
                entry = msgspec.json.decode(line)
                expires = float(entry["expires"])
                retrieval = Retrieval.from_json(entry["retrieval"])
            except (msgspec.DecodeError, KeyError, TypeError, ValueError):
                continue  # a torn last line, or an empty one
            if expires > now:
                self._remember(retrieval, expires)
        self._rewrite()

    def find(self, trace_id: str, before_ns: int) -> Retrieval | None:
        """The trace's retrieval that ended last before ``before_ns`` (else its first one)."""
        found = self._by_trace.get(trace_id)
        if found is None:
            return None
        expires, retrievals = found
        if expires <= time.time():
            return None
        return best_retrieval(retrievals, before_ns)

    async def add(self, retrievals: Iterable[Retrieval]) -> None:
        """Remember and fsync retrievals (before the request that brought them is answered)."""
        items = list(retrievals)
        if not items:
            return
        expires = time.time() + self._keep_seconds
        lines = b"".join(
            msgspec.json.encode({"expires": expires, "retrieval": item.to_json()}) + b"\n" for item in items
        )
        for item in items:
            self._remember(item, expires)
        async with self._lock:
            await asyncio.to_thread(self._append, lines)

    def _remember(self, retrieval: Retrieval, expires: float) -> None:
        _, known = self._by_trace.pop(retrieval.trace_id, (0.0, []))
        if retrieval not in known:
            known.append(retrieval)
        self._by_trace[retrieval.trace_id] = (expires, known)
        while len(self._by_trace) > self._max:
            self._by_trace.popitem(last=False)

    def _append(self, lines: bytes) -> None:
        _write_synced(os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE), lines)
        # Rewrite once the file holds many more lines than are pending (expired, forgotten).
        if self._path.stat().st_size > 4096 * (len(self._by_trace) + 64):
            self._rewrite()

    def _rewrite(self) -> None:
        now = time.time()
        for trace_id in [t for t, (expires, _) in self._by_trace.items() if expires <= now]:
            del self._by_trace[trace_id]
        body = b"".join(
            msgspec.json.encode({"expires": expires, "retrieval": item.to_json()}) + b"\n"
            for expires, items in self._by_trace.values()
            for item in items
        )
        temporary = self._path.with_suffix(".tmp")
        _write_synced(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE), body)
        os.replace(temporary, self._path)
        directory = os.open(self._path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def _write_synced(fd: int, data: bytes) -> None:
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def best_retrieval(retrievals: list[Retrieval], before_ns: int) -> Retrieval | None:
    """The retrieval that ended last before ``before_ns``, else the first one."""
    earlier = [r for r in retrievals if r.end_ns <= before_ns]
    if earlier:
        return max(earlier, key=lambda r: r.end_ns)
    return retrievals[0] if retrievals else None
