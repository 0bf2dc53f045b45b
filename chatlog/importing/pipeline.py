"""The import loop: read every input line, validate it, skip what is stored, store the rest in batches.

Where the batches go is the ``Store``'s business: the day files themselves under the
writer lock (``chatlog.importing.offline``), or the running ingestor's Unix socket
(``chatlog.importing.online``). Either way a batch counts as imported only once the
store says it is durable (fsynced), so an import killed at any moment has lost
nothing it reported, and running it again skips what is already there and stores
the rest.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from tqdm import tqdm

from chatlog.importing.existing import StoredIds
from chatlog.importing.guide import Accepted, GuideLineReader
from chatlog.importing.sources import OpenSource, Source, SourceError
from chatlog.importing.tally import Tally
from ingestor.decoding import as_utc
from shared.layout import StorageLayout, Stream
from shared.wire import LogEventIn

# The progress bar moves (and the accepted range is refreshed) every this many lines.
PROGRESS_LINES = 2000


@dataclass(frozen=True)
class Pending:
    """A valid event waiting for its batch, with where it came from."""

    source: str
    line: int
    event: LogEventIn
    day: date


class Store(Protocol):
    """Stores batches durably; answers the items it refused (with their problems)."""

    batch_events: int

    def store(self, batch: Sequence[Pending]) -> list[tuple[Pending, list[tuple[str, str]]]]: ...


class Importer:
    """Runs inputs through validation, the stored-id check and a ``Store``."""

    def __init__(self, layout: StorageLayout, reader: GuideLineReader, store: Store, tally: Tally,
                 progress: bool | None = None) -> None:
        self._layout = layout
        self._reader = reader
        self._store = store
        self._tally = tally
        self._stored = StoredIds(layout)
        self._pending: list[Pending] = []
        self._pending_ids: set[str] = set()
        self._progress = sys.stderr.isatty() if progress is None else progress
        self._bar: tqdm[None] | None = None

    def run(self, sources: Sequence[Source]) -> Tally:
        """Import every source in order; never stops on a bad line."""
        sizes = [s.size for s in sources]
        total = None if any(size is None for size in sizes) else sum(s or 0 for s in sizes)
        self._bar = tqdm(total=total, unit="B", unit_scale=True, desc="import", disable=not self._progress,
                         file=sys.stderr, dynamic_ncols=True)
        try:
            for source in sources:
                self._run_source(source)
            self._flush()
        finally:
            self._bar.close()
        return self._tally

    def _run_source(self, source: Source) -> None:
        try:
            opened = OpenSource(source)
        except SourceError as exc:
            self._tally.unreadable(source.name, 0, str(exc))
            return
        assert self._bar is not None
        reported = 0
        number = 0
        try:
            for number, line in opened.lines():
                if line.strip():
                    self._line(source.name, number, line)
                if number % PROGRESS_LINES == 0:
                    self._bar.update(opened.consumed - reported)
                    reported = opened.consumed
                    self._reader.refresh_bounds()
        except SourceError as exc:
            self._tally.unreadable(source.name, number + 1, str(exc))
        finally:
            self._bar.update(opened.consumed - reported)
            opened.close()

    def _line(self, source: str, number: int, line: bytes) -> None:
        result = self._reader.read(line)
        if not isinstance(result, Accepted):
            self._tally.reject(source, number, [(p.path, p.reason) for p in result])
            return
        event = result.event
        assert event.created_at is not None and event.log_id is not None  # the reader fills both in
        day = self._layout.day_of(as_utc(event.created_at))
        if event.log_id in self._pending_ids or self._stored.contains(day, event.log_id):
            self._tally.duplicates += 1
            return
        if result.derived_id:
            self._tally.derived_ids += 1
        self._pending.append(Pending(source, number, event, day))
        self._pending_ids.add(event.log_id)
        if len(self._pending) >= self._store.batch_events:
            self._flush()

    def _flush(self) -> None:
        batch, self._pending, self._pending_ids = self._pending, [], set()
        if not batch:
            return
        refused = self._store.store(batch)
        gone = {id(p) for p, _ in refused}
        for pending, problems in refused:
            self._tally.reject(pending.source, pending.line, problems)
        by_day: dict[date, list[str]] = {}
        for pending in batch:
            if id(pending) not in gone:
                assert pending.event.log_id is not None
                by_day.setdefault(pending.day, []).append(pending.event.log_id)
        tally = self._tally
        for day, ids in by_day.items():
            self._stored.add(day, ids)
            tally.days[day] += len(ids)
            tally.imported += len(ids)
            files = self._layout.day_files(Stream.LOGS, day)
            if files.zst is not None or files.gz is not None:
                tally.compressed_days.add(day)
        if self._bar is not None:
            self._bar.set_postfix(imported=f"{tally.imported:,}", skipped=f"{tally.duplicates:,}",
                                  rejected=f"{tally.rejected_lines:,}", refresh=False)
