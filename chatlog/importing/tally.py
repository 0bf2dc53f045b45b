"""What an import did: counts, the days it wrote, and every rejected line with its reason."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO

import msgspec

# Without --rejects, the summary lists this many rejected lines by number (all are counted).
LISTED_REJECTS = 20
# Reasons are grouped in the summary by their text up to here (a decode error's tail names a position).
REASON_WIDTH = 90


class RejectedLine(msgspec.Struct):
    """One line of the rejects file: where the line is and why it was not imported.

    The line itself is not copied: it holds raw user ids and unredacted text, which
    never reach the disk here. Its source and number find it in the operator's file.
    """

    source: str
    line: int
    path: str
    reason: str


@dataclass
class Tally:
    """Counts of one import, and the rejects (to a file when one is given)."""

    rejects_path: Path | None = None
    imported: int = 0
    duplicates: int = 0
    derived_ids: int = 0
    rejected_lines: int = 0
    days: Counter[date] = field(default_factory=Counter)
    compressed_days: set[date] = field(default_factory=set)
    reasons: Counter[str] = field(default_factory=Counter)
    listed: list[RejectedLine] = field(default_factory=list)
    unreadable_sources: list[str] = field(default_factory=list)
    _file: IO[bytes] | None = None

    def open(self) -> None:
        """Create (or truncate) the rejects file, private to its owner's group like day files."""
        if self.rejects_path is not None:
            fd = os.open(self.rejects_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
            # An existing file keeps its mode: narrow it, never widen it.
            os.fchmod(fd, os.fstat(fd).st_mode & 0o640)
            self._file = os.fdopen(fd, "wb")

    def reject(self, source: str, line: int, problems: list[tuple[str, str]]) -> None:
        """Record one rejected line and every reason it has (``(json path, reason)`` pairs)."""
        self.rejected_lines += 1
        for path, reason in problems:
            entry = RejectedLine(source, line, path, reason)
            self.reasons[f"{path}: {reason}"[:REASON_WIDTH]] += 1
            if self._file is not None:
                self._file.write(msgspec.json.encode(entry) + b"\n")
            elif len(self.listed) < LISTED_REJECTS:
                self.listed.append(entry)

    def unreadable(self, source: str, line: int, message: str) -> None:
        """An input that could not be opened, or not read on after ``line``."""
        self.unreadable_sources.append(message)
        self.reject(source, line, [("$", message)])

    def close(self) -> None:
        """Flush and fsync the rejects file."""
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None

    def summary(self) -> str:
        """The operator's account of the import."""
        out = []
        days = sorted(self.days)
        span = f" ({days[0]} to {days[-1]})" if days else ""
        out.append(f"imported {self.imported:,} events into {len(days)} day files{span}")
        if self.compressed_days:
            out.append(f"  {len(self.compressed_days)} of those days were already compressed: "
                       "their events were appended as a new zstd frame")
        if self.derived_ids:
            out.append(f"  {self.derived_ids:,} lines had no log_id: each got one derived from its content")
        out.append(f"skipped {self.duplicates:,} events already stored (same log_id in their day file)")
        out.append(f"rejected {self.rejected_lines:,} lines")
        for reason, count in self.reasons.most_common(10):
            out.append(f"  {count:>8,}  {reason}")
        if self.rejects_path is not None and self.rejected_lines:
            out.append(f"  every rejected line, with its number and reason: {self.rejects_path}")
        elif self.listed:
            for entry in self.listed:
                out.append(f"  {entry.source}:{entry.line}: {entry.path}: {entry.reason}")
            if self.rejected_lines > len(self.listed):
                out.append("  (the first ones; --rejects FILE lists every one)")
        return "\n".join(out)
