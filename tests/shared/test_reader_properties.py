"""Property-based tests of the day-file reader and of start-up repair, on real files.

Every generated file is a run of frames (for a plain file: one run of lines) of tagged
lines, so each line read can be traced to its frame: a frame is read whole or not at
all, every intact frame is read, in order, and nothing is invented.
"""

from __future__ import annotations

import gzip
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingestor.recovery import repair_day_files
from shared.compressed import CHUNK, GZIP, ZSTD, SegmentState, format_of, walk
from shared.layout import StorageLayout, Stream
from shared.quarantine import quarantined
from shared.reader import ReadCounts, iter_lines
from shared.settings import Settings

DAY = date(2026, 3, 4)
SUFFIXES = (".jsonl", ".jsonl.zst", ".jsonl.gz")
_ZSTD = zstandard.ZstdCompressor(level=1, write_checksum=True)

_text = st.text(st.characters(blacklist_characters="\n", blacklist_categories=("Cs",)), max_size=30)
# Now and then a line longer than the read chunk.
_long = st.integers(CHUNK - 3, CHUNK + 5000).map(lambda n: "L" * n)
_line = st.one_of(_text, _text, _text, _text, _text, _text, st.just(""), _long)
_frames = st.lists(st.lists(_line, max_size=8), min_size=1, max_size=5)


@dataclass
class Built:
    """A generated day file: its bytes, and each frame's tagged lines and byte range."""

    data: bytes
    frames: list[list[bytes]]  # the non-empty lines of each frame, in order
    spans: list[tuple[int, int]]


def _tagged(frames: list[list[str]]) -> list[list[bytes]]:
    out = []
    for k, lines in enumerate(frames):
        out.append([(f"{k}.{i}|{text}" if text else "").encode() for i, text in enumerate(lines)])
    return out


def build(suffix: str, frames: list[list[str]]) -> Built:
    """The bytes of a day file holding ``frames`` (one zstd frame or gzip member each)."""
    raw = _tagged(frames)
    blobs = [b"".join(line + b"\n" for line in lines) for lines in raw]
    if suffix == ".jsonl.zst":
        blobs = [_ZSTD.compress(b) for b in blobs]
    elif suffix == ".jsonl.gz":
        blobs = [gzip.compress(b, mtime=0) for b in blobs]
    spans, at = [], 0
    for blob in blobs:
        spans.append((at, at + len(blob)))
        at += len(blob)
    return Built(b"".join(blobs), [[line for line in lines if line] for lines in raw], spans)


def _frame_of(line: bytes) -> int:
    return int(line.split(b".", 1)[0])


def check_read(built: Built, data: bytes, got: list[bytes], counts: ReadCounts) -> set[int]:
    """Assert the reader's lines came whole frame by frame, in order; return the frames read."""
    assert counts.lines == len(got)
    read: list[int] = []
    for line in got:
        k = _frame_of(line)
        if not read or read[-1] != k:
            read.append(k)
    assert read == sorted(set(read)), "frames out of order or split"
    for k in read:
        assert [line for line in got if _frame_of(line) == k] == built.frames[k], "a frame read in part"
    intact = {k for k, (s, e) in enumerate(built.spans) if data[s:e] == built.data[s:e] and e <= len(data)}
    # A frame is intact when its bytes are untouched; a frame without lines cannot show.
    assert {k for k in intact if built.frames[k]} <= set(read)
    assert 0 <= counts.skipped_bytes <= len(data)
    if not (counts.torn or counts.damaged):
        assert counts.skipped_bytes == 0
    return set(read)


def read(path: Path) -> tuple[list[bytes], ReadCounts]:
    """Every line the reader yields, and its counts."""
    counts = ReadCounts()
    return list(iter_lines(path, counts)), counts


def _write(directory: Path, suffix: str, data: bytes) -> Path:
    path = directory / Stream.LOGS.value / f"{DAY.isoformat()}{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


Damage = Callable[[bytes], bytes]


@st.composite
def damage(draw: st.DrawFn, size: int) -> tuple[str, Damage]:
    """One way a file goes bad: a flipped byte, a cut, a cut-out piece, inserted garbage."""
    kind = draw(st.sampled_from(["none", "flip", "flips", "truncate", "cut-out", "insert"]))
    at = draw(st.integers(0, max(0, size - 1)))
    if kind == "flip":
        bit = draw(st.integers(1, 255))
        return kind, lambda d: d[:at] + bytes([d[at] ^ bit]) + d[at + 1 :] if d else d
    if kind == "flips":
        spots = draw(st.lists(st.integers(0, max(0, size - 1)), min_size=2, max_size=5))

        def flips(d: bytes) -> bytes:
            out = bytearray(d)
            for spot in spots:
                if spot < len(out):
                    out[spot] ^= 0xFF
            return bytes(out)

        return kind, flips
    if kind == "truncate":
        return kind, lambda d: d[:at]
    if kind == "cut-out":
        length = draw(st.integers(1, 64))
        return kind, lambda d: d[:at] + d[at + length :]
    if kind == "insert":
        garbage = draw(st.binary(min_size=1, max_size=64))
        return kind, lambda d: d[:at] + garbage + d[at:]
    return kind, lambda d: d


_settings = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@_settings
@given(st.sampled_from(SUFFIXES), _frames, st.data())
def test_reader_never_raises_and_reads_intact_frames_whole(
    suffix: str, frames: list[list[str]], data: st.DataObject
) -> None:
    """Whatever happens to the bytes, the reader yields exactly whole frames, every intact one, in order."""
    built = build(suffix, frames)
    kind, spoil = data.draw(damage(len(built.data)))
    spoiled = spoil(built.data)
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), suffix, spoiled)
        got, counts = read(path)
    if suffix == ".jsonl":
        # A plain file has no frames: every complete non-empty line is read, damaged or not.
        cut = spoiled.rfind(b"\n") + 1
        assert got == [line for line in spoiled[:cut].split(b"\n") if line]
        rest = len(spoiled) - cut
        assert counts == ReadCounts(lines=len(got), torn=int(rest > 0), skipped_bytes=rest)
        return
    frames_read = check_read(built, spoiled, got, counts)
    if spoiled == built.data:
        assert counts == ReadCounts(lines=sum(map(len, built.frames)))
    if kind == "truncate":
        # A cut file: every frame before the cut, and one torn frame if the cut fell inside one.
        whole = {k for k, (_, e) in enumerate(built.spans) if e <= len(spoiled)}
        assert frames_read == {k for k in whole if built.frames[k]}
        inside = any(s < len(spoiled) < e for s, e in built.spans)
        assert (counts.torn, counts.damaged) == ((1, 0) if inside else (0, 0))


@_settings
@given(st.sampled_from(SUFFIXES[1:]), _frames, st.data())
def test_segments_tile_the_file(suffix: str, frames: list[list[str]], data: st.DataObject) -> None:
    """The frame walk puts every byte of the file in exactly one segment, in order."""
    built = build(suffix, frames)
    _, spoil = data.draw(damage(len(built.data)))
    spoiled = spoil(built.data)
    fmt = format_of(suffix)
    assert fmt in (ZSTD, GZIP)
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), suffix, spoiled)
        with open(path, "rb") as f:
            segments = list(walk(f, fmt))
    at = 0
    for segment in segments:
        assert segment.start == at and segment.end > segment.start
        at = segment.end
    assert at == len(spoiled)
    assert all(s.state is not SegmentState.TORN for s in segments[:-1])


@_settings
@given(st.sampled_from(SUFFIXES), _frames, st.data())
def test_repair_never_shrinks_a_file_below_what_is_readable(
    suffix: str, frames: list[list[str]], data: st.DataObject
) -> None:
    """After start-up repair the day file reads to exactly what was readable, cleanly; damage is kept aside."""
    built = build(suffix, frames)
    _kind, spoil = data.draw(damage(len(built.data)))
    spoiled = spoil(built.data)
    with tempfile.TemporaryDirectory() as tmp:
        layout = StorageLayout.from_settings(Settings.for_data_dir(Path(tmp)))
        path = _write(Path(tmp), suffix, spoiled)
        before, before_counts = read(path)
        report = repair_day_files(layout)
        after, after_counts = read(path)
        # Every intact frame is still there (an intact frame after damaged ones too), and nothing else changed.
        if suffix == ".jsonl":
            assert after == [line for line in spoiled[: spoiled.rfind(b"\n") + 1].split(b"\n") if line]
        else:
            check_read(built, spoiled, after, after_counts)
        assert after == before
        assert (after_counts.torn, after_counts.damaged, after_counts.skipped_bytes) == (0, 0, 0)
        kept = quarantined(layout)
        if before_counts.damaged:
            # Damage is never cut out: the original is kept whole.
            assert [q.path.read_bytes() for q in kept] == [spoiled] and len(report.salvaged) == 1
        else:
            assert not kept and path.read_bytes() == spoiled[: len(path.read_bytes())]
            assert len(spoiled) - path.stat().st_size == report.torn_bytes


def test_a_damaged_gzip_member_costs_only_its_own_lines(tmp_path: Path) -> None:
    """Reading goes on after a damaged member of a .gz day, as after a damaged zstd frame."""
    built = build(".jsonl.gz", [["a", "b"], ["c" * 500, "d"], ["e"]])
    start, end = built.spans[1]
    spoiled = bytearray(built.data)
    spoiled[(start + end) // 2] ^= 0xFF
    got, counts = read(_write(tmp_path, ".jsonl.gz", bytes(spoiled)))
    assert got == built.frames[0] + built.frames[2]
    assert (counts.lines, counts.damaged, counts.torn, counts.skipped_bytes) == (3, 1, 0, end - start)
