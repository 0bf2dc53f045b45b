"""The asyncio client: a background task posting with aiohttp."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import time
from pathlib import Path
from types import TracebackType

import aiohttp

from chatlog_client._core import DEFAULT_SPOOL, DEFAULT_URL, FEEDBACK_ENDPOINT, ClientCore, feedback_event
from chatlog_client._delivery import Delivery, Outcome, Post, Reply, parse_retry_after

log = logging.getLogger("chatlog_client")


class AsyncChatlogClient(ClientCore):
    """Sends log events to the chatlog ingestor from a background asyncio task.

    Same behaviour as ``ChatlogClient``: ``log(event)`` is a plain (not async) method
    that only encodes and enqueues; call it from the event loop's thread. The task
    starts with ``async with``, ``start()``, or the first ``log()`` inside a running
    loop. ``await close()`` delivers what is in memory and in the spool while the daemon
    answers; at interpreter exit without it, whatever is still in memory is written to
    the spool so the next client replays it.

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
        host = "localhost" if self.unix_socket is not None else self._host
        port = f":{self._port}" if self._port and self.unix_socket is None else ""
        self._endpoint = f"{'http' if self.unix_socket else self._scheme}://{host}{port}{self._path}"
        self._wakeup = asyncio.Event()
        self._progress = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._feedback: AsyncChatlogClient | None = None
        atexit.register(self._spool_at_exit)

    async def __aenter__(self) -> AsyncChatlogClient:
        self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def start(self) -> None:
        """Start the background task in the running loop (replays the spool if there is one)."""
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="chatlog-client")

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
        """Queue feedback on an answer (``log_id``): ``score`` 1 good, -1 bad. A plain method, like ``log``.

        It travels on a channel of its own to ``POST /v1/feedback`` (spooled to
        ``<name>.feedback<suffix>`` beside ``spool_path`` while the daemon is away) with the same retry rules as
        ``log``; a ``feedback_id`` is fixed now so that retries are stored once. Raises
        ValueError for a score other than 1 or -1.
        """
        item = feedback_event(
            log_id, score, collection_name=collection_name, comment=comment, user_id=user_id,
            user_hash=user_hash, session_id=session_id, conversation_id=conversation_id, feedback_id=feedback_id,
        )
        if self._feedback is None:
            self._feedback = _FeedbackChannel(**self._options)
        self._feedback.log(item)

    async def flush(self, timeout: float | None = 10.0) -> bool:  # noqa: ASYNC109 (same API as sync)
        """Wait until every event (and piece of feedback) logged so far was delivered; see ``_flush``."""
        started = time.monotonic()
        done = await self._flush(timeout)
        if self._feedback is not None:
            left = None if timeout is None else max(0.0, timeout - (time.monotonic() - started))
            done = await self._feedback.flush(left) and done
        return done

    async def _flush(self, timeout: float | None = 10.0) -> bool:  # noqa: ASYNC109
        """Wait until every event logged so far was delivered and the spool file is empty.

        Same rules as ``ChatlogClient.flush``: delivered is acknowledged or refused for
        good, a failed daemon is probed every quarter second meanwhile, and False means
        events are still in memory or in the spool after ``timeout`` seconds.
        """
        self.start()
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        with self._lock:
            target = self._enqueued
            self._flush_requests += 1
        self._wakeup.set()
        try:
            while not self._flushed(target):
                if self._task is None or self._task.done() or self._gave_up:
                    return False
                self._progress.clear()
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    return False
                try:
                    async with asyncio.timeout(remaining):
                        await self._progress.wait()
                except TimeoutError:
                    return False
            return True
        finally:
            with self._lock:
                self._flush_requests -= 1

    async def close(self, timeout: float | None = 10.0) -> int:  # noqa: ASYNC109
        """Deliver what is in memory and in the spool while the daemon answers, then stop.

        Same rules as ``ChatlogClient.close``: at most ``timeout`` seconds (plus the rest
        of a request under way), sooner when the daemon does not answer; returns the
        number of events left in the spool file (0: all delivered, -1: unreadable) and
        logs a warning with that count and the spool path when it is not 0.
        """
        if self._closed:
            return self._left_at_close
        atexit.unregister(self._spool_at_exit)
        self.start()
        self._closed = True
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        with self._lock:
            self._draining = True
        await self._flush(timeout)
        with self._lock:
            self._closing = True
        self._stopping.set()
        self._wakeup.set()
        stuck = False
        if self._task is not None:
            remaining = self._timeout if deadline is None else max(0.0, deadline - loop.time())
            try:
                await asyncio.wait_for(asyncio.shield(self._task), min(remaining, self._timeout) + 0.5)
            except TimeoutError:
                stuck = True
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            except Exception:
                log.exception("chatlog client: the sender task failed")
        with self._lock:
            leftovers = self._leftovers(include_inflight=stuck)
        if leftovers:
            await asyncio.to_thread(self._spool_lines, leftovers)
        left = await asyncio.to_thread(self._report_left)
        self._spool.close()
        if self._feedback is not None:
            feedback_left = await self._feedback.close(timeout)
            left = -1 if -1 in (left, feedback_left) else left + feedback_left
            self._left_at_close = left
        return left

    @property
    def _running(self) -> bool:
        return self._task is not None

    def _wake(self) -> None:
        self._wakeup.set()
        if self._task is None:
            with contextlib.suppress(RuntimeError):  # no running loop yet: start later
                self.start()

    def _spool_at_exit(self) -> None:
        """At interpreter exit without close(): keep what is still in memory in the spool."""
        with self._lock:
            self._closing = True
            leftovers = self._leftovers(include_inflight=True)
        self._spool_lines(leftovers)

    async def _run(self) -> None:
        connector = (
            aiohttp.UnixConnector(path=self.unix_socket) if self.unix_socket is not None
            else aiohttp.TCPConnector()
        )
        timeout = aiohttp.ClientTimeout(total=self._timeout)
        session = aiohttp.ClientSession(connector=connector, timeout=timeout, headers=self._headers)
        async with session:
            self._session = session
            while True:
                with self._lock:
                    action, batch, wait = self._plan(time.monotonic())
                    if action == "wait":
                        self._wakeup.clear()
                if action == "stop":
                    return
                if action == "wait":
                    # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(wait):
                            await self._wakeup.wait()
                elif action == "live":
                    await self._send_live(batch)
                else:
                    await self._replay_step()

    async def _send_live(self, batch: list[bytes]) -> None:
        try:
            if self._may_send():
                outcome = await self._drive(self._delivery(batch))
                await self._finish_async(outcome, replay=False)
            else:
                await asyncio.to_thread(self._spool_lines, batch)
        except Exception:
            self._count(errors=1)
            log.exception("chatlog client: sending a batch failed; spooling it")
            await asyncio.to_thread(self._spool_lines, batch)
        # Not in a finally: when close() cancels a stuck task it spools the in-flight batch itself.
        with self._lock:
            self._settle(batch)
        self._progress.set()

    async def _replay_step(self) -> None:
        try:
            chunk = await asyncio.to_thread(self._next_replay)
            if chunk is None:
                return
            if chunk.lines:
                outcome = await self._drive(self._delivery(chunk.lines))
                await self._finish_async(outcome, replay=True)
                if outcome.remaining:
                    return  # keep the offset; the next probe sends this batch again
            await asyncio.to_thread(self._commit_replay, chunk)
        except Exception as exc:
            self._replay_failed(exc)
        finally:
            self._progress.set()  # flush() waits for the spool to empty

    async def _finish_async(self, outcome: Outcome, *, replay: bool) -> None:
        if outcome.rejected or outcome.remaining:  # file writes: off the loop
            await asyncio.to_thread(self._finish, outcome, replay=replay)
        else:
            self._finish(outcome, replay=replay)

    async def _drive(self, delivery: Delivery) -> Outcome:
        """Run the delivery rules with aiohttp and asyncio sleeps."""
        try:
            action = next(delivery)
            while True:
                if isinstance(action, Post):
                    action = delivery.send(await self._post(action.lines))
                else:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(action.seconds):
                            await self._stopping.wait()
                    action = delivery.send(None)
        except StopIteration as stop:
            outcome: Outcome = stop.value
            return outcome

    async def _post(self, lines: list[bytes]) -> Reply:
        """POST one NDJSON batch; a stale keep-alive connection is retried once."""
        if self._stopping.is_set() or self._session is None:
            return Reply(0, unreachable=True, error="client is closing")
        body = b"".join(lines)
        for attempt in range(2):
            try:
                async with self._session.post(self._endpoint, data=body) as response:
                    data = await response.read()
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                    return Reply(response.status, data, retry_after)
            except aiohttp.ClientConnectorError as exc:
                return Reply(0, unreachable=True, error=f"{type(exc).__name__}: {exc}")
            except aiohttp.ServerDisconnectedError as exc:
                if attempt == 0:
                    continue
                return Reply(0, error=f"{type(exc).__name__}: {exc}")
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                return Reply(0, error=f"{type(exc).__name__}: {exc}")
        return Reply(0, error="connection closed")


class _FeedbackChannel(AsyncChatlogClient):
    """The channel ``AsyncChatlogClient.feedback`` sends on: the same machinery, to ``POST /v1/feedback``."""

    ENDPOINT = FEEDBACK_ENDPOINT
