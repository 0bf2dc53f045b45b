"""The blocking client: a background daemon thread, stdlib only (http.client)."""

from __future__ import annotations

import atexit
import http.client
import logging
import socket
import threading
import time
from pathlib import Path
from types import TracebackType

from chatlog_client._core import DEFAULT_SPOOL, DEFAULT_URL, FEEDBACK_ENDPOINT, ClientCore, feedback_event
from chatlog_client._delivery import Delivery, Outcome, Post, Reply, parse_retry_after

log = logging.getLogger("chatlog_client")
_UNREACHABLE = (ConnectionRefusedError, FileNotFoundError, socket.gaierror)


class UnixHTTPConnection(http.client.HTTPConnection):
    """An HTTPConnection over a Unix stream socket."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        """Connect to the socket file."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.unix_path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class ChatlogClient(ClientCore):
    """Sends log events to the chatlog ingestor from a background thread.

    ``log(event)`` only encodes and enqueues. The thread posts batches of up to
    ``batch_size`` events (or what gathered in ``flush_interval`` seconds) as NDJSON,
    retries with backoff honouring Retry-After, and spools to ``spool_path`` what the
    daemon cannot take, replaying it when the daemon answers again (also on start).
    ``close()`` (or leaving the ``with`` block, or interpreter exit) delivers what is
    in memory and in the spool while the daemon answers, then stops.

    Give each process its own ``spool_path``.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        unix_socket: str | Path | None = None,
        token: str | None = None,
        spool_path: str | Path = DEFAULT_SPOOL,
        batch_size: int = 500,
        flush_interval: float = 0.5,
        max_queue: int = 10_000,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(
            url=url, unix_socket=unix_socket, token=token, spool_path=spool_path, batch_size=batch_size,
            flush_interval=flush_interval, max_queue=max_queue, timeout=timeout,
        )
        self._cond = threading.Condition(self._lock)
        self._stopping = threading.Event()  # cuts backoff sleeps short at close
        self._conn: http.client.HTTPConnection | None = None
        self._closed = False
        self._feedback: ChatlogClient | None = None
        self._thread = threading.Thread(target=self._run, name="chatlog-client", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def __enter__(self) -> ChatlogClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def feedback(
        self,
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
    ) -> None:
        """Queue feedback on an answer (``log_id``): ``score`` 1 good, -1 bad. Never waits for the network.

        It travels on a channel of its own to ``POST /v1/feedback`` (spooled to
        ``<name>.feedback<suffix>`` beside ``spool_path`` while the daemon is away) with the same retry rules as
        ``log``; a ``feedback_id`` is fixed now so that retries are stored once. Raises
        ValueError for a score other than 1 or -1.
        """
        item = feedback_event(
            log_id, score, collection_name=collection_name, comment=comment, user_id=user_id,
            user_hash=user_hash, session_id=session_id, conversation_id=conversation_id, feedback_id=feedback_id,
        )
        with self._lock:
            if self._feedback is None:
                self._feedback = _FeedbackChannel(**self._options)
            channel = self._feedback
        channel.log(item)

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until every event logged so far was delivered and the spool file is empty.

        Delivered means acknowledged by the daemon, or refused for good (then it is in
        ``<spool>.rejected``). While waiting, a daemon that failed is probed every
        quarter second (never sooner than its Retry-After) instead of on the backoff
        clock. Returns False when events are still in memory or in the spool after
        ``timeout`` seconds, for example because the daemon is down.
        """
        started = time.monotonic()
        with self._cond:
            target = self._enqueued
            self._flush_requests += 1
            self._cond.notify_all()
            try:
                if not self._thread.is_alive():
                    done = self._flushed(target)
                else:
                    self._cond.wait_for(lambda: self._flushed(target) or self._gave_up, timeout)
                    done = self._flushed(target)
            finally:
                self._flush_requests -= 1
        if self._feedback is not None:
            left = None if timeout is None else max(0.0, timeout - (time.monotonic() - started))
            done = self._feedback.flush(left) and done
        return done

    def close(self, timeout: float | None = 10.0) -> int:
        """Deliver what is in memory and in the spool while the daemon answers, then stop.

        Waits at most ``timeout`` seconds (plus the rest of a request under way), and
        stops sooner when the daemon does not answer at all (or answers 401/403/404/405).
        What is not delivered by then stays in the spool file for the next client on it.
        Returns the number of events left there (0: everything was delivered; -1: the
        spool could not be read), and logs a warning with that count and the spool path
        when it is not 0. Closing again returns the same number.
        """
        if self._closed:
            return self._left_at_close
        self._closed = True
        atexit.unregister(self.close)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._draining = True
        self.flush(timeout)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._stopping.set()
        remaining = self._timeout if deadline is None else max(0.0, deadline - time.monotonic())
        self._thread.join(min(remaining, self._timeout) + 0.5)
        with self._cond:
            leftovers = self._leftovers(include_inflight=self._thread.is_alive())
        self._spool_lines(leftovers)
        left = self._report_left()
        self._spool.close()
        if self._feedback is not None:
            feedback_left = self._feedback.close(timeout)
            left = -1 if -1 in (left, feedback_left) else left + feedback_left
            self._left_at_close = left
        return left

    def _wake(self) -> None:
        self._cond.notify_all()  # flush() callers wait on the same condition

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    action, batch, timeout = self._plan(time.monotonic())
                    if action == "wait":
                        self._cond.wait(timeout)
                        continue
                if action == "stop":
                    return
                if action == "live":
                    self._send_live(batch)
                else:
                    self._replay_step()
        finally:
            self._disconnect()

    def _send_live(self, batch: list[bytes]) -> None:
        try:
            if self._may_send():
                self._finish(self._drive(self._delivery(batch)), replay=False)
            else:
                self._spool_lines(batch)
        except Exception:
            self._count(errors=1)
            log.exception("chatlog client: sending a batch failed; spooling it")
            self._spool_lines(batch)
        finally:
            with self._cond:
                self._settle(batch)
                self._cond.notify_all()

    def _replay_step(self) -> None:
        try:
            chunk = self._next_replay()
            if chunk is None:
                return
            if chunk.lines:
                outcome = self._drive(self._delivery(chunk.lines))
                self._finish(outcome, replay=True)
                if outcome.remaining:
                    return  # keep the offset; the next probe sends this batch again
            self._commit_replay(chunk)
        except Exception as exc:
            self._replay_failed(exc)
        finally:
            with self._cond:
                self._cond.notify_all()  # flush() waits for the spool to empty

    def _drive(self, delivery: Delivery) -> Outcome:
        """Run the delivery rules with http.client and real sleeps."""
        try:
            action = next(delivery)
            while True:
                if isinstance(action, Post):
                    action = delivery.send(self._post(action.lines))
                else:
                    self._stopping.wait(action.seconds)
                    action = delivery.send(None)
        except StopIteration as stop:
            outcome: Outcome = stop.value
            return outcome

    def _connect(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self.unix_socket is not None:
                self._conn = UnixHTTPConnection(self.unix_socket, self._timeout)
            elif self._scheme == "https":
                self._conn = http.client.HTTPSConnection(self._host, self._port, timeout=self._timeout)
            else:
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        return self._conn

    def _disconnect(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _post(self, lines: list[bytes]) -> Reply:
        """POST one NDJSON batch; a stale keep-alive connection is retried once on a fresh one."""
        if self._stopping.is_set():
            return Reply(0, unreachable=True, error="client is closing")
        body = b"".join(lines)
        for _ in range(2):
            reused = self._conn is not None and self._conn.sock is not None
            conn = self._connect()
            try:
                conn.request("POST", self._path, body=body, headers=self._headers)
                response = conn.getresponse()
                data = response.read()
            except _UNREACHABLE as exc:
                self._disconnect()
                return Reply(0, unreachable=True, error=f"{type(exc).__name__}: {exc}")
            except (OSError, http.client.HTTPException) as exc:
                self._disconnect()
                if reused and not isinstance(exc, TimeoutError):
                    continue
                return Reply(0, error=f"{type(exc).__name__}: {exc}")
            if response.will_close:
                self._disconnect()
            return Reply(response.status, data, parse_retry_after(response.getheader("Retry-After")))
        return Reply(0, error="connection closed")


class _FeedbackChannel(ChatlogClient):
    """The channel ``ChatlogClient.feedback`` sends on: the same machinery, to ``POST /v1/feedback``."""

    ENDPOINT = FEEDBACK_ENDPOINT
