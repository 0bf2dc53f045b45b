"""Admin conversation lookups: ``/api/admin/conversations`` and ``/api/admin/conversations/{id}``.

Guarded by ``Authorization: Bearer $CHATLOG_ADMIN_TOKEN`` compared in constant time:
403 when no token is configured, 401 without or with a wrong token. Failed attempts
are logged (never the token) and counted in /metrics.

The list is newest first (last message time, then id) with keyset pagination: the
cursor is the position of the last item, so pages never skip or repeat an item even
while new conversations arrive.
"""

from __future__ import annotations

import base64
import binascii
import logging
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from aiohttp import web

from analytics_api import keys, params
from analytics_api.records import record_reader
from analytics_api.transcript import AnswerFeedback, answer_ids, feedback_of, transcript
from shared.errors import BadParameter, Forbidden, NotFound, Unauthorized, json_response
from shared.privacy import bearer_token, tokens_equal

log = logging.getLogger("chatlog.analytics.admin")

MAX_LIMIT = 500
# A cursor this API returns holds a timestamp and an id of at most 128 characters.
MAX_CURSOR_CHARS = 1024
_COLUMNS = (
    "conversation_id, collection_name, user_hash, started_at, last_message_at, total_turns, "
    "retention_priority, summary, has_error"
)


def require_admin(request: web.Request) -> None:
    """Let the request through only with the configured admin token."""
    expected = request.app[keys.settings_key].admin_token
    if not expected:
        raise Forbidden("admin endpoints are disabled: set CHATLOG_ADMIN_TOKEN to enable them")
    given = bearer_token(request.headers.get("Authorization"))
    if given is None or not tokens_equal(given, expected):
        request.app[keys.metrics_key].admin_auth_failures.inc()
        log.warning(
            "admin authentication failed: %s %s from %s (%s)",
            request.method,
            request.path,
            request.remote,
            "no token" if given is None else "wrong token",
        )
        raise Unauthorized("a valid admin token is required: Authorization: Bearer <token>")


@dataclass(frozen=True)
class ConversationFilter:
    """The list endpoint's filters, already validated."""

    collection_name: str | None
    user_hash: str | None
    since: str | None  # UTC text bounds on last_message_at, inclusive / exclusive
    until: str | None
    has_error: bool | None
    limit: int
    after: tuple[str, str] | None


def encode_cursor(last_message_at: str, conversation_id: str) -> str:
    """The opaque cursor that continues after one item."""
    raw = msgspec.json.encode([last_message_at, conversation_id])
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    """The position a cursor stands for, or BadParameter."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, cid = msgspec.json.decode(raw, type=tuple[str, str])
    except (binascii.Error, ValueError, msgspec.DecodeError, msgspec.ValidationError):
        raise BadParameter("cursor", "not a cursor this API returned") from None
    return at, cid


def parse_filter(request: web.Request) -> ConversationFilter:
    """Validate the list endpoint's query parameters; each failure names its parameter."""
    query = request.query
    layout = request.app[keys.layout_key]
    first = params.day(query, "date_from")
    last = params.day(query, "date_to")
    if first and last and first > last:
        raise BadParameter("date_from", "is after date_to")
    cursor = params.text(query, "cursor", MAX_CURSOR_CHARS)
    return ConversationFilter(
        collection_name=params.collection(query),
        user_hash=params.text(query, "user_hash"),
        since=_utc_text(layout.day_start(first)) if first else None,
        until=_utc_text(layout.day_start(last + timedelta(days=1))) if last else None,
        has_error=params.boolean(query, "has_error"),
        limit=params.integer(query, "limit", 50, 1, MAX_LIMIT),
        after=decode_cursor(cursor) if cursor else None,
    )


def _utc_text(instant: datetime) -> str:
    # Same fixed-width UTC text the ingestor stores, so comparisons are plain text ones.
    return instant.astimezone(UTC).isoformat(timespec="microseconds")


def list_rows(conn: sqlite3.Connection, f: ConversationFilter) -> list[tuple[Any, ...]]:
    """Up to ``limit + 1`` index rows matching the filter, newest first."""
    where: list[str] = []
    args: list[Any] = []
    for column, value in (("collection_name", f.collection_name), ("user_hash", f.user_hash)):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    if f.since is not None:
        where.append("last_message_at >= ?")
        args.append(f.since)
    if f.until is not None:
        where.append("last_message_at < ?")
        args.append(f.until)
    if f.has_error is not None:
        where.append("has_error = ?")
        args.append(int(f.has_error))
    if f.after is not None:
        where.append("(last_message_at < ? OR (last_message_at = ? AND conversation_id < ?))")
        args.extend((f.after[0], f.after[0], f.after[1]))
    sql = f"SELECT {_COLUMNS} FROM conversations"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY last_message_at DESC, conversation_id DESC LIMIT ?"
    args.append(f.limit + 1)
    return conn.execute(sql, args).fetchall()


def _item(row: tuple[Any, ...]) -> dict[str, Any]:
    cid, collection, user_hash, started, last, turns, priority, summary, has_error = row
    return {
        "conversation_id": cid,
        "collection_name": collection,
        "user_hash": user_hash,
        "started_at": started,
        "last_message_at": last,
        "total_turns": turns,
        "retention_priority": priority,
        "summary": summary,
        "has_error": bool(has_error),
    }


async def list_conversations(request: web.Request) -> web.Response:
    """``GET /api/admin/conversations``: filtered, newest first, cursor-paginated."""
    require_admin(request)
    f = parse_filter(request)
    none: list[tuple[Any, ...]] = []
    rows = await request.app[keys.database_key].read(lambda conn: list_rows(conn, f), none)
    page = rows[: f.limit]
    next_cursor = encode_cursor(page[-1][4], page[-1][0]) if len(rows) > f.limit else None
    return json_response({"items": [_item(r) for r in page], "next_cursor": next_cursor})


async def get_conversation(request: web.Request) -> web.Response:
    """``GET /api/admin/conversations/{id}``: the newest full record with each answer's feedback, 404 if none."""
    require_admin(request)
    cid = request.match_info["conversation_id"]
    record = await record_reader(request.app[keys.settings_key])(request.app, cid)
    if record is None:
        raise NotFound(f"no conversation {cid!r}")
    ids = answer_ids(record)
    none: dict[str, list[AnswerFeedback]] = {}
    feedback = await request.app[keys.database_key].read(lambda conn: feedback_of(conn, ids), none) if ids else none
    return json_response(transcript(record, feedback))
