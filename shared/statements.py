"""SQL statements written once for both stores (SQLite and PostgreSQL).

SQLite's ``INSERT OR REPLACE`` has no PostgreSQL twin; an upsert that sets every
non-key column does the same to a table without triggers, in both dialects.
"""

from __future__ import annotations

from collections.abc import Sequence


def replace_row(table: str, columns: Sequence[str], key: Sequence[str]) -> str:
    """``INSERT`` of a whole row that replaces the row with the same ``key`` columns."""
    marks = ", ".join("?" for _ in columns)
    rest = [c for c in columns if c not in key]
    action = (
        "DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in rest) if rest else "DO NOTHING"
    )
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) ON CONFLICT ({', '.join(key)}) {action}"
