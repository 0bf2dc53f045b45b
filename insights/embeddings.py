"""Optional sentence embeddings for the question grouping, from an OpenAI-compatible server.

When ``CHATLOG_EMBEDDINGS_URL`` is set, the grouping asks that server for one vector per
distinct question (``POST {url}/v1/embeddings`` with ``{"model", "input"}``, batches of
``BATCH``) and counts two questions as similar as their cosine says, when that beats their
shared words (``insights.grouping``). Nothing is required: with no URL nothing is asked, and
a server that fails, answers something unusable or takes longer than
``CHATLOG_EMBEDDINGS_TIMEOUT_SECONDS`` for the whole step leaves the lexical grouping alone,
with one warning in the log. The API key goes in the ``Authorization`` header only and
never into a log line or an error message.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp
import msgspec
import numpy as np
import numpy.typing as npt

from shared.settings import Settings

log = logging.getLogger(__name__)

BATCH = 256  # questions per request: small enough for any server's input limit


class _Item(msgspec.Struct):
    embedding: list[float]
    index: int = -1


class _Answer(msgspec.Struct):
    data: list[_Item]


class EmbeddingsError(Exception):
    """The server's answer cannot be used (the message names why, never the key)."""


@dataclass(frozen=True)
class EmbeddingsClient:
    """One embeddings server: where, which model, its key, and how long the step may take."""

    url: str
    model: str
    api_key: str = field(default="", repr=False)
    timeout_seconds: float = 30.0
    threshold: float = 0.85  # the cosine at which two questions count as paraphrases

    @classmethod
    def from_settings(cls, settings: Settings) -> EmbeddingsClient | None:
        """The configured client, or None when no embeddings server is set."""
        if not settings.embeddings_url:
            return None
        return cls(
            settings.embeddings_url,
            settings.embeddings_model,
            settings.embeddings_api_key,
            settings.embeddings_timeout_seconds,
            settings.embeddings_threshold,
        )

    @property
    def endpoint(self) -> str:
        """The embeddings route under the configured base URL (which may end in ``/v1``)."""
        base = self.url.rstrip("/")
        return base + "/embeddings" if base.endswith("/v1") else base + "/v1/embeddings"

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32] | None:
        """Unit vectors of ``texts`` (one row each), or None (logged) when the server fails.

        Runs on a thread of its own with its own event loop, so it can be called from
        synchronous code and from a thread that runs a loop alike.
        """
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="embeddings") as pool:
            future = pool.submit(asyncio.run, self._embed_all(list(texts)))
            try:
                return future.result()
            except (EmbeddingsError, aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
                # str(exc) of aiohttp's errors names the URL and status, never request headers.
                log.warning(
                    "embeddings server %s failed (%s: %s); grouping questions by their words only",
                    self.endpoint, type(exc).__name__, exc,
                )
                return None

    async def _embed_all(self, texts: list[str]) -> npt.NDArray[np.float32]:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        timeout = aiohttp.ClientTimeout(total=self.timeout_seconds)
        rows: list[npt.NDArray[np.float32]] = []
        async with asyncio.timeout(self.timeout_seconds), aiohttp.ClientSession(
            headers=headers, timeout=timeout
        ) as session:
            for start in range(0, len(texts), BATCH):
                rows.append(await self._embed_batch(session, texts[start : start + BATCH]))
        matrix = np.vstack(rows)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        if not np.all(np.isfinite(matrix)) or np.any(norms == 0):
            raise EmbeddingsError("the server answered an empty or non-finite vector")
        unit: npt.NDArray[np.float32] = (matrix / norms).astype(np.float32)
        return unit

    async def _embed_batch(self, session: aiohttp.ClientSession, batch: list[str]) -> npt.NDArray[np.float32]:
        async with session.post(self.endpoint, json={"model": self.model, "input": batch}) as response:
            if response.status != 200:
                raise EmbeddingsError(f"status {response.status}")
            body = await response.read()
        try:
            answer = msgspec.json.decode(body, type=_Answer)
        except msgspec.DecodeError as exc:
            raise EmbeddingsError(f"not an embeddings answer: {exc}") from None
        items = answer.data
        if all(item.index >= 0 for item in items):  # the answer says which input each vector is
            items = sorted(items, key=lambda item: item.index)
        if len(items) != len(batch) or len({len(item.embedding) for item in items}) != 1:
            raise EmbeddingsError(f"{len(items)} vectors of mixed or wrong size for {len(batch)} questions")
        return np.asarray([item.embedding for item in items], dtype=np.float32)
