"""SQLite's statements in PostgreSQL's spelling: what changes, and what must not."""

from __future__ import annotations

import pytest

from shared.postgres.dialect import BEGIN_WRITE, UnsupportedStatement, translate


@pytest.mark.parametrize(
    ("sqlite", "postgres"),
    [
        ("SELECT a FROM t WHERE b = ? AND c = ?", "SELECT a FROM t WHERE b = %s AND c = %s"),
        ("SELECT '?', ? FROM t", "SELECT '?', %s FROM t"),
        ("SELECT 'it''s ?' || ?", "SELECT 'it''s ?' || %s"),
        ("SELECT x FROM t WHERE y LIKE '50%'", "SELECT x FROM t WHERE y LIKE '50%%'"),
        ("SELECT x % 7 FROM t", "SELECT x %% 7 FROM t"),
        ("SET v = max(t.v, excluded.v), w = min(t.w, excluded.w)",
         "SET v = GREATEST(t.v, excluded.v), w = LEAST(t.w, excluded.w)"),
        ("SELECT max(v), min(w) FROM t", "SELECT max(v), min(w) FROM t"),
        ("SELECT CAST(a AS REAL) / b", "SELECT CAST(a AS DOUBLE PRECISION) / b"),
        ("DELETE FROM q WHERE instr(raw, ?) > 0", "DELETE FROM q WHERE position(%s in raw) > 0"),
        ("BEGIN IMMEDIATE", BEGIN_WRITE),
        ("  begin immediate; ", BEGIN_WRITE),
        ("BEGIN", "BEGIN"),
    ],
)
def test_translation(sqlite: str, postgres: str) -> None:
    assert translate(sqlite) == postgres


def test_a_sqlite_only_pragma_is_refused_by_name() -> None:
    with pytest.raises(UnsupportedStatement, match="wal_checkpoint"):
        translate("PRAGMA wal_checkpoint(TRUNCATE)")


def test_database_list_is_refused_too() -> None:
    """What a store is, it says itself (shared.db.store_name): no PRAGMA is spelled for PostgreSQL."""
    with pytest.raises(UnsupportedStatement):
        translate("PRAGMA database_list")

