"""The soak's requests: valid NDJSON batches with known log_ids and hostile variants of them.

Every request carries the log_ids of the events in it that would be stored if the
ingestor answered 202, so the soak can tell lost and duplicated events apart from
refused ones whatever the ingestor decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.support.events import make_event

TOKEN = "soak-ingest-token-0123456789"
MAX_BODY = 2 * 1024 * 1024  # the soak's CHATLOG_MAX_BODY_BYTES: a 1.5 MB message fits, 2.5 MB does not
NDJSON = b"application/x-ndjson"
REQUEST_TIMEOUT = 30.0  # per request, connect to status line
HUGE = 2**64
EXTREME_DATES = (
    "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0000-01-01T00:00:00Z",
    "2026-02-30T12:00:00Z", "+275760-09-13T00:00:00Z", "1970-01-01T00:00:00+25:00",
)
ODD_TEXTS = (
    "nul\u0000inside", "\ud800 lone surrogate", "\udfff\ud800 reversed pair", "line\u2028and\u2029para",
    "\ufeffBOM first", "\U0010ffff\ufffe\uffff noncharacters", "\u202eRTL override", "e" + "\u0301" * 5000,
    "👩\u200d👩\u200d👧\u200d👦 family", "crlf\r\ninside\r", "tab\tand\x1bescape\x7f",
)


KINDS = ("valid", "retry", "invalid_json", "truncated", "over_limit", "huge_int", "extreme_date", "deep_json",
         "bad_auth", "bad_encoding", "big_message", "odd_unicode")


@dataclass
class Request:
    """One POST /v1/logs as bytes on the wire."""

    kind: str
    body: bytes
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)  # stored exactly once if the answer is 202
    declared_length: int | None = None  # a Content-Length that lies: the body ends early
    chunked: bool = False
    cut_short: bool = False  # chunked without its last chunk


def _line(event: dict[str, Any]) -> bytes:
    # backslashreplace writes a lone surrogate as the JSON escape \ud800: raw, it is not UTF-8.
    return json.dumps(event, ensure_ascii=False).encode("utf-8", "backslashreplace") + b"\n"


def _headers(auth: bytes | None = None, content_type: bytes = NDJSON) -> list[tuple[bytes, bytes]]:
    return [(b"Content-Type", content_type), (b"Authorization", auth or b"Bearer " + TOKEN.encode())]


class Traffic:
    """Builds requests of every kind from one random generator (one per sender task)."""

    def __init__(self, rng: random.Random, history: deque[Request], unanswered: deque[Request]) -> None:
        self.rng = rng
        self.history = history  # recent valid batches, for retries
        self.unanswered = unanswered  # valid batches that got no answer (a kill): retried first
        self._gzip_bomb: bytes | None = None
        self.kinds: dict[str, tuple[int, Callable[[], Request]]] = {
            "valid": (30, self.valid), "retry": (8, self.retry), "invalid_json": (6, self.invalid_json),
            "truncated": (5, self.truncated), "over_limit": (2, self.over_limit),
            "huge_int": (7, self.huge_int), "extreme_date": (7, self.extreme_date),
            "deep_json": (6, self.deep_json), "bad_auth": (6, self.bad_auth),
            "bad_encoding": (7, self.bad_encoding), "big_message": (1, self.big_message),
            "odd_unicode": (10, self.odd_unicode),
        }
        assert tuple(self.kinds) == KINDS

    def next(self) -> Request:
        """A request of a kind drawn by weight."""
        names = list(self.kinds)
        name = self.rng.choices(names, weights=[self.kinds[n][0] for n in names])[0]
        return self.kinds[name][1]()

    def events(self, n: int, **overrides: Any) -> list[dict[str, Any]]:
        """``n`` realistic user and assistant events in a small pool of sessions."""
        rng = self.rng
        kinds = [overrides.pop("message_type")] if "message_type" in overrides else ["user", "assistant"]
        return [
            make_event(rng, session_id=f"soak-{rng.randrange(400)}", message_type=rng.choice(kinds),
                       user_id=f"user-{rng.randrange(2000)}", **overrides)
            for _ in range(n)
        ]

    def _with_one_bad(self, kind: str, bad: dict[str, Any], *, headers: list[tuple[bytes, bytes]] | None = None
                      ) -> Request:
        good = self.events(self.rng.randint(0, 5))
        batch = [*good, bad]
        self.rng.shuffle(batch)
        return Request(kind, b"".join(map(_line, batch)), headers or _headers(), [e["log_id"] for e in batch])

    def valid(self) -> Request:
        batch = self.events(self.rng.randint(1, 40))
        request = Request("valid", b"".join(map(_line, batch)), _headers(), [e["log_id"] for e in batch])
        self.history.append(request)
        return request

    def retry(self) -> Request:
        if self.unanswered:
            original = self.unanswered.popleft()
        elif self.history:
            original = self.rng.choice(self.history)
        else:
            return self.valid()
        return Request("retry", original.body, original.headers, original.ids)

    def invalid_json(self) -> Request:
        good = self.events(self.rng.randint(0, 3))
        bad = self.rng.choice((
            b'{"session_id": "s", "message_type": "user"', b"{not json}", b"\xff\xfe\x00{", b'{"a":1,}',
            b'{"x": NaN}', b'{"log_id": "\\uZZZZ"}', b"[[[[", b'"just a string"', b"\x00" * 64,
        ))
        body = b"".join(map(_line, good)) + bad + b"\n"
        content_type = self.rng.choice((NDJSON, b"application/json", b"text/plain; charset=utf-8"))
        return Request("invalid_json", body, _headers(content_type=content_type), [e["log_id"] for e in good])

    def truncated(self) -> Request:
        batch = self.events(self.rng.randint(1, 20))
        body = b"".join(map(_line, batch))
        ids = [e["log_id"] for e in batch]
        if self.rng.random() < 0.5:
            return Request("truncated", body, _headers(), ids, chunked=True, cut_short=True)
        cut = self.rng.randint(1, len(body) - 1)
        return Request("truncated", body[:cut], _headers(), ids, declared_length=len(body))

    def over_limit(self) -> Request:
        if self.rng.random() < 0.5:
            batch = self.events(1, message_content="가" * (MAX_BODY // 3 + 200_000))  # ~2.6 MB of UTF-8
        else:
            batch = self.events(MAX_BODY // 600)  # many small events over the limit together
        body = b"".join(map(_line, batch))
        return Request("over_limit", body, _headers(), [e["log_id"] for e in batch],
                       chunked=self.rng.random() < 0.5)

    def huge_int(self) -> Request:
        value = self.rng.choice((HUGE, -HUGE, 10**40, HUGE - 1))
        place = self.rng.choice(("response_time_ms", "token_count", "retrieval_time_ms"))
        (bad,) = self.events(1, message_type="assistant")
        bad["performance"][place] = value
        if self.rng.random() < 0.3:
            bad["llm_params"]["max_tokens"] = value
        return self._with_one_bad("huge_int", bad)

    def extreme_date(self) -> Request:
        (bad,) = self.events(1)
        bad["created_at"] = self.rng.choice(EXTREME_DATES)
        return self._with_one_bad("extreme_date", bad)

    def deep_json(self) -> Request:
        depth = 1000
        nested = self.rng.choice(("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth))
        good = self.events(self.rng.randint(0, 3))
        if self.rng.random() < 0.5:
            bad = nested.encode()
        else:
            (event,) = self.events(1)
            del event["message_content"]
            bad = _line(event)[:-2] + b', "message_content": ' + nested.encode() + b"}"
        body = b"".join(map(_line, good)) + bad + b"\n"
        content_type = self.rng.choice((NDJSON, b"application/json"))
        return Request("deep_json", body, _headers(content_type=content_type), [e["log_id"] for e in good])

    def bad_auth(self) -> Request:
        auth = self.rng.choice((
            b"Bearer \xff\xfe\xfd", b"Bearer " + TOKEN.encode() + b"\xc3", b"\xc3\x28", b"Basic \x80\x81\x82",
            b"Bearer " + TOKEN.encode().replace(b"ingest", b"ingest\xf6"), b"Bearer \x00" + TOKEN.encode(),
        ))
        batch = self.events(self.rng.randint(1, 5))
        return Request("bad_auth", b"".join(map(_line, batch)), _headers(auth), [e["log_id"] for e in batch])

    def bad_encoding(self) -> Request:
        batch = self.events(self.rng.randint(1, 10))
        plain = b"".join(map(_line, batch))
        encoding, body = self.rng.choice((
            (b"gzip", plain), (b"br", b"\x8b\x00garbage"), (b"deflate", b"\x78\x9cnot deflate"),
            (b"zstd", b"\x28\xb5\x2f\xfdtorn"), (b"x-unknown", plain), (b"gzip, gzip", gzip.compress(plain)),
            (b"gzip", gzip.compress(plain)[:-8]),  # its CRC and length cut off
            (b"gzip", self._bomb()),  # 40 MB of blank lines in 40 KB
            (b"gzip", gzip.compress(plain)),  # well-formed: may be taken
        ))
        return Request("bad_encoding", body, [*_headers(), (b"Content-Encoding", encoding)],
                       [e["log_id"] for e in batch])

    def _bomb(self) -> bytes:
        if self._gzip_bomb is None:
            self._gzip_bomb = gzip.compress(_line(self.events(1)[0]) + b"\n" * (20 * MAX_BODY))
        return self._gzip_bomb

    def big_message(self) -> Request:
        text = ("규정 제12조에 따르면 연차 휴가는 신청하며 " * 40_000)[:600_000]  # ~1.5 MB of UTF-8
        batch = self.events(1, message_content=text)
        return Request("big_message", b"".join(map(_line, batch)), _headers(), [e["log_id"] for e in batch])

    def odd_unicode(self) -> Request:
        (bad,) = self.events(1)
        field_name = self.rng.choice(("message_content", "message_content", "collection_name", "session_id"))
        bad[field_name] = self.rng.choice(ODD_TEXTS)[:128 if field_name != "message_content" else None]
        request = self._with_one_bad("odd_unicode", bad)
        if self.rng.random() < 0.15:  # raw bytes no JSON text may hold
            request.body = self.rng.choice((b"\xef\xbb\xbf", b"")) + request.body.replace(b"\\u0000", b"\x00")
        return request


async def send(port: int, request: Request) -> int | None:
    """POST ``request`` to 127.0.0.1:``port`` over a fresh connection; its status, or None when unanswered."""
    head = [b"POST /v1/logs HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close",
            *(name + b": " + value for name, value in request.headers)]
    if request.chunked:
        head.append(b"Transfer-Encoding: chunked")
        step = 64 * 1024
        body = b"".join(b"%x\r\n%s\r\n" % (len(request.body[i : i + step]), request.body[i : i + step])
                        for i in range(0, len(request.body), step))
        body += b"" if request.cut_short else b"0\r\n\r\n"
    else:
        head.append(b"Content-Length: %d" % (request.declared_length or len(request.body)))
        body = request.body
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                with contextlib.suppress(ConnectionError):
                    writer.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
                    await writer.drain()
                    if request.declared_length or request.cut_short:
                        writer.write_eof()  # the body ends early: the server sees the end of input
                status_line = await reader.readline()
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except (OSError, TimeoutError):
        return None
    parts = status_line.split()
    if len(parts) < 2 or not parts[1].isdigit():
        return None
    return int(parts[1])
