"""Import inputs: line numbers as the operator's editor shows them, compressed inputs, damage, globs."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import zstandard

from chatlog.importing.sources import OpenSource, Source, SourceError, expand

TEXT = b'{"a": 1}\r\n\n{"b": 2}\n{"c": 3}'  # CRLF, a blank line, no newline at the end


def lines(path: Path) -> list[tuple[int, bytes]]:
    with OpenSource(Source(str(path))) as opened:
        return list(opened.lines())


@pytest.mark.parametrize("kind", ["plain", "gzip", "zstd"])
def test_lines_are_numbered_as_in_the_file(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "in"
    if kind == "gzip":
        path.write_bytes(gzip.compress(TEXT[:12]) + gzip.compress(TEXT[12:]))  # two members
    elif kind == "zstd":
        c = zstandard.ZstdCompressor()
        path.write_bytes(c.compress(TEXT[:12]) + c.compress(TEXT[12:]))  # two frames
    else:
        path.write_bytes(TEXT)
    with OpenSource(Source(str(path))) as opened:
        assert opened.kind == kind
    assert lines(path) == [(1, b'{"a": 1}'), (2, b""), (3, b'{"b": 2}'), (4, b'{"c": 3}')]


def test_a_truncated_gzip_input_yields_its_lines_then_names_where_it_broke(tmp_path: Path) -> None:
    body = b"".join(b'{"n": %d, "pad": "%s"}\n' % (i, b"x" * 200) for i in range(20000))
    packed = gzip.compress(body)
    path = tmp_path / "cut.gz"
    path.write_bytes(packed[: len(packed) // 2])
    seen = []
    with OpenSource(Source(str(path))) as opened, pytest.raises(SourceError, match=r"unreadable after line \d+"):
        for number, _line in opened.lines():
            seen.append(number)
    assert 0 < len(seen) < 20000 and seen == list(range(1, len(seen) + 1))


def test_globs_expand_sorted_and_unmatched_ones_are_named(tmp_path: Path) -> None:
    for name in ("2026-06-02.jsonl", "2026-06-01.jsonl.gz", "notes.txt"):
        (tmp_path / name).write_text("")
    sources, unmatched = expand([str(tmp_path / "*.jsonl*"), str(tmp_path / "*.zst"), "-"])
    assert [Path(s.name).name for s in sources] == ["2026-06-01.jsonl.gz", "2026-06-02.jsonl", "-"]
    assert unmatched == [str(tmp_path / "*.zst")]
    with pytest.raises(SourceError, match="cannot open"):
        OpenSource(Source(str(tmp_path / "missing.jsonl")))
