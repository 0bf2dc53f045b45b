"""Keeping a statistics row's top-query list current without re-ranking the whole bucket.

Counts only grow, so after a batch the new top ``K`` of a bucket is among the old top
list and the keys the batch touched: any other key was ranked below every old entry
and has not moved. Only the touched keys' exact totals are read back (by index), so
a commit costs in proportion to its batch, not to the bucket's distinct queries,
and the result equals ranking every key from scratch (what the rebuild does).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Sequence

from chat_statistics.tables import ALL_SCOPE, DAILY, HOURLY, OVERALL, QUERIES
from chat_statistics.top_queries import TopQuery, ranked

_CHUNK = 900

# Exact totals of some keys in one bucket; ``{keys}`` is the IN list.
_TOTALS = {
    HOURLY: f"SELECT query_key, sample_text, count FROM {QUERIES} "
    "WHERE collection_name = ? AND date = ? AND hour = ? AND query_key IN ({keys})",
    OVERALL: f"SELECT query_key, min(sample_text), sum(count) FROM {QUERIES} "
    "WHERE date = ? AND hour = ? AND query_key IN ({keys}) GROUP BY query_key",
    DAILY: f"SELECT query_key, min(sample_text), sum(count) FROM {QUERIES} "
    "WHERE date = ? AND query_key IN ({keys}) AND collection_name = ? GROUP BY query_key",
    ALL_SCOPE: f"SELECT query_key, min(sample_text), sum(count) FROM {QUERIES} "
    "WHERE date = ? AND query_key IN ({keys}) GROUP BY query_key",
}


def _template(table: str, key: tuple[object, ...]) -> tuple[str, tuple[object, ...], tuple[object, ...]]:
    """The totals query of a row key, and the parameters before and after the IN list."""
    if table == DAILY:
        scope, day = key
        if scope == ALL_SCOPE:
            return _TOTALS[ALL_SCOPE], (day,), ()
        return _TOTALS[DAILY], (day,), (scope,)
    return _TOTALS[table], key, ()


def updated_top(
    conn: sqlite3.Connection,
    table: str,
    key: tuple[object, ...],
    current: Sequence[TopQuery],
    touched: Collection[str],
    limit: int,
) -> list[TopQuery]:
    """The row's top list after its queries in ``touched`` were counted (inside the transaction)."""
    if not touched:
        return list(current)
    sql, before, after = _template(table, key)
    entries = {entry.key: entry for entry in current}
    keys = sorted(touched)
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        statement = sql.format(keys=", ".join("?" for _ in chunk))
        for query_key, text, count in conn.execute(statement, (*before, *chunk, *after)):
            entries[query_key] = TopQuery(text, int(count), query_key)
    return ranked(entries.values(), limit)
