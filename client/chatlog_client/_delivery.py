"""The delivery rules of one batch, free of I/O.

``deliver`` is a generator: it yields ``Post`` (send these lines, get a ``Reply`` back)
and ``Sleep`` actions and returns an ``Outcome``. Each client drives it with its own
transport: http.client in a thread, aiohttp in a task.
"""

from __future__ import annotations

import json
import random
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from chatlog_client._spool import rejected_entry

MAX_ATTEMPTS = 4  # per batch while the daemon answers; one attempt per probe after a failure
BASE_DELAY = 0.2  # first retry backoff; doubles per attempt
MAX_DELAY = 30.0  # cap of every wait, Retry-After included
_REFUSED = frozenset({400, 413, 422})  # permanent: the same request can never succeed
_MISCONFIGURED = frozenset({401, 403, 404, 405})  # wrong token or URL: spool, don't hammer


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def backoff(attempt: int, retry_after: float | None, rng: random.Random, base: float = BASE_DELAY) -> float:
    """Exponential backoff with jitter, never shorter than Retry-After, capped at ``MAX_DELAY``."""
    delay = min(MAX_DELAY, base * 2.0**attempt) * rng.uniform(0.5, 1.0)
    if retry_after is not None:
        delay = max(delay, min(MAX_DELAY, retry_after) * rng.uniform(1.0, 1.1))
    return min(delay, MAX_DELAY)


@dataclass(frozen=True)
class Reply:
    """What one POST came back with; status 0 means no HTTP answer."""

    status: int
    body: bytes = b""
    retry_after: float | None = None
    unreachable: bool = False  # nothing listens (refused, no socket file): spool at once
    error: str = ""

    def describe(self) -> str:
        """A short text for logs."""
        if self.status:
            return f"HTTP {self.status} {self.body[:200].decode('utf-8', 'replace')}"
        return self.error or "no answer"


@dataclass(frozen=True)
class Post:
    """Send these lines as one NDJSON request."""

    lines: list[bytes]


@dataclass(frozen=True)
class Sleep:
    """Wait before the next attempt."""

    seconds: float


@dataclass
class Outcome:
    """The result of delivering one batch."""

    acked: int = 0
    rejected: list[bytes] = field(default_factory=list)  # ``.rejected`` entries to write
    remaining: list[bytes] = field(default_factory=list)  # lines not delivered: spool or keep
    failures: int = 0
    retry_after: float | None = None
    last_error: str = ""
    # The last attempt got no HTTP answer, or a 401/403/404/405 (wrong token or URL):
    # trying again within seconds will not help, unlike after a 5xx or 429.
    not_answering: bool = False


Delivery = Generator[Post | Sleep, Reply | None, Outcome]


def _error_list(body: bytes) -> object:
    try:
        data = json.loads(body)
    except ValueError:
        return [{"message": body[:500].decode("utf-8", "replace")}]
    return data.get("errors", [data]) if isinstance(data, dict) else [data]


def _errors_by_index(body: bytes, count: int) -> dict[int, list[Any]]:
    """The 422 errors grouped by event index; empty when the body cannot be trusted."""
    try:
        errors = json.loads(body)["errors"]
        grouped: dict[int, list[Any]] = {}
        for error in errors:
            index = error["index"]
            if not isinstance(index, int) or not 0 <= index < count:
                return {}
            grouped.setdefault(index, []).append(error)
    except (ValueError, KeyError, TypeError):
        return {}
    return grouped


def _refused(chunk: list[bytes], reply: Reply) -> tuple[list[list[bytes]], list[bytes]]:
    """For a 400/413/422: the chunks to send instead and the ``.rejected`` entries."""
    if reply.status == 422:
        bad = _errors_by_index(reply.body, len(chunk))
        if bad:
            good = [line for i, line in enumerate(chunk) if i not in bad]
            entries = [rejected_entry(chunk[i], 422, errors) for i, errors in sorted(bad.items())]
            return ([good] if good else []), entries
    if len(chunk) > 1:
        half = len(chunk) // 2
        return [chunk[half:], chunk[:half]], []  # halves isolate what the daemon refuses
    return [], [rejected_entry(chunk[0], reply.status, _error_list(reply.body))]


def deliver(lines: list[bytes], attempts: int, rng: random.Random) -> Delivery:
    """Deliver one batch: 2xx done; 400/413 split in halves down to single events, which are
    rejected; 422 rejects the events it names and resends the rest; 401/403/404/405 and an
    unreachable daemon give up at once; anything else is retried with backoff (honouring
    Retry-After) up to ``attempts`` times. What is not delivered is returned as ``remaining``.
    """
    out = Outcome()
    stack = [lines]
    while stack:
        chunk = stack.pop()
        for attempt in range(attempts):
            reply = yield Post(chunk)
            assert reply is not None
            if 200 <= reply.status < 300:
                out.acked += len(chunk)
                break
            if reply.status in _REFUSED:
                again, entries = _refused(chunk, reply)
                stack.extend(again)
                out.rejected.extend(entries)
                break
            out.failures += 1
            out.retry_after = reply.retry_after
            out.last_error = reply.describe()
            if reply.unreachable or reply.status in _MISCONFIGURED or attempt == attempts - 1:
                out.not_answering = reply.status == 0 or reply.status in _MISCONFIGURED
                out.remaining = [line for c in (chunk, *reversed(stack)) for line in c]
                return out
            yield Sleep(backoff(attempt, reply.retry_after, rng))
    return out


