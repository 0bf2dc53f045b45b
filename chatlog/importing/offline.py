"""Importing with the ingestor stopped: straight into the day files, under the data directory's writer lock.

The lines are built as the ingest path builds them (``ingestor.records.RecordBuilder``:
user id hashed with the store's key, content redacted) and appended by the
ingest path's ``DayFileWriter`` (write, fsync, cut back on any failure; a compressed
day gets a new zstd frame). Afterwards the derived state catches up exactly as an
ingestor start would (``ingestor.derived.state.DerivedState``: sessions, statistics,
quality, conversations), under the derived lock.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from chatlog.importing.pipeline import Pending
from ingestor.dayfiles import DayFileWriter, DayKey
from ingestor.records import RecordBuilder
from ingestor.redaction import content_redactor
from shared.db import connect_store_sync
from shared.errors import ValidationFailed
from shared.layout import StorageLayout, Stream
from shared.privacy import UserHasher, store_key_for_start
from shared.settings import Settings

# Events per append (one write and one fsync per day file, one zstd frame per compressed day).
OFFLINE_BATCH_EVENTS = 5000


class OfflineStore:
    """Appends batches to the day files; the caller holds the writer lock."""

    def __init__(self, settings: Settings, layout: StorageLayout, batch_events: int = OFFLINE_BATCH_EVENTS) -> None:
        layout.ensure_dirs()
        with contextlib.closing(connect_store_sync(settings)) as conn:
            # As the ingestor's start: an import into a new data directory makes (and records) its key.
            key = store_key_for_start(settings, conn)
        self._builder = RecordBuilder(layout, UserHasher(key), settings.log_retention_days,
                                      redact=content_redactor(settings))
        self._files = DayFileWriter(layout, settings.zstd_level)
        self.batch_events = batch_events

    def store(self, batch: Sequence[Pending]) -> list[tuple[Pending, list[tuple[str, str]]]]:
        """Build and append ``batch``, fsynced; the items out of range by now are refused, not stored."""
        items = list(batch)
        refused: list[tuple[Pending, list[tuple[str, str]]]] = []
        while True:
            try:
                records = self._builder.build([p.event for p in items])
                break
            except ValidationFailed as exc:
                # Validated moments ago; only a day boundary passing since can make one out of range.
                bad: dict[int, list[tuple[str, str]]] = {}
                for error in exc.extra["errors"]:
                    bad.setdefault(error["index"], []).append((error["path"], error["message"]))
                refused.extend((items[i], problems) for i, problems in bad.items())
                items = [p for i, p in enumerate(items) if i not in bad]
        groups: dict[DayKey, list[bytes]] = {}
        for record in records:
            groups.setdefault((Stream.LOGS, record.day), []).append(record.line)
        if groups:
            self._files.append(groups)
            # Months of days: keep only the files the next batches are likely to touch.
            self._files.close_all_but(set(groups))
        return refused

    def close(self) -> None:
        """Close every day file."""
        self._files.close()
