"""``POST /v1/admin/erase-user`` on the Unix socket: erasure while the ingestor keeps running.

Local only, like the socket's 0660 trust: over TCP the endpoint answers 403, whatever
token is sent. The operator CLI (``chatlog erase-user``) hashes the user id with the
store's key and posts ``{"user_hash": ...}``.

Meanwhile the derived-state process is stopped in order (it applies every line written
so far and exits) and the erasure holds the day-file lock, so events keep being
accepted and queue behind that lock; they are written once the files are rewritten,
and the restarted derived-state process applies them from the corrected offsets:
every other event is stored and counted exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import re

import msgspec
from aiohttp import web

from ingestor import keys
from ingestor.lifecycle.erasure import ErasureReport, erase_user
from ingestor.views import over_unix_socket, read_body
from shared.db import connect_store_sync
from shared.errors import BadRequest, Forbidden, json_response

_USER_HASH = re.compile(r"[0-9a-f]{64}")


class _EraseRequest(msgspec.Struct, forbid_unknown_fields=True):
    user_hash: str


async def post_erase_user(request: web.Request) -> web.Response:
    """Erase one user (by stored hash) from every file and table; answer what was removed."""
    if not over_unix_socket(request):
        raise Forbidden("erasure is only accepted on the ingestor's Unix socket")
    try:
        wanted = msgspec.json.decode(await read_body(request), type=_EraseRequest)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise BadRequest(f'expected {{"user_hash": "<64 hex digits>"}}: {exc}') from None
    if not _USER_HASH.fullmatch(wanted.user_hash):
        raise BadRequest("user_hash must be 64 lowercase hex digits (HMAC-SHA256)")
    app = request.app
    derived = app[keys.derived_key]
    async with app[keys.erasure_lock_key]:
        await derived.pause()
        try:
            report = await asyncio.to_thread(_erase, app, wanted.user_hash)
        finally:
            await derived.resume()
    return json_response(
        {
            "lines": report.lines,
            "files_rewritten": report.files_rewritten,
            "sessions": report.sessions,
            "conversations": report.conversations,
            "query_texts": report.query_texts,
            "summary": report.summary(),
        }
    )


def _erase(app: web.Application, user_hash: str) -> ErasureReport:
    settings = app[keys.settings_key]
    files = app[keys.files_key]
    with contextlib.closing(connect_store_sync(settings)) as conn:
        return erase_user(
            app[keys.layout_key], conn, user_hash, settings.zstd_level,
            day_lock=files.lock, before_rewrite=files.close, backup_keep=settings.backup_keep,
        )


def setup_erasure(app: web.Application) -> None:
    """Register the endpoint and its lock (one erasure at a time)."""
    app[keys.erasure_lock_key] = asyncio.Lock()
    app.router.add_post("/v1/admin/erase-user", post_erase_user)
