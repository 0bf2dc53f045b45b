"""The log_ids already stored in a day's file: what makes a re-run of any import import nothing twice.

The ingestor's own idempotency is a window over recent ids (and, after a restart,
yesterday's and today's files); an import writes to days long past that window, so
it checks each target day's file itself, plain or compressed, before storing there.
Ids are kept as 64-bit hashes (as the ingestor's window keeps them) for a few days at
a time: guide files hold one day each, so an import touches its days in order.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from datetime import date

import msgspec

from shared.layout import StorageLayout, Stream
from shared.reader import iter_lines

# Days whose ids are held at once; one more is read again from its file when needed.
CACHED_DAYS = 8


class _LogId(msgspec.Struct):
    log_id: str


class StoredIds:
    """Which log_ids each day's file already holds (and what this import added since)."""

    def __init__(self, layout: StorageLayout, cached_days: int = CACHED_DAYS) -> None:
        self._layout = layout
        self._cached_days = cached_days
        self._days: OrderedDict[date, set[int]] = OrderedDict()
        self._decoder = msgspec.json.Decoder(_LogId)
        self.days_read = 0

    def _ids(self, day: date) -> set[int]:
        ids = self._days.get(day)
        if ids is not None:
            self._days.move_to_end(day)
            return ids
        ids = set()
        path = self._layout.day_files(Stream.LOGS, day).readable
        if path is not None:
            decode = self._decoder.decode
            for line in iter_lines(path):
                try:
                    ids.add(hash(decode(line).log_id))
                except (msgspec.DecodeError, msgspec.ValidationError):
                    continue  # not a record: the derived state quarantines it; it holds no id
            self.days_read += 1
        self._days[day] = ids
        while len(self._days) > self._cached_days:
            self._days.popitem(last=False)
        return ids

    def contains(self, day: date, log_id: str) -> bool:
        """Whether ``day``'s file (or this import, earlier) already stored ``log_id``."""
        return hash(log_id) in self._ids(day)

    def add(self, day: date, log_ids: Iterable[str]) -> None:
        """Remember ids just stored in ``day``'s file."""
        self._ids(day).update(hash(i) for i in log_ids)

    def forget(self) -> None:
        """Read every day again from its file next time (after a failure left the files in doubt)."""
        self._days.clear()
