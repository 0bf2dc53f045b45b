"""What the sync and asyncio clients share: encoding, the queue, the link state, the spool."""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from datetime import time as dtime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from chatlog_client._delivery import MAX_ATTEMPTS, MAX_DELAY, Delivery, Outcome, backoff, deliver
from chatlog_client._spool import Spool, SpoolChunk, corrupt_entry, unencodable_entry, utc_now

log = logging.getLogger("chatlog_client")

DEFAULT_URL = "http://127.0.0.1:8700"
DEFAULT_SPOOL = "./chatlog-spool.ndjson"
FEEDBACK_ENDPOINT = "/v1/feedback"
OFFLINE_DELAY = 0.5  # first wait before probing an unreachable daemon again; doubles per failure
# While flush() or close() waits, the daemon is probed this often instead of on the
# backoff clock: a daemon back after a restart is found within a fraction of a second.
FLUSH_PROBE_DELAY = 0.25
MAX_BATCH_BYTES = 1 << 20  # well under the daemon's 5 MiB default body limit


def new_conversation_id(given: str | None) -> str:
    """The conversation id a chat endpoint answers with: ``given`` when usable, else a new UUID."""
    if given is not None:
        given = given.strip()
        if 1 <= len(given) <= 128:
            return given
    return str(uuid.uuid4())


def _jsonable(value: object) -> object:
    """JSON for what ``json`` cannot encode itself; unknown objects become their ``str``."""
    if isinstance(value, datetime | date | dtime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, set | frozenset):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    dump = getattr(value, "model_dump", None)  # pydantic models
    if callable(dump):
        return dump(mode="json")
    return str(value)


def encode_event(event: Mapping[str, Any]) -> bytes:
    """One NDJSON line; fills ``log_id`` and ``created_at`` so retries are idempotent.

    Raises TypeError or ValueError for what cannot be sent (not a mapping, NaN, cycles).
    """
    if not isinstance(event, Mapping):
        raise TypeError(f"an event must be a mapping, not {type(event).__name__}")
    data = dict(event)
    if not data.get("log_id"):
        data["log_id"] = str(uuid.uuid4())
    if not data.get("created_at"):
        data["created_at"] = utc_now()
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_jsonable)
    return text.encode() + b"\n"


class Link:
    """Whether the daemon is believed reachable, and when to try it again."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self.failures = 0
        self.retry_at = 0.0
        self.failed_at = 0.0
        self.hold_until = 0.0  # the daemon's Retry-After: not even a flush probes sooner

    @property
    def probing(self) -> bool:
        """True after a failure: send one attempt at a time until one succeeds."""
        return self.failures > 0

    def next_try(self, *, urgent: bool) -> float:
        """When the network may be used next; ``urgent`` (someone waits in flush) probes sooner."""
        if urgent and self.failures:
            return min(self.retry_at, max(self.failed_at + FLUSH_PROBE_DELAY, self.hold_until))
        return self.retry_at

    def may_try(self, now: float, *, urgent: bool) -> bool:
        """True when the network may be used now."""
        return now >= self.next_try(urgent=urgent)

    def succeeded(self) -> None:
        """The daemon answered: back to normal."""
        if self.failures:
            log.info("chatlog daemon reachable again; replaying the spool")
        self.failures = 0
        self.retry_at = 0.0

    def failed(self, now: float, retry_after: float | None, reason: str, spool: Path) -> None:
        """A batch could not be delivered: spool until the next probe."""
        if not self.failures:
            log.warning("chatlog daemon not taking events (%s); spooling to %s", reason, spool)
        self.failed_at = now
        self.hold_until = now + min(retry_after, MAX_DELAY) if retry_after is not None else 0.0
        if self.failures and now < self.retry_at:
            # A flush's early probe: the backoff keeps its schedule instead of growing per probe.
            self.retry_at = max(self.retry_at, self.hold_until)
            return
        self.retry_at = now + backoff(self.failures, retry_after, self._rng, base=OFFLINE_DELAY)
        self.failures += 1


@dataclass(frozen=True)
class ClientStats:
    """Counters of a client since it started (events unless noted)."""

    sent: int = 0  # acknowledged by the daemon (202) from memory
    replayed: int = 0  # acknowledged by the daemon from the spool
    spooled: int = 0  # written to the spool file while the daemon could not take them
    rejected: int = 0  # refused by the daemon or not encodable: written to <spool>.rejected
    errors: int = 0  # failed attempts, unencodable events, I/O and internal errors (not events)
    dropped: int = 0  # lost: the spool could not be written either
    queued: int = 0  # in memory right now


_COUNTERS = ("sent", "replayed", "spooled", "rejected", "errors", "dropped")


Action = Literal["live", "replay", "wait", "stop"]


def feedback_event(
    log_id: str,
    score: int,
    *,
    collection_name: str,
    comment: str | None = None,
    user_id: str | None = None,
    user_hash: str | None = None,
    session_id: str | None = None,
    conversation_id: str | None = None,
    feedback_id: str | None = None,
) -> dict[str, Any]:
    """One ``POST /v1/feedback`` item; its ``feedback_id`` (the idempotency key) is fixed here.

    Raises ValueError for a score other than 1 (good) or -1 (bad): it could never be stored.
    """
    if score not in (1, -1) or isinstance(score, bool):
        raise ValueError(f"score must be 1 (good) or -1 (bad), not {score!r}")
    item: dict[str, Any] = {"feedback_id": feedback_id or str(uuid.uuid4()), "log_id": log_id,
                            "collection_name": collection_name, "score": score, "created_at": utc_now()}
    optional = {"comment": comment, "user_id": user_id, "user_hash": user_hash,
                "session_id": session_id, "conversation_id": conversation_id}
    item.update({k: v for k, v in optional.items() if v is not None})
    return item


def feedback_spool(spool_path: str | Path) -> Path:
    """Where the feedback channel beside a client spools: ``x.ndjson`` -> ``x.feedback.ndjson``."""
    path = Path(spool_path)
    return path.with_name(f"{path.stem}.feedback{path.suffix}")


class ClientCore:
    """Queue, spool and bookkeeping shared by both clients; subclasses add the transport."""

    # The ingest route this client posts to (feedback has its own channel: ``FEEDBACK_ENDPOINT``).
    ENDPOINT = "/v1/logs"

    def __init__(
        self,
        *,
        url: str,
        unix_socket: str | Path | None,
        token: str | None,
        spool_path: str | Path,
        batch_size: int,
        flush_interval: float,
        max_queue: int,
        timeout: float,
    ) -> None:
        if batch_size < 1 or max_queue < 1 or flush_interval < 0 or timeout <= 0:
            raise ValueError("batch_size and max_queue must be >= 1, flush_interval >= 0, timeout > 0")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"url must be http(s)://host[:port][/prefix], not {url!r}")
        self.url = url
        self.unix_socket = str(unix_socket) if unix_socket is not None else None
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._path = parts.path.rstrip("/") + self.ENDPOINT
        # What a feedback channel beside this client is built with (its own spool beside ours).
        self._options: dict[str, Any] = {
            "url": url, "unix_socket": unix_socket, "token": token, "spool_path": feedback_spool(spool_path),
            "batch_size": batch_size, "flush_interval": flush_interval, "max_queue": max_queue, "timeout": timeout,
        }
        self._headers = {"Content-Type": "application/x-ndjson", "User-Agent": "chatlog-client/0.1"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._spool = Spool.claim(spool_path)
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._max_queue = max_queue
        self._timeout = timeout
        self._rng = random.Random()
        self._link = Link(self._rng)
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(_COUNTERS, 0)
        self._queue: deque[bytes] = deque()
        self._first_at = 0.0  # when the oldest queued event arrived
        self._enqueued = 0  # events ever put in the queue
        self._settled = 0  # of those: acknowledged, rejected or spooled
        self._flush_requests = 0
        self._inflight: list[bytes] = []
        self._draining = False  # close() is delivering what is left before it stops
        self._gave_up = False  # ... and stopped because the daemon does not answer
        self._closing = False
        self._replay_offset = 0
        self._left_at_close = 0

    @property
    def spool_path(self) -> Path:
        """The spool file; ``.replaying`` and ``.rejected`` files sit beside it."""
        return self._spool.path

    @property
    def stats(self) -> ClientStats:
        """A snapshot of the counters."""
        with self._lock:
            return ClientStats(**self._counts, queued=len(self._queue))

    def log(self, event: Mapping[str, Any]) -> None:
        """Queue one event for delivery. Never raises, never waits for the network.

        ``log_id`` (UUID) and ``created_at`` (now, UTC) are filled in when missing. When the
        in-memory queue is full the event is appended to the spool file instead.
        """
        try:
            line = encode_event(event)
        except Exception as exc:
            self._count(errors=1, rejected=1)
            self._reject([unencodable_entry(event, exc)], durable=False)
            return
        try:
            with self._lock:
                overflow = self._closing or len(self._queue) >= self._max_queue
                if not overflow:
                    if not self._queue:
                        self._first_at = time.monotonic()
                    self._queue.append(line)
                    self._enqueued += 1
                    if len(self._queue) in (1, self._batch_size) or not self._running:
                        self._wake()
            if overflow:
                self._spool_lines([line], durable=False)
        except Exception:
            self._count(errors=1)
            log.exception("chatlog client: could not queue an event")

    @property
    def _running(self) -> bool:
        """True once the background worker exists."""
        return True

    def _wake(self) -> None:
        """Tell the worker there is work (called with the lock held)."""
        raise NotImplementedError

    def _count(self, **counts: int) -> None:
        with self._lock:
            for name, n in counts.items():
                self._counts[name] += n

    def _flushed(self, target: int) -> bool:
        """The first ``target`` events logged left memory and the spool is empty (lock held)."""
        return self._settled >= target and not self._spool.has_backlog

    @property
    def _urgent(self) -> bool:
        """Someone waits in flush() or close(): probe a failed daemon on the short clock."""
        return self._flush_requests > 0

    def _plan(self, now: float) -> tuple[Action, list[bytes], float | None]:
        """What the worker does next (call with the lock held): a batch, a replay step, or wait."""
        timeout: float | None = None
        if self._queue:
            due = self._first_at + self._flush_interval
            if len(self._queue) >= self._batch_size or self._flush_requests or self._closing or now >= due:
                batch = self._take(now)
                self._inflight = batch
                return "live", batch, None
            timeout = due - now
        elif self._closing:
            return "stop", [], None
        if not self._closing and not self._gave_up and self._spool.has_backlog:
            wait = self._link.next_try(urgent=self._urgent) - now
            if wait <= 0:
                return "replay", [], None
            timeout = wait if timeout is None else min(timeout, wait)
        return "wait", [], timeout

    def _take(self, now: float) -> list[bytes]:
        batch: list[bytes] = []
        size = 0
        while self._queue and len(batch) < self._batch_size:
            if batch and size + len(self._queue[0]) > MAX_BATCH_BYTES:
                break
            line = self._queue.popleft()
            batch.append(line)
            size += len(line)
        self._first_at = now
        return batch

    def _settle(self, batch: list[bytes]) -> None:
        """Mark a taken batch as done (call with the lock held)."""
        self._inflight = []
        self._settled += len(batch)

    def _delivery(self, lines: list[bytes]) -> Delivery:
        """The delivery rules for a batch: one attempt while probing a daemon that failed."""
        return deliver(lines, 1 if self._link.probing else MAX_ATTEMPTS, self._rng)

    def _may_send(self) -> bool:
        return not self._closing and self._link.may_try(time.monotonic(), urgent=self._urgent)

    def _finish(self, outcome: Outcome, *, replay: bool) -> None:
        """Count a delivery, write its rejections, and spool what a live batch did not deliver."""
        self._count(**{"replayed" if replay else "sent": outcome.acked},
                    rejected=len(outcome.rejected), errors=outcome.failures)
        self._reject(outcome.rejected)
        if outcome.remaining:
            self._link.failed(time.monotonic(), outcome.retry_after, outcome.last_error, self._spool.path)
            if outcome.not_answering and self._draining:
                self._gave_up = True
            if not replay:
                self._spool_lines(outcome.remaining)
        else:
            self._link.succeeded()

    def _spool_lines(self, lines: list[bytes], *, durable: bool = True) -> None:
        try:
            self._spool.append(lines, durable=durable)
        except OSError as exc:
            self._count(errors=1, dropped=len(lines))
            log.error("chatlog client: cannot write the spool %s (%s); %d events lost",
                      self._spool.path, exc, len(lines))
            return
        self._count(spooled=len(lines))

    def _reject(self, entries: list[bytes], *, durable: bool = True) -> None:
        if not entries:
            return
        try:
            self._spool.reject(entries, durable=durable)
        except OSError as exc:
            self._count(errors=1)
            log.error("chatlog client: cannot write %s (%s)", self._spool.rejected_path, exc)

    def _next_replay(self) -> SpoolChunk | None:
        """The next batch of the replay file (renaming the spool first when needed), or None."""
        if not self._spool.start_replay():
            return None
        return self._spool.read(self._replay_offset, self._batch_size, MAX_BATCH_BYTES)

    def _commit_replay(self, chunk: SpoolChunk) -> None:
        """Move past a replayed batch; delete the replay file once all of it was acknowledged."""
        if chunk.corrupt:
            self._count(rejected=len(chunk.corrupt), errors=len(chunk.corrupt))
            self._reject([corrupt_entry(raw) for raw in chunk.corrupt])
        if chunk.torn:
            self._count(errors=1)
            log.warning("chatlog client: skipped a torn last line of %s", self._spool.replaying_path)
        self._replay_offset = chunk.end
        if chunk.eof:
            self._spool.finish_replay()
            self._replay_offset = 0

    def _replay_failed(self, exc: Exception) -> None:
        self._count(errors=1)
        if self._draining:
            self._gave_up = True
        self._link.failed(time.monotonic(), None, f"replay failed: {exc}", self._spool.path)
        log.exception("chatlog client: replaying %s failed", self._spool.replaying_path)

    def _leftovers(self, *, include_inflight: bool) -> list[bytes]:
        """Take whatever is still in memory (call with the lock held), for spooling at close."""
        lines = [*self._queue, *(self._inflight if include_inflight else [])]
        self._settled += len(self._queue)
        self._queue.clear()
        return lines

    def _report_left(self) -> int:
        """Count what stays in the spool for the next client on it, and say so (at close)."""
        try:
            left = self._spool.pending_lines(self._replay_offset)
        except OSError as exc:
            log.error("chatlog client: cannot read the spool %s (%s)", self._spool.path, exc)
            left = -1
        if left:
            log.warning("chatlog client closed with %s events left in the spool %s; "
                        "the next client on it sends them", "some" if left < 0 else left, self._spool.path)
        self._left_at_close = left
        return left
