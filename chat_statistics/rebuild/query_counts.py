"""One day's query counts and top lists from its event columns (the rebuild side), in numpy.

Each distinct user text is normalised once (``query_key``, ``display_text``); events
are then counted per (hourly group, key code) with one sort, and top lists of every
grain are ranked in the live path's total order (count, then key), so a rebuilt
day's lists and query rows equal the live ones.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from chat_statistics.rebuild.arrays import run_starts, unique_inverse
from chat_statistics.rebuild.frames import DayColumns, IntArray
from chat_statistics.top_queries import TopQuery, display_text, query_key

HOURS = 24


@dataclass
class DayQueries:
    """Exact query counts per hourly group and key code, with key and shown-text tables.

    Key and text codes are positions in sorted order. Rows are sorted by (group, key);
    ``text`` is the smallest shown text of the row.
    """

    group: IntArray
    key: IntArray
    count: IntArray
    text: IntArray  # index into shown
    keys: list[str]
    shown: list[str]


def _sorted_codes(values: list[str]) -> tuple[IntArray, list[str]]:
    """Each value's position among the sorted distinct values, and those values.

    pyarrow sorts UTF-8 bytes, which is code point order: the order of Python's ``<``.
    """
    encoded = pa.array(values, pa.string()).dictionary_encode()
    order = pc.sort_indices(encoded.dictionary)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order.to_numpy()] = np.arange(len(order))
    codes = rank[encoded.indices.to_numpy(zero_copy_only=False)] if len(values) else rank
    return codes, encoded.dictionary.take(order).to_pylist()


def count_queries(cols: DayColumns, group: IntArray) -> DayQueries:
    """Count user messages per (hourly group, query key), keeping each cell's smallest shown text."""
    # Keys are coded in sorted order, so a key's code is also its tie-break rank.
    key_code, keys = _sorted_codes([query_key(t) for t in cols.texts])
    text_rank, shown = _sorted_codes([display_text(t) for t in cols.texts])

    users = np.flatnonzero(cols.text >= 0)
    raw = cols.text[users]
    key = key_code[raw]
    text = text_rank[raw]
    cell = group[users] * max(len(keys), 1) + key
    if keys and keys[0] == "":  # whitespace-only messages are not queries ("" sorts first)
        wanted = key != 0
        cell, text = cell[wanted], text[wanted]
    order = np.lexsort((text, cell))
    cell, text = cell[order], text[order]
    starts = run_starts(cell)
    first = cell[starts]
    width = max(len(keys), 1)
    return DayQueries(
        group=first // width,
        key=first % width,
        count=np.diff(np.r_[starts, len(cell)]).astype(np.int64),
        text=text[starts],
        keys=keys,
        shown=shown,
    )


def ranks(owner: IntArray, order: IntArray) -> IntArray:
    """Each row's position within its owner, given an order that sorts by owner first."""
    rank = np.empty(len(order), dtype=np.int64)
    if len(order):
        sorted_owner = owner[order]
        starts = run_starts(sorted_owner)
        lengths = np.diff(np.r_[starts, len(order)])
        rank[order] = np.arange(len(order)) - np.repeat(starts, lengths)
    return rank


def top_lists(q: DayQueries, owner: IntArray, limit: int) -> dict[int, list[TopQuery]]:
    """Top ``limit`` keys per owner (a coarser group), counts summed and smallest text kept.

    ``owner`` is per row of ``q``; rows of one owner and key are merged first unless
    ``owner`` is the hourly group itself (rows are unique per group and key already).
    """
    if not len(q.group):
        return {}
    if owner is q.group:
        owners, keys, counts, texts = q.group, q.key, q.count, q.text
    else:
        width = len(q.keys)
        cells, inverse = unique_inverse(owner * width + q.key)
        counts = np.bincount(inverse, weights=q.count, minlength=len(cells)).astype(np.int64)
        texts = np.full(len(cells), len(q.shown), dtype=np.int64)
        np.minimum.at(texts, inverse, q.text)
        owners, keys = np.divmod(cells, width)
    order = np.lexsort((keys, -counts, owners))
    chosen = order[ranks(owners, order)[order] < limit]
    out: dict[int, list[TopQuery]] = {}
    shown, names = q.shown, q.keys
    for o, k, n, t in zip(
        owners[chosen].tolist(), keys[chosen].tolist(), counts[chosen].tolist(), texts[chosen].tolist(), strict=True
    ):
        entry = TopQuery(shown[t], n, names[k])
        if o in out:
            out[o].append(entry)
        else:
            out[o] = [entry]
    return out


def kept_rows(
    q: DayQueries, rows_per_hour: int, daily: dict[int, list[TopQuery]], everyone: list[TopQuery]
) -> npt.NDArray[np.bool_]:
    """Which query rows a finalised day keeps: each hour's top rows, and any of the day's top keys."""
    if not len(q.group):
        return np.zeros(0, dtype=bool)
    keep = ranks(q.group, np.lexsort((q.key, -q.count, q.group))) < rows_per_hour
    # Keys are sorted, so a key's code is its position among them.
    keys = q.keys
    width = len(keys)
    day_top = [c * width + bisect_left(keys, e.key) for c, entries in daily.items() for e in entries]
    keep |= np.isin(q.key, [bisect_left(keys, e.key) for e in everyone])
    keep |= np.isin((q.group // HOURS) * width + q.key, day_top)
    return keep
