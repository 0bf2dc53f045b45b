"""Admin conversation lookups: authentication, filters, cursor pagination, full records."""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import zstandard
from aiohttp.test_utils import TestClient

from analytics_api.app import create_app as create_analytics
from ingestor.app import create_app as create_ingestor
from shared.layout import StorageLayout, Stream
from shared.privacy import UserHasher
from shared.settings import Settings
from tests.conftest import TEST_SECRET, AiohttpClient

TOKEN = "admin-token-7f3a"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def conversation(cid: str, collection: str, user: str, when: datetime, error: bool = False) -> dict[str, Any]:
    """A posted two-message conversation."""
    return {
        "conversation_id": cid, "collection_name": collection, "user_id": user,
        "messages": [
            {"role": "user", "content": f"질문 {cid}: 연차 휴가 신청 방법", "timestamp": when.isoformat()},
            {"role": "assistant", "content": f"답변 {cid}", "error": error,
             "timestamp": (when + timedelta(seconds=3)).isoformat()},
        ],
    }


@pytest.fixture
async def admin(aiohttp_client: AiohttpClient, store_config: Settings) -> TestClient[Any, Any]:
    """An analytics API over 23 stored conversations (two users, two collections), on either store."""
    settings = dataclasses.replace(store_config, admin_token=TOKEN)
    ingest = await aiohttp_client(create_ingestor(settings))
    base = datetime.now(UTC) - timedelta(hours=30)
    for i in range(23):
        body = conversation(f"c{i:02d}", "hr-docs" if i % 2 else "it-help", "kim" if i < 10 else "lee",
                            base + timedelta(hours=i), error=i % 7 == 0)
        resp = await ingest.post("/v1/conversations", json=body)
        assert resp.status == 202 and (await resp.json())["saved"] is True
    await ingest.close()
    return await aiohttp_client(create_analytics(settings))


async def test_admin_disabled_without_token(aiohttp_client: AiohttpClient, config: Settings) -> None:
    """With no CHATLOG_ADMIN_TOKEN the admin endpoints answer 403, even with a header."""
    client = await aiohttp_client(create_analytics(config))
    for path in ("/api/admin/conversations", "/api/admin/conversations/x"):
        resp = await client.get(path, headers=AUTH)
        assert resp.status == 403 and (await resp.json())["error"] == "forbidden"


async def test_wrong_or_missing_token_is_401_logged_without_token(
    admin: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """401 without or with a wrong token; the attempt is logged and counted, the token is not logged."""
    caplog.set_level(logging.WARNING)
    for headers in ({}, {"Authorization": "Bearer guess-123"}, {"Authorization": TOKEN}):
        resp = await admin.get("/api/admin/conversations", headers=headers)
        assert resp.status == 401 and (await resp.json())["error"] == "unauthorized"
    assert "admin authentication failed" in caplog.text
    assert "guess-123" not in caplog.text and TOKEN not in caplog.text
    metrics = await (await admin.get("/metrics")).text()
    assert "chatlog_admin_auth_failures_total 3.0" in metrics


async def test_cursor_pagination_returns_every_item_once(admin: TestClient[Any, Any]) -> None:
    """Walking next_cursor with limit 5 yields all 23 conversations once, newest first."""
    seen: list[str] = []
    cursor = None
    while True:
        query = {"limit": "5", **({"cursor": cursor} if cursor else {})}
        body = await (await admin.get("/api/admin/conversations", params=query, headers=AUTH)).json()
        assert len(body["items"]) <= 5
        seen.extend(item["conversation_id"] for item in body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"c{i:02d}" for i in reversed(range(23))]


async def test_filters(admin: TestClient[Any, Any]) -> None:
    """collection_name, user_hash, has_error and the date range each narrow the list."""
    async def ids(**query: str) -> set[str]:
        resp = await admin.get("/api/admin/conversations", params={"limit": "500", **query}, headers=AUTH)
        assert resp.status == 200, await resp.text()
        return {item["conversation_id"] for item in (await resp.json())["items"]}

    assert await ids(collection_name="hr-docs") == {f"c{i:02d}" for i in range(23) if i % 2}
    kim = UserHasher(TEST_SECRET.encode()).hash("kim")
    assert await ids(user_hash=kim) == {f"c{i:02d}" for i in range(10)}
    assert await ids(has_error="true") == {"c00", "c07", "c14", "c21"}
    assert await ids(has_error="false") == {f"c{i:02d}" for i in range(23) if i % 7}
    today = datetime.now(UTC).date().isoformat()
    assert await ids(date_from=today, date_to=today) < await ids()
    resp = await admin.get("/api/admin/conversations", params={"has_error": "maybe"}, headers=AUTH)
    assert resp.status == 400 and (await resp.json())["parameter"] == "has_error"
    resp = await admin.get("/api/admin/conversations", params={"cursor": "!!"}, headers=AUTH)
    assert resp.status == 400 and (await resp.json())["parameter"] == "cursor"


async def test_full_record_by_id(admin: TestClient[Any, Any], config: Settings) -> None:
    """A lookup returns the full newest record; unknown ids are 404; a compressed day still answers."""
    resp = await admin.get("/api/admin/conversations/c03", headers=AUTH)
    assert resp.status == 200
    record = await resp.json()
    assert record["conversation_id"] == "c03"
    assert [m["role"] for m in record["messages"]] == ["user", "assistant"]
    assert record["messages"][0]["content"].startswith("질문 c03")
    assert record["metadata"]["total_turns"] == 1
    missing = await admin.get("/api/admin/conversations/nope", headers=AUTH)
    assert missing.status == 404 and (await missing.json())["error"] == "not_found"
    layout = StorageLayout.from_settings(config)
    for files in layout.days(Stream.CONVERSATIONS).values():
        assert files.plain is not None
        zst = files.plain.with_name(files.plain.name + ".zst")
        zst.write_bytes(zstandard.ZstdCompressor().compress(files.plain.read_bytes()))
        files.plain.unlink()
    again = await admin.get("/api/admin/conversations/c03", headers=AUTH)
    assert again.status == 200 and (await again.json()) == record
