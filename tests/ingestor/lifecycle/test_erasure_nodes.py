"""Erasure on PostgreSQL with two nodes: the shared rows go at once, each node's files with its own erasure."""

from __future__ import annotations

import contextlib
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingestor.app import create_app
from ingestor.lifecycle.erasure import erase_user
from shared.db import connect_store_sync
from shared.layout import StorageLayout
from shared.privacy import UserHasher
from shared.settings import Settings
from tests.conftest import TEST_SECRET, AiohttpClient
from tests.support.events import make_event
from tests.support.stores import node_config, rows

KIM = UserHasher(TEST_SECRET.encode()).hash("kim")


async def two_nodes(aiohttp_client: AiohttpClient, root: Path, url: str) -> tuple[Settings, Settings]:
    """Nodes a and b, each having stored two conversations of kim's and lee's (4 events each) and stopped."""
    rng = random.Random(9)
    nodes = []
    for name in ("node-a", "node-b"):
        node = node_config(root, url, name)
        client = await aiohttp_client(create_app(node))
        events = [
            make_event(rng, session_id=f"{user}-{name}", user_id=user, created_at=when, message_type=kind)
            for user in ("kim", "lee")
            for when in (datetime.now(UTC) - timedelta(hours=2),)
            for kind in ("user", "assistant")
        ]
        assert (await client.post("/v1/logs", json=events)).status == 202
        await client.close()  # stops the node: its conversations are stored
        nodes.append(node)
    return nodes[0], nodes[1]


def holds_kim(node: Settings) -> bool:
    """Whether any of the node's day files still holds one of kim's lines."""
    return any(KIM.encode() in p.read_bytes() for p in node.data_dir.rglob("*.jsonl"))


def applied(node: Settings) -> int:
    """The log lines the node's derived state counts as applied (its own ingest_offsets)."""
    found = rows(node, "SELECT sum(lines) FROM ingest_offsets WHERE node_id = ? AND stream = 'data'", (node.node,))
    return int(found[0][0] or 0)


async def test_erasure_on_one_node_removes_the_shared_rows_and_each_node_its_files(
    aiohttp_client: AiohttpClient, tmp_path: Path, postgres_url: str
) -> None:
    """Erasing on node-a removes kim's sessions, index rows and records of both nodes; node-b's files
    keep kim's lines until the erasure runs there, which leaves lee's conversation readable."""
    a, b = await two_nodes(aiohttp_client, tmp_path, postgres_url)
    assert rows(a, "SELECT count(*) FROM conversation_records") == [(4,)]
    with contextlib.closing(connect_store_sync(a)) as conn:
        report = erase_user(StorageLayout.from_settings(a), conn, KIM)
    assert report.conversations == 2 and report.sessions == 2
    assert rows(a, "SELECT count(*) FROM conversations WHERE user_hash = ?", (KIM,)) == [(0,)]
    stored = [bytes(r) for (r,) in rows(a, "SELECT record FROM conversation_records")]
    assert len(stored) == 2 and not any(KIM.encode() in r for r in stored)
    assert not holds_kim(a) and holds_kim(b)
    assert (applied(a), applied(b)) == (2, 4)

    with contextlib.closing(connect_store_sync(b)) as conn:
        erase_user(StorageLayout.from_settings(b), conn, KIM)
    assert not holds_kim(b) and applied(b) == 2
    # node-b's conversations file was rewritten: lee's record there is still found (its place repointed).
    ((day, offset, length),) = rows(
        b, "SELECT day, byte_offset, byte_length FROM conversations WHERE conversation_id = 'lee-node-b'"
    )
    line = (b.data_dir / "conversations" / f"{day}.jsonl").read_bytes()[offset : offset + length]
    assert b'"conversation_id":"lee-node-b"' in line


class Crash(Exception):
    """Stands in for the process dying at an erasure step."""


async def test_an_erasure_pending_on_one_node_is_finished_by_that_node_only(
    aiohttp_client: AiohttpClient, tmp_path: Path, postgres_url: str
) -> None:
    """A crash after node-a's commit leaves node-a's mark: node-b's start leaves its own files and counts alone,
    node-a's next start finishes the rewrite."""
    a, b = await two_nodes(aiohttp_client, tmp_path, postgres_url)

    def crash(name: str) -> None:
        if name == "committed":
            raise Crash(name)

    with contextlib.closing(connect_store_sync(a)) as conn, pytest.raises(Crash):
        erase_user(StorageLayout.from_settings(a), conn, KIM, step=crash)
    assert holds_kim(a) and applied(a) == 2  # counts corrected, files not yet rewritten

    client = await aiohttp_client(create_app(b))
    await client.close()
    assert holds_kim(b) and applied(b) == 4
    assert rows(a, "SELECT key FROM meta WHERE key LIKE 'erasure_pending%'") == [("erasure_pending:node-a",)]

    client = await aiohttp_client(create_app(a))
    await client.close()
    assert not holds_kim(a) and applied(a) == 2
    assert rows(a, "SELECT count(*) FROM meta WHERE key LIKE 'erasure_pending%'") == [(0,)]


async def test_erasure_takes_only_the_users_questions_out_of_the_shared_faq_rows(
    aiohttp_client: AiohttpClient, tmp_path: Path, postgres_url: str
) -> None:
    """kim asks on node-a, lee asks the same on node-b: erasing kim leaves lee's question, answer and count."""
    rng = random.Random(4)
    when = datetime.now(UTC) - timedelta(hours=2)
    question = {"message_content": "연차 휴가 신청은 어떻게 하나요?", "collection_name": "hr-docs"}
    nodes = []
    for name, user in (("node-a", "kim"), ("node-b", "lee")):
        node = node_config(tmp_path, postgres_url, name)
        client = await aiohttp_client(create_app(node))
        events = [
            make_event(rng, session_id=f"{user}-{n}", user_id=user, created_at=when + timedelta(seconds=n), **question)
            for n in range(3 if user == "kim" else 1)
        ] + [
            make_event(rng, session_id=f"{user}-{n}", user_id=user, message_type="assistant",
                       created_at=when + timedelta(seconds=n, milliseconds=500), collection_name="hr-docs")
            for n in range(3 if user == "kim" else 1)
        ]
        assert (await client.post("/v1/logs", json=events)).status == 202
        await client.close()
        nodes.append(node)
    a, _ = nodes
    before = rows(a, "SELECT question_key, count, candidates FROM faq_questions")
    assert [count for _, count, _ in before] == [4]
    with contextlib.closing(connect_store_sync(a)) as conn:
        report = erase_user(StorageLayout.from_settings(a), conn, KIM)
    assert report.faq_questions == 3
    ((key, count, candidates),) = rows(a, "SELECT question_key, count, candidates FROM faq_questions")
    assert (key, count) == (before[0][0], 1)
    (answer,) = json.loads(candidates)  # lee's answer is the only one left
    assert "lee-0" in answer
    assert rows(a, "SELECT session_id FROM faq_sessions ORDER BY session_id") == [("lee-0",)]
