"""The chat backend's client of the chatlog ingestor (see docs/client.md).

``ChatlogClient`` (a background thread, stdlib only) and ``AsyncChatlogClient``
(an asyncio task, aiohttp) share one behaviour: ``log(event)`` never raises and never
waits for the network; events are posted in NDJSON batches to ``POST /v1/logs`` over
TCP or the Unix socket, retried with backoff honouring Retry-After, spooled to a local
file while the daemon cannot take them and replayed when it can, so nothing is lost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatlog_client._core import ClientStats, new_conversation_id
from chatlog_client._sync import ChatlogClient

if TYPE_CHECKING:
    from chatlog_client._async import AsyncChatlogClient

__all__ = ["AsyncChatlogClient", "ChatlogClient", "ClientStats", "new_conversation_id"]


def __getattr__(name: str) -> object:
    # The asyncio client needs aiohttp; import it only when asked for.
    if name == "AsyncChatlogClient":
        from chatlog_client._async import AsyncChatlogClient

        return AsyncChatlogClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
