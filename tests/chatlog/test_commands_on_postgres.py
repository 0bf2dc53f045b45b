"""The operator commands on a node whose derived state is in PostgreSQL (after ``migrate-to-postgres``)."""

from __future__ import annotations

import contextlib
import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from ingestor.dayfiles import DayFileWriter
from ingestor.records import RecordBuilder
from shared.layout import StorageLayout, Stream
from shared.locking import writer_lock
from shared.postgres.connection import PostgresConnection
from shared.privacy import UserHasher
from shared.settings import Settings
from shared.wire import LogEventIn
from tests.support.events import make_event
from tests.support.migration import VICTIM, build_store, chatlog
from tests.support.postgres import PostgresServer, password_user
from tests.support.stores import on_postgres, rows

LOGS = Stream.LOGS.value


@pytest.fixture
def migrated(config: Settings, postgres_url: str) -> Settings:
    """A store of a few hundred events, migrated to PostgreSQL as node-a: the node's settings."""
    build_store(config, count=300)
    done = chatlog(config, "migrate-to-postgres", database_url=postgres_url)
    assert done.returncode == 0, done.stderr
    return on_postgres(config, postgres_url)


def append_events(config: Settings, count: int) -> None:
    """Lines the ingestor would have written while the derived state was not following."""
    layout = StorageLayout.from_settings(config)
    builder = RecordBuilder(layout, UserHasher(config.user_hash_secret.encode()), config.log_retention_days)
    files = DayFileWriter(layout)
    try:
        records = builder.build([msgspec.convert(make_event(), LogEventIn) for _ in range(count)])
        files.append({(Stream.LOGS, records[0].day): [r.line for r in records]})
    finally:
        files.close()


def test_verify_checks_this_nodes_files_against_its_offsets_in_postgresql(migrated: Settings) -> None:
    url = migrated.database_url
    ok = chatlog(migrated, "verify", database_url=url)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "database ok" in ok.stdout and "integrity" not in ok.stdout + ok.stderr

    append_events(migrated, 3)
    behind = chatlog(migrated, "verify", database_url=url)
    assert behind.returncode == 0 and "3 lines not yet applied to the database" in behind.stdout

    today = StorageLayout.from_settings(migrated).today().isoformat()
    with contextlib.closing(PostgresConnection(url, node="node-a")) as conn:
        conn.execute("UPDATE ingest_offsets SET lines = lines + 10 WHERE stream = ? AND day = ?", (LOGS, today))
    ahead = chatlog(migrated, "verify", "--json", database_url=url)
    assert ahead.returncode == 1
    problems = json.loads(ahead.stdout)["database"]["problems"]
    assert any(f"{LOGS}/{today}: the database applied" in p for p in problems), problems

    # Another node's offsets are not this node's: a node PostgreSQL has never seen has no database yet.
    other = chatlog(migrated, "verify", database_url=url, node="node-b")
    assert "no database yet" in other.stdout


def test_rebuild_stats_refuses_on_postgresql_and_changes_nothing(migrated: Settings) -> None:
    before = rows(migrated, "SELECT * FROM chat_statistics_daily ORDER BY scope, date")
    refused = chatlog(migrated, "rebuild-stats", "--from", "2020-01-01", "--to", "2030-01-01",
                      database_url=migrated.database_url)
    assert refused.returncode == 2
    assert "not available on PostgreSQL" in refused.stderr and "migrate-to-postgres" in refused.stderr
    assert rows(migrated, "SELECT * FROM chat_statistics_daily ORDER BY scope, date") == before


def test_faq_export_and_report_read_postgresql_as_they_read_sqlite(migrated: Settings) -> None:
    sqlite = migrated.__class__(**{**migrated.__dict__, "database_url": ""})
    for args in (("faq", "export", "--format", "json"), ("report", "--format", "json")):
        on_pg = chatlog(migrated, *args, database_url=migrated.database_url)
        assert on_pg.returncode == 0, on_pg.stderr
        on_lite = chatlog(sqlite, *args)
        assert on_lite.returncode == 0, on_lite.stderr
        if args[0] == "faq":
            assert json.loads(on_pg.stdout)["items"] and json.loads(on_pg.stdout) == json.loads(on_lite.stdout)
        else:
            assert json.loads(on_pg.stdout)["summary"] == json.loads(on_lite.stdout)["summary"]
    # The scheduled report reads the same store (the last complete week: the store's days or none).
    from insights.report.schedule import write_due

    on_pg = write_due(migrated)
    assert on_pg != "no database yet"
    for written in (migrated.data_dir / "reports").glob("*.html"):
        written.unlink()
    assert write_due(sqlite) == on_pg


def test_erase_retention_compress_and_import_write_postgresql(migrated: Settings, tmp_path: Path) -> None:
    url = migrated.database_url
    victim = UserHasher(migrated.user_hash_secret.encode()).hash(VICTIM)
    records = "SELECT count(*) FROM conversation_records WHERE position(? in record) > 0"
    assert rows(migrated, "SELECT count(*) FROM chat_sessions WHERE user_hash = ?", (victim,)) == [(1,)]
    assert rows(migrated, records, (victim.encode(),)) == [(1,)]
    erased = chatlog(migrated, "erase-user", "--user-id", VICTIM, database_url=url)
    assert erased.returncode == 0, erased.stderr
    assert rows(migrated, "SELECT count(*) FROM chat_sessions WHERE user_hash = ?", (victim,)) == [(0,)]
    assert rows(migrated, records, (victim.encode(),)) == [(0,)]

    source = tmp_path / "old.jsonl"
    at = datetime.now(UTC) - timedelta(hours=1)
    source.write_text("".join(json.dumps(make_event(created_at=at)) + "\n" for _ in range(5)))
    applied = "SELECT coalesce(sum(lines), 0) FROM ingest_offsets WHERE stream = ?"
    before = rows(migrated, applied, (LOGS,))[0][0]
    imported = chatlog(migrated, "import", str(source), database_url=url)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert rows(migrated, applied, (LOGS,))[0][0] == before + 5

    compressed = chatlog(migrated, "compress", database_url=url, env={"CHATLOG_COMPRESS_AFTER_DAYS": "1"})
    assert compressed.returncode == 0, compressed.stderr
    assert "compressed" in compressed.stdout
    layout = StorageLayout.from_settings(migrated)
    days = sorted(layout.days(Stream.LOGS))
    assert len(days) >= 3
    expired = chatlog(migrated, "retention", database_url=url, env={"CHATLOG_LOG_RETENTION_DAYS": "1"})
    assert expired.returncode == 0, expired.stderr
    left = sorted(layout.days(Stream.LOGS))
    assert len(left) < len(days)
    assert [r[0] for r in rows(migrated, "SELECT day FROM ingest_offsets WHERE stream = ? ORDER BY day", (LOGS,))] \
        == [d.isoformat() for d in left]
    verified = chatlog(migrated, "verify", database_url=url)
    assert verified.returncode == 0 and "database ok" in verified.stdout, verified.stdout


def test_unreachable_server_and_wrong_password_are_clear_and_never_show_the_password(
    config: Settings, postgres_url: str, postgres_server: PostgresServer,
) -> None:
    build_store(config, count=50)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    unreachable = chatlog(config, "migrate-to-postgres", "--database-url",
                          f"postgresql://chatlog:hunter2secret@127.0.0.1:{closed_port}/x")
    assert unreachable.returncode == 1
    assert f"cannot use PostgreSQL at postgresql://chatlog@127.0.0.1:{closed_port}/x" in unreachable.stderr
    assert "hunter2secret" not in unreachable.stdout + unreachable.stderr

    right = password_user(postgres_server, postgres_url, "migrator", "right-password-123")
    wrong = right.replace("right-password-123", "wrong-password-456")
    refused = chatlog(config, "migrate-to-postgres", "--database-url", wrong)
    assert refused.returncode == 1
    assert "password authentication failed" in refused.stderr
    assert "wrong-password-456" not in refused.stdout + refused.stderr
    done = chatlog(config, "migrate-to-postgres", "--database-url", right)
    assert done.returncode == 0, done.stderr
    assert "right-password-123" not in done.stdout + done.stderr


def test_a_running_ingestor_is_never_migrated_beside(config: Settings, postgres_url: str) -> None:
    build_store(config, count=50)
    with writer_lock(StorageLayout.from_settings(config)):
        busy = chatlog(config, "migrate-to-postgres", database_url=postgres_url)
    assert busy.returncode == 1 and "stop the ingestor first" in busy.stderr
    assert rows(on_postgres(config, postgres_url), "SELECT count(*) FROM chat_sessions") == []
