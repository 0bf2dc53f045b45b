"""Optional embeddings in the question grouping, against a real OpenAI-compatible server on
loopback that answers deterministic vectors: they join paraphrases the words alone miss; a
failing or hanging server leaves the lexical grouping, with one warning and within the timeout;
the API key is sent, and never logged."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from insights.embeddings import EmbeddingsClient
from insights.grouping import QuestionGrouper
from insights.terms import QuestionTerms
from shared.settings import Settings
from tests.support.daemon import free_port

KEY = "sk-test-secret-4711"
# Paraphrases the words alone do not join (해지 vs 취소), and a different question.
CANCEL = ("구독 해지 방법", "정기 구독 취소하고 싶어요")
PRICE = "구독료가 얼마인가요"
CONCEPTS = {CANCEL[0]: 0, CANCEL[1]: 0, PRICE: 1}


class EmbeddingsServer:
    """``POST /v1/embeddings``: one-hot vectors by concept (unknown text: a vector of its own)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.authorizations: list[str] = []
        self.status = 200
        self.hang = False
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        self.authorizations.append(request.headers.get("Authorization", ""))
        if self.hang:
            await asyncio.sleep(3600)
        if self.status != 200:
            return web.json_response({"error": {"message": "down"}}, status=self.status)
        data = []
        for index, text in enumerate(body["input"]):
            vector = [0.0] * 64
            vector[CONCEPTS.get(text, 2 + sum(map(ord, text)) % 60)] = 1.0
            data.append({"object": "embedding", "index": index, "embedding": vector})
        return web.json_response({"object": "list", "data": list(reversed(data)), "model": body["model"]})


@pytest.fixture
async def server() -> AsyncIterator[EmbeddingsServer]:
    served = EmbeddingsServer()
    app = web.Application()
    app.router.add_post("/v1/embeddings", served.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    served.url = f"http://127.0.0.1:{port}"
    try:
        yield served
    finally:
        await runner.cleanup()


@pytest.fixture(scope="module")
def terms() -> QuestionTerms:
    return QuestionTerms()


def _client(server: EmbeddingsServer, timeout: float = 5.0) -> EmbeddingsClient:
    settings = dataclasses.replace(
        Settings(), embeddings_url=server.url, embeddings_model="test-embed", embeddings_api_key=KEY,
        embeddings_timeout_seconds=timeout,
    )
    client = EmbeddingsClient.from_settings(settings)
    assert client is not None
    return client


async def _groups(grouper: QuestionGrouper, *questions: str) -> list[list[str]]:
    # In a thread, as the FAQ runs it: the test's loop keeps serving the embeddings server.
    groups = await asyncio.to_thread(grouper.group, dict.fromkeys(questions, 1))
    return sorted(sorted(text for text, _ in g.variants) for g in groups)


def test_no_url_no_client() -> None:
    assert EmbeddingsClient.from_settings(Settings()) is None


async def test_embeddings_join_paraphrases_the_words_miss(server: EmbeddingsServer, terms: QuestionTerms) -> None:
    lexical = await _groups(QuestionGrouper(terms), *CANCEL, PRICE)
    assert [list(CANCEL)] not in lexical and len(lexical) == 3
    grouped = await _groups(QuestionGrouper(terms, embeddings=_client(server)), *CANCEL, PRICE)
    assert grouped == sorted([[PRICE], sorted(CANCEL)])
    assert server.requests[0]["model"] == "test-embed"
    assert sorted(server.requests[0]["input"]) == sorted((*CANCEL, PRICE))
    assert server.authorizations == [f"Bearer {KEY}"]


async def test_embeddings_never_override_the_intent_check(server: EmbeddingsServer, terms: QuestionTerms) -> None:
    # Same concept vector, different specific intents ("how much" vs none): still apart.
    CONCEPTS["구독료 결제 날짜"] = 1
    try:
        grouped = await _groups(QuestionGrouper(terms, embeddings=_client(server)), PRICE, "구독료 결제 날짜")
    finally:
        del CONCEPTS["구독료 결제 날짜"]
    assert len(grouped) == 2


@pytest.mark.parametrize("failure", ["status", "hang"])
async def test_a_failing_server_leaves_the_lexical_grouping(
    server: EmbeddingsServer, terms: QuestionTerms, caplog: pytest.LogCaptureFixture, failure: str
) -> None:
    server.status, server.hang = (503, False) if failure == "status" else (200, True)
    lexical = await _groups(QuestionGrouper(terms), *CANCEL, PRICE)
    caplog.set_level(logging.DEBUG)
    started = time.monotonic()
    grouped = await _groups(QuestionGrouper(terms, embeddings=_client(server, timeout=0.5)), *CANCEL, PRICE)
    assert time.monotonic() - started < 5.0  # bounded by the timeout, not by the server
    assert grouped == lexical
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "insights.embeddings"]
    assert len(warnings) == 1 and "words only" in warnings[0].getMessage()
    assert KEY not in caplog.text


async def test_unusable_answers_fall_back(server: EmbeddingsServer, terms: QuestionTerms) -> None:
    app_url = server.url
    client = dataclasses.replace(_client(server), url=app_url + "/nowhere")  # 404
    assert client.embed(["a"]) is None
    assert client.embed([]) is not None


def test_key_is_hidden_in_settings_errors_and_reprs() -> None:
    with pytest.raises(Exception) as raised:
        Settings.from_values({"embeddings_url": "ftp://x", "embeddings_api_key": KEY})
    assert KEY not in str(raised.value)
    assert KEY not in repr(dataclasses.replace(Settings(), embeddings_api_key=KEY))
    client = EmbeddingsClient("http://127.0.0.1:1", "m", KEY)
    assert KEY not in repr(client)
