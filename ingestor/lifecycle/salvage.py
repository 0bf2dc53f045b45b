"""A damaged compressed day file: moved aside whole, its readable frames left in place.

Repair never cuts damage out of a file (``ingestor.dayfiles`` only cuts a torn tail).
A ``.zst`` or ``.gz`` day with damaged bytes anywhere else is salvaged, each step
crash-safe and named for the tests' crash hook:

1. Under the file's append lock (appends wait, and notice the replacement by inode),
   link the original into ``quarantine/<stream>/`` (copy it across file systems) and
   fsync that folder (``quarantined``): from here the original is kept byte for byte.
2. Copy exactly its valid frames, byte for byte, into ``<day file>.salvage.tmp``, fsync
   it (``tmp-synced``) and check that it reads back whole to the same content.
3. Rename it over the day file (``renamed``) and fsync the folder (``done``).

A crash before the rename leaves the damaged original in place: start-up salvages it
again and reuses its quarantined copy (a ``.tmp`` left behind is removed at start-up).
After it, the day file holds exactly what any reader could read of the original.
"""

from __future__ import annotations

import contextlib
import fcntl
import filecmp
import logging
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ingestor.dayfiles import fsync_dir, write_all
from shared.compressed import CHUNK, FrameFormat, SegmentState, format_of, walk
from shared.layout import StorageLayout, Stream
from shared.quarantine import quarantine_dir, quarantine_path, quarantined

log = logging.getLogger("chatlog.ingestor.lifecycle.salvage")

STEPS = ("quarantined", "tmp-synced", "renamed", "done")
StepHook = Callable[[str], None]


@dataclass(frozen=True)
class Salvage:
    """One damaged day file salvaged: where the original went and what stayed readable."""

    day_file: Path
    quarantined: Path
    frames_kept: int
    lines_kept: int
    damaged_runs: int
    unreadable_bytes: int
    bytes_before: int

    def describe(self) -> str:
        """One line for the operator."""
        return (
            f"{self.day_file} is damaged: {self.unreadable_bytes} of its {self.bytes_before} bytes "
            f"({self.damaged_runs} damaged run(s)) are unreadable; the original is kept whole at "
            f"{self.quarantined}; the day file now holds its {self.frames_kept} readable frame(s), "
            f"{self.lines_kept} lines"
        )


@dataclass
class _Readable:
    frames: list[tuple[int, int]]
    lines: int = 0
    crc: int = 0
    damaged_runs: int = 0
    unreadable: int = 0


def _readable(fd: int, fmt: FrameFormat) -> _Readable:
    found = _Readable(frames=[])
    with open(os.dup(fd), "rb") as f:
        for segment in walk(f, fmt):
            if segment.state is SegmentState.OK:
                found.frames.append((segment.start, segment.end))
                found.lines += sum(1 for line in segment.content.split(b"\n")[:-1] if line)
                found.crc = zlib.crc32(segment.content, found.crc)
            else:
                found.unreadable += segment.end - segment.start
                found.damaged_runs += segment.state is SegmentState.DAMAGED
    return found


def _no_step(_: str) -> None:
    return None


def salvage_damaged(
    layout: StorageLayout, stream: Stream, path: Path, steps: StepHook | None = None
) -> Salvage | None:
    """Salvage ``path`` if it has damaged bytes (see the module docstring); None if it has none."""
    fmt = format_of(path.name)
    if fmt is None:
        return None
    step = steps or _no_step
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if (os.fstat(fd).st_ino, os.fstat(fd).st_dev) != (path.stat().st_ino, path.stat().st_dev):
            return None  # replaced since it was opened: the new file is looked at next time
        found = _readable(fd, fmt)
        if not found.damaged_runs:
            return None
        size = os.fstat(fd).st_size
        kept, linked = _quarantine(layout, stream, path, fd)
        step("quarantined")
        tmp = path.with_name(path.name + ".salvage.tmp")
        try:
            _write_frames(fd, found.frames, tmp)
            step("tmp-synced")
            _check_copy(tmp, fmt, found)
            os.rename(tmp, path)
        except OSError:
            if linked:
                # A link to the file still in use would change with its next append: the
                # next try links afresh.
                with contextlib.suppress(OSError):
                    kept.unlink()
            raise
        step("renamed")
        fsync_dir(path.parent)
        step("done")
    finally:
        os.close(fd)
    salvage = Salvage(path, kept, len(found.frames), found.lines, found.damaged_runs, found.unreadable, size)
    log.error("DAMAGED day file salvaged: %s", salvage.describe())
    return salvage


def _quarantine(layout: StorageLayout, stream: Stream, path: Path, fd: int) -> tuple[Path, bool]:
    """The original, kept byte for byte in quarantine (reusing a copy an earlier try made),
    and whether it is a hard link made now."""
    directory = quarantine_dir(layout, stream)
    directory.mkdir(parents=True, exist_ok=True, mode=0o750)
    fsync_dir(layout.quarantine_dir)
    fsync_dir(layout.root)
    for earlier in quarantined(layout, stream):
        if earlier.day_file != path:
            continue
        if os.path.samefile(earlier.path, path) or filecmp.cmp(earlier.path, path, shallow=False):
            return earlier.path, False
    target = quarantine_path(layout, stream, path)
    linked = True
    try:
        os.link(path, target)
    except OSError:
        linked = False
        # Another file system (or no hard links): a copy, written and synced before it is named.
        tmp = target.with_name(target.name + ".tmp")
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            offset = 0
            while chunk := os.pread(fd, CHUNK, offset):
                write_all(out, chunk)
                offset += len(chunk)
            os.fsync(out)
        finally:
            os.close(out)
        os.rename(tmp, target)
    fsync_dir(directory)
    return target, linked


def _write_frames(fd: int, frames: list[tuple[int, int]], tmp: Path) -> None:
    out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        for start, end in frames:
            offset = start
            while offset < end:
                chunk = os.pread(fd, min(CHUNK, end - offset), offset)
                if not chunk:
                    raise OSError(f"{tmp.name}: the original shrank while it was salvaged")
                write_all(out, chunk)
                offset += len(chunk)
        os.fsync(out)
    except BaseException:
        os.close(out)
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    os.close(out)


def _check_copy(tmp: Path, fmt: FrameFormat, expected: _Readable) -> None:
    """The salvaged copy must read whole, to exactly the readable content of the original."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        got = _readable(fd, fmt)
    finally:
        os.close(fd)
    if got.unreadable or (len(got.frames), got.lines, got.crc) != (
        len(expected.frames), expected.lines, expected.crc
    ):
        tmp.unlink(missing_ok=True)
        raise OSError(f"{tmp.name} does not read back to the readable frames of the original")
