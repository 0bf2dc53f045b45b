"""Writing a document (a report, an FAQ export): atomically (temporary file, fsync, rename,
directory fsync) and private (0640)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

FILE_MODE = 0o640
DIR_MODE = 0o750


def write_private(path: Path, content: str) -> None:
    """Replace ``path`` with ``content``: a reader sees the old file or the whole new one, never a part."""
    path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # whatever the umask, and over a stale temporary file
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            fd = -1
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
