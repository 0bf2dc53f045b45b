"""The local spool: NDJSON files that keep what the daemon could not take yet.

``<spool>`` collects events, one JSON object per line. To replay, it is renamed to
``<spool>.replaying`` (so new events go to a fresh ``<spool>``), read in batches, and
deleted only after every line of it was acknowledged. ``<spool>.rejected`` keeps the
events the daemon refused for good, each with the reason. All three are mode 0600:
they hold raw user ids and message text.

A spool belongs to one process at a time (``<spool>.lock``, flock): a second client
on the same path, e.g. another worker of the same server, takes the first free slot
of ``name-1.ndjson``, ``name-2.ndjson``... so slots are reused across restarts and
whatever a previous worker left in a slot is replayed by the next one to take it.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path


def utc_now() -> str:
    """Now in UTC as RFC 3339."""
    return datetime.now(UTC).isoformat()


def _safe_repr(value: object) -> str:
    try:
        return repr(value)[:4096]
    except Exception:
        return f"<unrepresentable {type(value).__name__}>"


def unencodable_entry(event: object, exc: BaseException) -> bytes:
    """A ``.rejected`` line for an event that could not even be encoded."""
    entry = {"rejected_at": utc_now(), "status": 0, "errors": [{"message": f"not encodable: {exc}"}],
             "repr": _safe_repr(event)}
    return json.dumps(entry, ensure_ascii=False).encode() + b"\n"


def rejected_entry(line: bytes, status: int, errors: object) -> bytes:
    """A ``.rejected`` line: when, the HTTP status, the daemon's errors, and the event itself."""
    head = json.dumps({"rejected_at": utc_now(), "status": status, "errors": errors}, ensure_ascii=False)
    return head[:-1].encode() + b',"event":' + line.rstrip(b"\n") + b"}\n"


def corrupt_entry(raw: bytes) -> bytes:
    """A ``.rejected`` line for a spool line that is not a JSON object."""
    entry = {"rejected_at": utc_now(), "status": 0, "errors": [{"message": "corrupt spool line"}],
             "raw": raw.decode("utf-8", "replace")}
    return json.dumps(entry, ensure_ascii=False).encode() + b"\n"


_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)


@dataclass
class SpoolChunk:
    """A batch read from the replay file and where the next one starts."""

    lines: list[bytes]
    end: int
    eof: bool
    corrupt: list[bytes] = field(default_factory=list)
    torn: bool = False


# Spooled events still carry raw user ids (hashing is the ingestor's): the owner's only.
SPOOL_DIR_MODE = 0o700


class Spool:
    """Thread-safe append, rotate-for-replay and read of the spool files."""

    @classmethod
    def claim(cls, path: str | os.PathLike[str], max_slots: int = 256) -> Spool:
        """The spool at ``path``, or at the first slot beside it no other client holds."""
        base = Path(path)
        base.parent.mkdir(mode=SPOOL_DIR_MODE, parents=True, exist_ok=True)
        for slot in range(max_slots):
            candidate = base if slot == 0 else base.with_name(f"{base.stem}-{slot}{base.suffix}")
            fd = os.open(candidate.with_name(candidate.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            return cls(candidate, lock_fd=fd)
        raise RuntimeError(f"all {max_slots} spool slots beside {base} are in use")

    def __init__(self, path: str | os.PathLike[str], lock_fd: int | None = None) -> None:
        self.path = Path(path)
        self._lock_fd = lock_fd
        self.replaying_path = self.path.with_name(self.path.name + ".replaying")
        self.rejected_path = self.path.with_name(self.path.name + ".rejected")
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._unreplayed = _size(self.path) > 0
        self._replaying = self.replaying_path.exists()

    @property
    def has_backlog(self) -> bool:
        """True while spooled events wait to be replayed."""
        return self._unreplayed or self._replaying

    def append(self, lines: Sequence[bytes], *, durable: bool = True) -> None:
        """Append ``\\n``-terminated lines; with ``durable`` fsync before returning. Raises OSError."""
        if not lines:
            return
        data = b"".join(lines)
        with self._lock:
            fd = self._open()
            try:
                _write_all(fd, data)
            except OSError:
                self._close()  # the next open seals a partial line with "\n"
                raise
            self._unreplayed = True
            # fsync a duplicate outside the lock so log() never waits for a disk flush.
            synced = os.dup(fd) if durable else None
        if synced is not None:
            try:
                os.fsync(synced)
            finally:
                os.close(synced)

    def reject(self, lines: Sequence[bytes], *, durable: bool = True) -> None:
        """Append entries to ``<spool>.rejected``. Raises OSError."""
        if not lines:
            return
        with self._lock:
            fd = os.open(self.rejected_path, _FLAGS, 0o600)
            try:
                _write_all(fd, b"".join(lines))
                if durable:
                    os.fsync(fd)
            finally:
                os.close(fd)

    def start_replay(self) -> bool:
        """Have a replay file ready: an unfinished one, or the spool renamed. False when none."""
        with self._lock:
            if self._replaying:
                return True
            if not self._unreplayed:
                return False
            self._close()
            try:
                os.replace(self.path, self.replaying_path)
            except FileNotFoundError:
                self._unreplayed = False
                return False
            _fsync_dir(self.path.parent)
            self._unreplayed = False
            self._replaying = True
            return True

    def read(self, offset: int, max_lines: int, max_bytes: int) -> SpoolChunk:
        """Up to ``max_lines`` lines of the replay file from ``offset``; a torn last line is skipped."""
        chunk = SpoolChunk(lines=[], end=offset, eof=False)
        size = 0
        try:
            with open(self.replaying_path, "rb") as f:
                f.seek(offset)
                while len(chunk.lines) + len(chunk.corrupt) < max_lines and size < max_bytes:
                    line = f.readline()
                    if not line.endswith(b"\n"):
                        chunk.eof = True
                        chunk.torn = bool(line)
                        break
                    chunk.end += len(line)
                    size += len(line)
                    stripped = line.strip()
                    if not stripped:
                        continue
                    if _is_json_object(stripped):
                        chunk.lines.append(stripped + b"\n")
                    else:
                        chunk.corrupt.append(stripped)
        except FileNotFoundError:  # removed by hand: nothing left to replay
            chunk.eof = True
        return chunk

    def pending_lines(self, replay_offset: int) -> int:
        """Events still waiting: the spool's lines and the replay file's from ``replay_offset`` on.

        A torn last line (no newline) is not counted: a replay skips it.
        """
        with self._lock:
            return _count_lines(self.path, 0) + _count_lines(self.replaying_path, replay_offset)

    def finish_replay(self) -> None:
        """Delete the replay file: every line of it was acknowledged."""
        with self._lock:
            self.replaying_path.unlink(missing_ok=True)
            self._replaying = False

    def close(self) -> None:
        """Close the open spool file (a later append reopens it) and give up the slot."""
        with self._lock:
            self._close()
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # releases the flock
                self._lock_fd = None

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(mode=SPOOL_DIR_MODE, parents=True, exist_ok=True)
            fd = os.open(self.path, _FLAGS, 0o600)
            try:
                if _has_torn_tail(self.path):
                    _write_all(fd, b"\n")  # keep a crash's partial line apart from new lines
            except OSError:
                os.close(fd)
                raise
            self._fd = fd
        return self._fd

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _count_lines(path: Path, offset: int) -> int:
    count = 0
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            for line in f:
                if line.endswith(b"\n") and line.strip():
                    count += 1
    except FileNotFoundError:
        return 0
    return count


def _has_torn_tail(path: Path) -> bool:
    with open(path, "rb") as f:
        if f.seek(0, os.SEEK_END) == 0:
            return False
        f.seek(-1, os.SEEK_END)
        return f.read(1) != b"\n"


def _is_json_object(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
