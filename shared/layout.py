"""The storage layout under CHATLOG_DATA_DIR, with day boundaries in CHATLOG_TIMEZONE.

::

    data/YYYY-MM-DD.jsonl[.zst|.gz]           message logs of that day
    conversations/YYYY-MM-DD.jsonl[.zst|.gz]  conversation records closed that day
    feedback/YYYY-MM-DD.jsonl[.zst|.gz]       feedback on answers, by its created_at day
    chatlog.sqlite3                           metadata, statistics, indexes
    backups/                                  online SQLite backups
    quarantine/<stream>/                      damaged day files, kept whole (never read)
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from zoneinfo import ZoneInfo

from shared.settings import Settings

# The data holds summaries and questions: folders are the service's group's at most.
DIR_MODE = 0o750

SUFFIXES = (".jsonl.zst", ".jsonl.gz", ".jsonl")
_DAY_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})(\.jsonl(?:\.zst|\.gz)?)$")


class Stream(StrEnum):
    """The kinds of day files."""

    LOGS = "data"
    CONVERSATIONS = "conversations"
    # Users' verdicts on answers (``POST /v1/feedback``): kept, compressed and expired like the logs.
    FEEDBACK = "feedback"


@dataclass(frozen=True)
class DayFiles:
    """The files that exist for one day of one stream."""

    day: date
    plain: Path | None = None
    zst: Path | None = None
    gz: Path | None = None

    @property
    def readable(self) -> Path | None:
        """The one file readers take for this day.

        A ``.zst`` is only ever renamed into place complete, so when it exists a
        ``.jsonl`` beside it is the leftover of an interrupted compression and is
        ignored: the day is read exactly once.
        """
        return self.zst or self.gz or self.plain

    @property
    def all(self) -> list[Path]:
        """Every file of the day, readable or leftover."""
        return [p for p in (self.plain, self.zst, self.gz) if p is not None]


@dataclass(frozen=True)
class StorageLayout:
    """Paths of everything chatlog stores, and the mapping of instants to days."""

    root: Path
    db_path: Path
    tz: ZoneInfo

    @classmethod
    def from_settings(cls, settings: Settings) -> StorageLayout:
        """The layout of the configured data directory."""
        return cls(root=settings.data_dir, db_path=settings.db_path, tz=settings.timezone)

    def stream_dir(self, stream: Stream) -> Path:
        """The folder of one stream's day files."""
        return self.root / stream.value

    @property
    def backups_dir(self) -> Path:
        """Where online SQLite backups go."""
        return self.root / "backups"

    @property
    def quarantine_dir(self) -> Path:
        """Where damaged day files are moved aside whole (``shared.quarantine``)."""
        return self.root / "quarantine"

    @property
    def secret_path(self) -> Path:
        """Where the generated user-hash key is kept."""
        return self.root / ".user_hash_secret"

    @property
    def writer_lock_path(self) -> Path:
        """The lock file held by the one process allowed to write day files."""
        return self.root / ".writer.lock"

    @property
    def derived_lock_path(self) -> Path:
        """The lock file held by the one derived-state process following this data directory."""
        return self.root / ".derived.lock"

    def ensure_dirs(self) -> None:
        """Create the data folders, 0750 (the writer's job; readers never create anything)."""
        for path in (self.root, *(self.stream_dir(s) for s in Stream), self.backups_dir):
            make_private_dirs(path)
        make_private_dirs(self.db_path.parent)

    def day_of(self, instant: datetime) -> date:
        """The day (in CHATLOG_TIMEZONE) an instant belongs to; naive means UTC."""
        if instant.tzinfo is None:
            instant = instant.replace(tzinfo=UTC)
        if self._utc and instant.tzinfo is UTC:
            return instant.date()
        return instant.astimezone(self.tz).date()

    @property
    def _utc(self) -> bool:
        return self.tz.key == "UTC"

    def day_start(self, day: date) -> datetime:
        """The first instant of a day in CHATLOG_TIMEZONE, as an aware datetime."""
        return datetime(day.year, day.month, day.day, tzinfo=self.tz)

    def today(self) -> date:
        """Today in CHATLOG_TIMEZONE."""
        return datetime.now(self.tz).date()

    def day_path(self, stream: Stream, day: date, suffix: str = ".jsonl") -> Path:
        """The path of one day's file with the given suffix."""
        return self.stream_dir(stream) / f"{day.isoformat()}{suffix}"

    def days(self, stream: Stream) -> dict[date, DayFiles]:
        """Every day that has files in a stream, with its files."""
        found: dict[date, dict[str, Path]] = {}
        directory = self.stream_dir(stream)
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return {}
        for name in names:
            match = _DAY_FILE.match(name)
            if not match:
                continue
            try:
                day = date.fromisoformat(match.group(1))
            except ValueError:
                continue
            found.setdefault(day, {})[match.group(2)] = directory / name
        return {
            day: DayFiles(
                day=day,
                plain=files.get(".jsonl"),
                zst=files.get(".jsonl.zst"),
                gz=files.get(".jsonl.gz"),
            )
            for day, files in sorted(found.items())
        }

    def day_files(self, stream: Stream, day: date) -> DayFiles:
        """The files of one day (possibly none)."""
        files = {
            suffix: self.day_path(stream, day, suffix)
            for suffix in SUFFIXES
            if self.day_path(stream, day, suffix).exists()
        }
        return DayFiles(
            day=day, plain=files.get(".jsonl"), zst=files.get(".jsonl.zst"), gz=files.get(".jsonl.gz")
        )

    def readable_between(self, stream: Stream, first: date, last: date) -> list[Path]:
        """The one readable file of each day in ``[first, last]`` that has data, oldest first."""
        paths = []
        for day, files in self.days(stream).items():
            if first <= day <= last and files.readable is not None:
                paths.append(files.readable)
        return paths


def make_private_dirs(path: Path) -> None:
    """``mkdir -p`` where every folder created is DIR_MODE (``Path.mkdir`` leaves parents 0777 & ~umask).

    Existing folders keep their mode: the operator may have chosen a stricter or shared one.
    """
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        # The umask can only narrow DIR_MODE further, never widen it.
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=DIR_MODE)


def date_range(first: date, last: date) -> list[date]:
    """Every day from ``first`` to ``last`` inclusive."""
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]
