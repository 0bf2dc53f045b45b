"""Erasing one user everywhere: every day file (plain and compressed) and SQLite.

Each affected day file is rewritten without the user's lines into a temporary file in
the same folder, fsynced, renamed over the original and the folder fsynced, so a
crash leaves either the old or the new file, never a mix. Aggregated statistics keep
their counts (their top-query texts are not rewritten: a known gap).
"""

from __future__ import annotations

import gzip
import os
import sqlite3
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import msgspec
import zstandard

from ingestor.dayfiles import fsync_dir
from shared.layout import StorageLayout, Stream
from shared.reader import iter_lines


class _UserOf(msgspec.Struct):
    user_hash: str | None = None


@dataclass
class ErasureReport:
    """What an erasure removed."""

    lines: dict[str, int] = field(default_factory=dict)  # per stream
    files_rewritten: int = 0
    sessions: int = 0
    conversations: int = 0

    def summary(self) -> str:
        """One line for the operator."""
        parts = ", ".join(f"{n} {stream} lines" for stream, n in self.lines.items())
        return (
            f"removed {parts or 'no lines'} in {self.files_rewritten} files, "
            f"{self.sessions} session rows, {self.conversations} conversation index rows"
        )


def erase_user(layout: StorageLayout, conn: sqlite3.Connection, user_hash: str, zstd_level: int = 6) -> ErasureReport:
    """Remove every line and row of one user; the caller holds the writer lock."""
    report = ErasureReport()
    applied = {
        date.fromisoformat(day): lines
        for day, lines in conn.execute(
            "SELECT day, lines FROM ingest_offsets WHERE stream = ?", (Stream.LOGS.value,)
        )
    }
    decoder = msgspec.json.Decoder(_UserOf)
    offset_changes: list[tuple[int, str]] = []
    for stream in Stream:
        removed_total = 0
        for day, files in layout.days(stream).items():
            path = files.readable
            if path is None:
                continue
            kept: list[bytes] = []
            removed_before_offset = 0
            removed = 0
            for number, line in enumerate(iter_lines(path)):
                try:
                    owner = decoder.decode(line).user_hash
                except (msgspec.DecodeError, msgspec.ValidationError):
                    owner = None
                if owner == user_hash:
                    removed += 1
                    if number < applied.get(day, 0):
                        removed_before_offset += 1
                else:
                    kept.append(line)
            if not removed:
                continue
            _rewrite(path, kept, zstd_level)
            if files.plain is not None and files.plain != path:
                files.plain.unlink(missing_ok=True)  # a leftover beside the compressed file
            report.files_rewritten += 1
            removed_total += removed
            if stream is Stream.LOGS and removed_before_offset:
                offset_changes.append((removed_before_offset, day.isoformat()))
        report.lines[stream.value] = removed_total
    with conn:
        conn.executemany(
            "UPDATE ingest_offsets SET lines = lines - ? WHERE stream = 'data' AND day = ?", offset_changes
        )
        report.sessions = conn.execute("DELETE FROM chat_sessions WHERE user_hash = ?", (user_hash,)).rowcount
        report.conversations = conn.execute(
            "DELETE FROM conversations WHERE user_hash = ?", (user_hash,)
        ).rowcount
    return report


def _rewrite(path: Path, lines: list[bytes], zstd_level: int) -> None:
    data = b"".join(line + b"\n" for line in lines)
    if path.name.endswith(".zst"):
        data = zstandard.ZstdCompressor(level=zstd_level).compress(data) if data else b""
    elif path.name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    tmp = path.with_name(path.name + ".erase.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)
