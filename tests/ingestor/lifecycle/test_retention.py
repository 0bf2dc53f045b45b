"""Retention: the right day files go, in CHATLOG_TIMEZONE, with the rows that point into them."""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from chatlog.cli import main as chatlog
from ingestor.lifecycle.retention import DroppedRows, apply_retention
from shared.db import connect_store_sync
from shared.layout import StorageLayout, Stream
from shared.locking import writer_lock
from shared.settings import Settings
from tests.support.drivers.storage import day_events, write_day

# 20:00 UTC on 10 March is already 05:00 on 11 March in Seoul: the two zones disagree on today.
NOW = datetime(2026, 3, 10, 20, 0, tzinfo=UTC)
DAYS = [date(2026, 2, 7), date(2026, 2, 8), date(2026, 2, 9), date(2026, 3, 1)]


def _populate(settings: Settings) -> tuple[StorageLayout, sqlite3.Connection]:
    layout = StorageLayout.from_settings(settings)
    layout.ensure_dirs()
    conn = connect_store_sync(settings)
    for day in DAYS:
        write_day(layout, Stream.LOGS, day, day_events(day, 3, seed=day.toordinal()))
        write_day(layout, Stream.CONVERSATIONS, day, day_events(day, 1, seed=day.toordinal()))
        text = day.isoformat()
        conn.execute("INSERT INTO ingest_offsets (stream, day, lines) VALUES ('data', ?, 3)", (text,))
        conn.execute("INSERT INTO quarantined_lines VALUES ('data', ?, 2, 0, 'bad', ?, '')", (text, b"{}"))
        conn.execute(
            "INSERT INTO chat_sessions VALUES (?, ?, 'hr-docs', NULL, ?, ?, 3, ?)",
            (f"s-{text}", f"c-{text}", f"{text}T00:00:00Z", f"{text}T00:00:01Z", text),
        )
        conn.execute(
            "INSERT INTO conversations VALUES (?, 'hr-docs', NULL, 't', 't', 't', 1, 0, 'low', '', ?, 0, 10)",
            (f"c-{text}", text),
        )
        if settings.database_url:
            conn.execute("INSERT INTO conversation_records VALUES (?, 'node-a', ?)", (f"c-{text}", b"{}"))
    conn.execute("INSERT INTO meta VALUES ('kept', 'yes')")
    return layout, conn


@pytest.mark.parametrize(
    ("zone", "deleted"),
    [("UTC", [date(2026, 2, 7)]), ("Asia/Seoul", [date(2026, 2, 7), date(2026, 2, 8)])],
)
def test_deletes_days_past_retention_in_the_configured_zone(
    store_config: Settings, zone: str, deleted: list[date]
) -> None:
    """30-day retention at one instant deletes one more day in Seoul than in UTC, rows included (either store)."""
    settings = dataclasses.replace(store_config, timezone=ZoneInfo(zone))
    layout, conn = _populate(settings)
    try:
        report = apply_retention(layout, settings, conn, now=NOW)
        kept = [d for d in DAYS if d not in deleted]
        for stream in (Stream.LOGS, Stream.CONVERSATIONS):  # the streams written above
            assert list(layout.days(stream)) == kept
        assert report.files == 2 * len(deleted)
        assert report.rows == DroppedRows(len(deleted), len(deleted), len(deleted))
        offsets = [row[0] for row in conn.execute("SELECT day FROM ingest_offsets ORDER BY day")]
        assert offsets == [d.isoformat() for d in kept]
        # A quarantined line's raw bytes expire with its day file.
        quarantined = [row[0] for row in conn.execute("SELECT day FROM quarantined_lines ORDER BY day")]
        assert quarantined == [d.isoformat() for d in kept]
        sessions = [row[0] for row in conn.execute("SELECT last_day FROM chat_sessions ORDER BY last_day")]
        assert sessions == [d.isoformat() for d in kept]
        assert conn.execute("SELECT value FROM meta WHERE key = 'kept'").fetchone() == ("yes",)
        # A second run finds nothing more to do.
        again = apply_retention(layout, settings, conn, now=NOW)
        assert (again.files, again.rows) == (0, DroppedRows())
        conversations = [row[0] for row in conn.execute("SELECT day FROM conversations ORDER BY day")]
        assert conversations == [d.isoformat() for d in kept]
        if settings.database_url:  # the records went with their index rows
            records = [row[0] for row in conn.execute("SELECT conversation_id FROM conversation_records ORDER BY 1")]
            assert records == [f"c-{d.isoformat()}" for d in kept]
    finally:
        conn.close()


def test_each_stream_has_its_own_retention(tmp_path: Path) -> None:
    """Conversation files follow CHATLOG_CONVERSATION_RETENTION_DAYS, logs their own setting."""
    settings = Settings.for_data_dir(tmp_path / "d", log_retention_days=60, conversation_retention_days=20)
    layout, conn = _populate(settings)
    try:
        apply_retention(layout, settings, conn, now=NOW)
    finally:
        conn.close()
    assert list(layout.days(Stream.LOGS)) == DAYS
    assert list(layout.days(Stream.CONVERSATIONS)) == [date(2026, 3, 1)]


def test_compressed_days_and_leftover_temporaries_go_too(tmp_path: Path) -> None:
    """Every file of an expired day goes: .jsonl.zst, a leftover .jsonl and a stale .tmp."""
    settings = Settings.for_data_dir(tmp_path / "d")
    layout, conn = _populate(settings)
    directory = layout.stream_dir(Stream.LOGS)
    (directory / "2026-02-07.jsonl.zst").write_bytes(b"")
    (directory / "2026-02-07.jsonl.zst.tmp").write_bytes(b"partial")
    try:
        report = apply_retention(layout, settings, conn, now=NOW)
    finally:
        conn.close()
    assert not list(directory.glob("2026-02-07*"))
    assert report.files == 4


def test_quarantined_originals_of_expired_days_go_too(tmp_path: Path) -> None:
    """A damaged original kept in quarantine is deleted with its day, and kept while the day is."""
    settings = Settings.for_data_dir(tmp_path / "d")
    layout, conn = _populate(settings)
    kept = layout.quarantine_dir / Stream.LOGS.value
    kept.mkdir(parents=True)
    (kept / "2026-02-07.jsonl.zst.20260301T000000Z").write_bytes(b"damaged")
    (kept / "2026-03-01.jsonl.zst.20260302T000000Z").write_bytes(b"damaged")
    try:
        apply_retention(layout, settings, conn, now=NOW)
    finally:
        conn.close()
    assert [p.name for p in kept.iterdir()] == ["2026-03-01.jsonl.zst.20260302T000000Z"]


def test_cli_retention_refuses_while_the_ingestor_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`chatlog retention` exits 1 with a clear message while another writer holds the data dir."""
    settings = Settings.for_data_dir(tmp_path / "d")
    monkeypatch.setenv("CHATLOG_DATA_DIR", str(settings.data_dir))
    layout = StorageLayout.from_settings(settings)
    with writer_lock(layout):
        assert chatlog(["retention"]) == 1
    assert "stop the ingestor first" in capsys.readouterr().err
    assert chatlog(["retention"]) == 0
    assert "deleted 0 files" in capsys.readouterr().out
    assert settings.db_path.exists()
