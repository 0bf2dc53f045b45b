"""Top queries: how user messages are grouped, shown, stored and merged.

Two messages are the same query when they are equal after NFKC, case folding and
collapsing whitespace (the *key*). Each group is shown with one representative
text: the smallest (in code point order) whitespace-collapsed original. The
smallest is order-independent and mergeable (``min``), so live updates, the pandas
rebuild and range merges all pick the same text whatever order events come in.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable

import msgspec

# Longer messages (pasted documents) are grouped and shown by their first characters.
MAX_QUERY_CHARS = 200
TOP_PER_HOUR = 10
TOP_PER_DAY = 100
# Finalised days keep only this many query rows per hour bucket (plus the day's top).
QUERY_ROWS_PER_HOUR = 25


class TopQuery(msgspec.Struct, frozen=True):
    """One query group with its count; ``key`` is the normalised form used to merge."""

    query: str
    count: int
    key: str


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(list[TopQuery])


@functools.lru_cache(maxsize=65536)
def query_key(text: str) -> str:
    """The grouping key of a user message: NFKC, casefold, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())[:MAX_QUERY_CHARS]


@functools.lru_cache(maxsize=65536)
def display_text(text: str) -> str:
    """A user message as shown in top queries: whitespace collapsed, original case."""
    return " ".join(text.split())[:MAX_QUERY_CHARS]


def ranked(entries: Iterable[TopQuery], limit: int) -> list[TopQuery]:
    """The ``limit`` largest groups, by count then key (a total, deterministic order)."""
    return sorted(entries, key=lambda e: (-e.count, e.key))[:limit]


def merge_top(lists: Iterable[Iterable[TopQuery]], limit: int) -> list[TopQuery]:
    """Sum per-bucket top lists by key (keeping the smallest text) and rank them."""
    counts: dict[str, int] = {}
    texts: dict[str, str] = {}
    for entries in lists:
        for entry in entries:
            key = entry.key
            if key in counts:
                counts[key] += entry.count
                if entry.query < texts[key]:
                    texts[key] = entry.query
            else:
                counts[key] = entry.count
                texts[key] = entry.query
    return ranked((TopQuery(texts[k], n, k) for k, n in counts.items()), limit)


def encode_top(entries: list[TopQuery]) -> str:
    """The JSON text stored in a statistics row's ``top_queries`` column."""
    return _encoder.encode(entries).decode()


def decode_top(text: str | bytes | None) -> list[TopQuery]:
    """Read a ``top_queries`` column."""
    if not text:
        return []
    return _decoder.decode(text)
