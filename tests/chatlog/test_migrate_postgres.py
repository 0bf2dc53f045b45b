"""``chatlog migrate-to-postgres``: a single-machine store loaded into PostgreSQL as one node."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import date
from typing import Any

from ingestor.derived.state import DerivedState, line_observers
from shared.layout import StorageLayout, Stream
from shared.privacy import KEY_FINGERPRINT_META
from shared.settings import Settings
from tests.support.migration import (
    ALERT_COLUMNS,
    DERIVED_TABLES,
    build_store,
    chatlog,
    cli_env,
    conversation_files,
)
from tests.support.stores import on_postgres, rows

COLUMNS = {"ingest_offsets": "stream, day, lines, size"}


def normal(value: object) -> object:
    return bytes(value) if isinstance(value, memoryview) else value


def table(config: Settings, name: str, where: str = "") -> list[tuple[Any, ...]]:
    columns = COLUMNS.get(name, "*")
    return [tuple(map(normal, r)) for r in rows(config, f"SELECT {columns} FROM {name} {where} "
                                                       f"ORDER BY {DERIVED_TABLES[name]}")]


def snapshot(config: Settings) -> dict[str, list[tuple[Any, ...]]]:
    """Every migrated table of the store ``config`` names."""
    found = {name: table(config, name) for name in DERIVED_TABLES}
    found["alerts"] = [tuple(r) for r in rows(config, f"SELECT {ALERT_COLUMNS} FROM alerts ORDER BY started_at")]
    found["alert_outbox"] = [tuple(r) for r in rows(
        config, "SELECT a.rule, o.url, o.payload, o.attempts FROM alert_outbox o JOIN alerts a ON a.id = o.alert_id")]
    found["fingerprint"] = rows(config, "SELECT value FROM meta WHERE key = ?", (KEY_FINGERPRINT_META,))
    return found


def test_migration_gives_sqlites_state_and_never_appends_a_conversation(config: Settings, postgres_url: str) -> None:
    events = build_store(config, count=900)
    files_before = conversation_files(config)
    assert files_before, "the store has conversation records to carry over"
    lite = snapshot(config)
    assert lite["conversations"] and lite["alerts"] and lite["alert_outbox"] and lite["fingerprint"]

    done = chatlog(config, "migrate-to-postgres", "--database-url", postgres_url)
    assert done.returncode == 0, done.stderr
    assert f"node node-a: {events:,} day-file lines applied" in done.stdout
    assert "verified: " in done.stdout and "database ok" in done.stdout
    pg = on_postgres(config, postgres_url)
    assert snapshot(pg) == lite
    assert conversation_files(config) == files_before
    # Each record is the bytes of the line the index points at, this node's.
    layout = StorageLayout.from_settings(config)
    for cid, day, offset, length in rows(config, "SELECT conversation_id, day, byte_offset, byte_length "
                                                 "FROM conversations"):
        with open(layout.day_path(Stream.CONVERSATIONS, date.fromisoformat(day)), "rb") as f:
            f.seek(offset)
            line = f.read(length)
        assert rows(pg, "SELECT node_id, record FROM conversation_records WHERE conversation_id = ?", (cid,)) \
            == [("node-a", line)]

    again = chatlog(config, "migrate-to-postgres", "--database-url", postgres_url)
    assert again.returncode == 0, again.stderr
    assert "node node-a: 0 day-file lines applied" in again.stdout
    assert "alerts carried over by an earlier run" in again.stdout
    assert snapshot(pg) == lite
    assert conversation_files(config) == files_before


def test_a_killed_migration_run_again_gives_the_same_database(
    config: Settings, postgres_url: str, postgres_server: Any,
) -> None:
    build_store(config, count=30_000)
    files_before = conversation_files(config)
    lite = snapshot(config)
    env = cli_env(config, postgres_url)
    killed_at = []
    for delay in (0.5, 1.5, 3.0):
        proc = subprocess.Popen([sys.executable, "-m", "chatlog", "migrate-to-postgres"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None
        for line in proc.stderr:
            if "applying the day files" in line:
                break
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        applied = rows(on_postgres(config, postgres_url), "SELECT coalesce(sum(lines), 0) FROM ingest_offsets")
        killed_at.append(applied[0][0] if applied else 0)
    done = chatlog(config, "migrate-to-postgres", database_url=postgres_url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert snapshot(on_postgres(config, postgres_url)) == lite
    assert conversation_files(config) == files_before
    total = sum(r[0] for r in rows(config, "SELECT lines FROM ingest_offsets"))
    assert any(0 < n < total for n in killed_at), (killed_at, total)


def test_the_migration_applies_what_a_derived_state_applies() -> None:
    """The migration's observers are DerivedState's: both take them from one list."""
    import inspect

    from chatlog.migrating import derived

    assert "line_observers(" in inspect.getsource(DerivedState.start)
    assert "line_observers(" in inspect.getsource(derived)
    assert len(line_observers(Settings())) == 5


def test_statistics_of_days_whose_files_expired_are_carried_over(config: Settings, postgres_url: str) -> None:
    """Retention keeps a day's aggregates after deleting its file: only SQLite has them to give."""
    from chatlog.migrating.carry import EXPIRED_DAY_TABLES

    build_store(config, count=600)
    layout = StorageLayout.from_settings(config)
    days = sorted(layout.days(Stream.LOGS))
    expired = chatlog(config, "retention", env={"CHATLOG_LOG_RETENTION_DAYS": "1"})
    assert expired.returncode == 0, expired.stderr
    gone = sorted(set(days) - set(layout.days(Stream.LOGS)))
    assert gone, "retention deleted some day files"
    statistics = [t for t in EXPIRED_DAY_TABLES[Stream.LOGS] if t in DERIVED_TABLES]
    lite = {t: table(config, t) for t in statistics}
    assert any(r for r in lite["chat_statistics_daily"] if r[1] == gone[0].isoformat())

    done = chatlog(config, "migrate-to-postgres", database_url=postgres_url)
    assert done.returncode == 0, done.stderr
    assert f"statistics of {len(gone)} days without day files carried over" in done.stdout
    pg = on_postgres(config, postgres_url)
    assert {t: table(pg, t) for t in statistics} == lite
    again = chatlog(config, "migrate-to-postgres", database_url=postgres_url)
    assert again.returncode == 0 and "days without day files" not in again.stdout
    assert {t: table(pg, t) for t in statistics} == lite
