"""A single-machine store (SQLite + day files) to migrate, and the CLI run as an operator would."""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import msgspec

from ingestor.dayfiles import DayFileWriter, DayKey
from ingestor.derived.state import catch_up_stopped
from ingestor.records import RecordBuilder
from ingestor.redaction import content_redactor
from shared.layout import StorageLayout, Stream
from shared.privacy import UserHasher, store_key_for_start
from shared.settings import Settings
from shared.wire import LogEventIn
from tests.support.events import make_event
from tests.support.statistics_oracle import generate
from tests.support.stores import SHARED_TABLES

# Every table a migration fills, and its order (alerts get PostgreSQL's own ids: compared without them).
DERIVED_TABLES = {
    **SHARED_TABLES,
    "answer_feedback": "feedback_id",
    "conversations": "conversation_id",
    "ingest_offsets": "stream, day",
}
VICTIM = "victim-user"  # the user id of two events, for erase-user
ALERT_COLUMNS = "rule, scope, state, started_at, resolved_at, value, threshold, baseline, message, quiet"


def build_store(config: Settings, count: int = 900, seed: int = 5) -> int:
    """Events of the last days in the day files, applied to SQLite with the ingestor stopped, two alerts."""
    layout = StorageLayout.from_settings(config)
    layout.ensure_dirs()
    now = datetime.now(UTC)
    events = generate(seed, now, count=count, days=3.0)
    rng = random.Random(seed)
    # An error keeps the victim's conversation whatever the sample rate (a record to erase).
    events += [make_event(rng, session_id="s-victim", user_id=VICTIM, message_type=kind,
                          created_at=now - timedelta(hours=2, minutes=-i), status="error",
                          error={"type": "Timeout", "message": "upstream timed out"})
               for i, kind in enumerate(("user", "assistant"))]
    builder = RecordBuilder(layout, UserHasher(config.user_hash_secret.encode()), config.log_retention_days,
                            redact=content_redactor(config))
    files = DayFileWriter(layout)
    try:
        for start in range(0, len(events), 5000):
            groups: dict[DayKey, list[bytes]] = {}
            for record in builder.build([msgspec.convert(e, LogEventIn) for e in events[start : start + 5000]]):
                groups.setdefault((Stream.LOGS, record.day), []).append(record.line)
            files.append(groups)
    finally:
        files.close()
    catch_up_stopped(config, layout)
    with contextlib.closing(sqlite3.connect(config.db_path, isolation_level=None)) as conn:
        store_key_for_start(config, conn)  # as the ingestor's start records it
        conn.execute(
            f"INSERT INTO alerts (id, {ALERT_COLUMNS}) VALUES "
            "(7, 'error_rate', '', 'resolved', '2026-01-01T00:00:00Z', '2026-01-01T01:00:00Z', 0.5, 0.1, 0.01, 'm', 0),"
            "(9, 'latency_p95', 'legal-kb', 'firing', '2026-01-02T00:00:00Z', NULL, 900, 500, 300, 'slow', 0)"
        )
        conn.execute(
            "INSERT INTO alert_outbox (alert_id, url, payload, created_at, next_at, attempts) "
            "VALUES (9, 'http://hook.invalid/', '{}', 1.0, 2.0, 1)"
        )
    return len(events)


def conversation_files(config: Settings) -> dict[str, str]:
    """Each conversations day file's digest (a migration must never append to them)."""
    layout = StorageLayout.from_settings(config)
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for files in layout.days(Stream.CONVERSATIONS).values() for path in files.all
    }


def chatlog(config: Settings, *args: str, database_url: str = "", node: str = "node-a",
            env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python -m chatlog ARGS`` on ``config``'s data directory, as an operator runs it (``env`` added)."""
    return subprocess.run(
        [sys.executable, "-m", "chatlog", *args], env={**cli_env(config, database_url, node), **(env or {})},
        capture_output=True, text=True, timeout=timeout,
    )


def cli_env(config: Settings, database_url: str = "", node: str = "node-a") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATLOG_")}
    env.update(CHATLOG_DATA_DIR=str(config.data_dir), CHATLOG_USER_HASH_SECRET=config.user_hash_secret,
               CHATLOG_NODE_ID=node, CHATLOG_TIMEZONE=config.timezone.key, CHATLOG_LOG_LEVEL="WARNING")
    if database_url:
        env["CHATLOG_DATABASE_URL"] = database_url
    return env
