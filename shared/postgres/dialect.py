"""SQLite's SQL, as this code base writes it, in PostgreSQL's dialect.

The derived state's statements are written once, for SQLite, and kept to the
common core of both dialects (upserts are ``INSERT ... ON CONFLICT``, never
``INSERT OR REPLACE``). What remains different is spelled here, once per
statement text (cached):

- ``?`` placeholders become ``%s`` and a literal ``%`` becomes ``%%`` (psycopg's
  client-side binding);
- two-argument scalar ``max(a, b)`` / ``min(a, b)`` become ``GREATEST`` / ``LEAST``;
- ``CAST(x AS REAL)`` becomes double precision (PostgreSQL's REAL is 4 bytes);
- ``instr(haystack, ?)`` becomes ``position(? in haystack)``;
- a PRAGMA is an error (what SQLite-only code asks a PRAGMA, a store answers
  itself: ``shared.db.store_name``);
- ``BEGIN IMMEDIATE`` (SQLite's database write lock) becomes ``BEGIN`` plus a
  transaction-scoped advisory lock that every writer takes: all nodes' derived
  transactions are serialised, so a read-merge-write of a shared row (a latency
  sketch, a top-queries list) can never lose another node's update.

Quotes are respected: nothing inside a string literal is touched.
"""

from __future__ import annotations

import functools
import re

# pg_advisory_xact_lock key of the derived state's write lock ("chatlog" in ASCII).
WRITE_LOCK_KEY = 0x636861746C6F67
# Session-level lock held while migrating, so that one node migrates and the others wait.
MIGRATION_LOCK_KEY = WRITE_LOCK_KEY + 1

BEGIN_WRITE = f"BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})"

_LITERAL = re.compile(r"'(?:[^']|'')*'")
_SCALAR_2 = re.compile(r"\b(max|min)\(\s*([^(),]+?)\s*,\s*([^(),]+?)\s*\)", re.IGNORECASE)
_CAST_REAL = re.compile(r"\bAS\s+REAL\b", re.IGNORECASE)
_INSTR = re.compile(r"\binstr\(\s*(\w+)\s*,\s*\?\s*\)", re.IGNORECASE)
_BEGIN_IMMEDIATE = re.compile(r"^\s*BEGIN\s+(IMMEDIATE|EXCLUSIVE)\s*;?\s*$", re.IGNORECASE)


class UnsupportedStatement(ValueError):
    """A SQLite-only statement (a PRAGMA, for one) reached the PostgreSQL store."""


def _code(part: str) -> str:
    part = _INSTR.sub(r"position(? in \1)", part)
    part = _SCALAR_2.sub(lambda m: f"{'GREATEST' if m[1].lower() == 'max' else 'LEAST'}({m[2]}, {m[3]})", part)
    part = _CAST_REAL.sub("AS DOUBLE PRECISION", part)
    return part.replace("%", "%%").replace("?", "%s")


@functools.lru_cache(maxsize=4096)
def translate(sql: str) -> str:
    """``sql`` (SQLite's dialect, ``?`` placeholders) for psycopg on PostgreSQL."""
    if _BEGIN_IMMEDIATE.match(sql):
        return BEGIN_WRITE
    if sql.lstrip()[:6].upper() == "PRAGMA":
        raise UnsupportedStatement(f"SQLite-only statement on PostgreSQL: {sql.strip()[:60]}")
    out: list[str] = []
    position = 0
    for literal in _LITERAL.finditer(sql):
        out.append(_code(sql[position:literal.start()]))
        out.append(literal[0].replace("%", "%%"))
        position = literal.end()
    out.append(_code(sql[position:]))
    return "".join(out)
