"""Recomputing ``chat_statistics_reach`` from the activity table, vectorised (rebuild side).

For every scope (each collection, and ``''`` for all) and every session, each active
date is linked to the session's previous active date in that scope; reach rows count
those links per (scope, date, previous date). Sessions are encoded as integers and
sorted once with numpy, which is several times faster than a window query in SQLite.
A rebuild hands over the activity of the days it has just written (``DayActivity``),
so only the other days are read back from the table.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt
import pandas as pd

from chat_statistics.rebuild.arrays import unique_counts, unique_sorted
from chat_statistics.tables import ALL_SCOPE, REACH, SESSIONS
from shared.layout import date_range

IntArray = npt.NDArray[np.int64]
_ALL = f"SELECT session_id, collection_name, date FROM {SESSIONS}"
_TOUCHED = f"""
SELECT session_id, collection_name, date FROM {SESSIONS}
WHERE session_id IN (SELECT session_id FROM {SESSIONS} WHERE date >= ?)
"""
_OUTSIDE = f"SELECT session_id, collection_name, date FROM {SESSIONS} WHERE date < ? OR date > ?"
# Days of a range without a file (kept rows) are read back too, named in an IN list.
_MAX_GAPS = 500


class SessionCodes:
    """Integer codes for session ids, shared by every day of one rebuild (first seen, first coded)."""

    def __init__(self) -> None:
        self._codes: dict[str, int] = {}

    def of(self, names: list[str]) -> IntArray:
        """The code of each name, coding new ones."""
        codes = self._codes
        return np.asarray([codes.setdefault(name, len(codes)) for name in names], dtype=np.int64)


@dataclass
class DayActivity:
    """One rebuilt day's distinct (collection, session) pairs, exactly as written to the table."""

    date: str
    collections: list[str]
    sessions: IntArray  # the SessionCodes code of each of the day's sessions
    active: IntArray  # collection * len(sessions) + session, both the day's own codes


def _links(scope: IntArray, session: IntArray, day: IntArray, days: int) -> tuple[IntArray, IntArray, IntArray]:
    """(scope, day, previous day or -1) for every distinct (scope, session, day)."""
    sessions = int(session.max()) + 1 if len(session) else 1
    keys = unique_sorted((scope * sessions + session) * days + day)
    owner, linked = np.divmod(keys, days)
    same = np.r_[False, owner[1:] == owner[:-1]]
    previous = np.where(same, np.r_[-1, linked[:-1]], -1)
    return owner // sessions, linked, previous


@dataclass
class _Activity:
    """Activity rows as codes: session, collection (into ``collections``) and day (into sorted ``days``)."""

    session: IntArray
    collection: IntArray
    collections: list[str]
    day: IntArray
    days: list[str]


def _from_rows(rows: list[tuple[str, str, str]]) -> _Activity:
    session = pd.factorize(np.array([r[0] for r in rows], dtype=object))[0].astype(np.int64)
    collection, collections = pd.factorize(np.array([r[1] for r in rows], dtype=object))
    day, days = pd.factorize(np.array([r[2] for r in rows], dtype=object), sort=True)
    return _Activity(
        session,
        collection.astype(np.int64),
        [str(c) for c in collections],
        day.astype(np.int64),
        [str(d) for d in days],
    )


def _combined(known: Sequence[DayActivity], rows: list[tuple[str, str, str]], codes: SessionCodes) -> _Activity:
    """The rebuilt days' activity plus the rows read back, coded together."""
    days = sorted({d.date for d in known} | {r[2] for r in rows})
    day_code = {d: i for i, d in enumerate(days)}
    collection_code: dict[str, int] = {}
    session: list[IntArray] = [codes.of([r[0] for r in rows])]
    collection = [np.asarray([collection_code.setdefault(r[1], len(collection_code)) for r in rows], np.int64)]
    day = [np.asarray([day_code[r[2]] for r in rows], dtype=np.int64)]
    for activity in known:
        owner, member = np.divmod(activity.active, max(len(activity.sessions), 1))
        scopes = np.asarray([collection_code.setdefault(c, len(collection_code)) for c in activity.collections])
        session.append(activity.sessions[member])
        collection.append(scopes[owner].astype(np.int64) if len(scopes) else owner)
        day.append(np.full(len(owner), day_code[activity.date], dtype=np.int64))
    return _Activity(
        np.concatenate(session), np.concatenate(collection), list(collection_code), np.concatenate(day), days
    )


def _read_back(
    conn: sqlite3.Connection, first: date, known: Sequence[DayActivity]
) -> list[tuple[str, str, str]] | None:
    """The activity rows of every day not in ``known``, or None when that cannot be done cheaply."""
    (oldest,) = conn.execute(f"SELECT min(date) FROM {SESSIONS}").fetchone()
    if oldest is not None and first.isoformat() > oldest:
        return None  # sessions seen before ``first`` would need the costly IN
    dates = sorted(d.date for d in known)
    inside = [d.isoformat() for d in date_range(date.fromisoformat(dates[0]), date.fromisoformat(dates[-1]))]
    gaps = sorted(set(inside) - set(dates))
    if len(gaps) > _MAX_GAPS:
        return None
    sql = _OUTSIDE + (f" OR date IN ({', '.join('?' for _ in gaps)})" if gaps else "")
    return conn.execute(sql, (dates[0], dates[-1], *gaps)).fetchall()


def recompute_reach(
    conn: sqlite3.Connection,
    first: date,
    known: Sequence[DayActivity] = (),
    codes: SessionCodes | None = None,
) -> None:
    """Rewrite every reach row dated ``first`` or later (inside the caller's transaction).

    ``known`` is the activity of days whose table rows are exactly that (the caller
    checked that nothing was applied to them since they were written), with session
    ``codes`` from ``codes``; it is used instead of reading those days back when every
    stored day is being relinked.
    """
    start = first.isoformat()
    rows = _read_back(conn, first, known) if known and codes is not None else None
    activity: _Activity | None
    if rows is not None and codes is not None:
        activity = _combined(known, rows, codes)
    else:
        (oldest,) = conn.execute(f"SELECT min(date) FROM {SESSIONS}").fetchone()
        # From the first stored day on, every session is touched: skip the costly IN.
        everything = oldest is None or start <= oldest
        rows = conn.execute(_ALL if everything else _TOUCHED, () if everything else (start,)).fetchall()
        activity = _from_rows(rows) if rows else None
    conn.execute(f"DELETE FROM {REACH} WHERE date >= ?", (start,))
    if activity is None or not len(activity.session):
        return
    _write(conn, start, activity)


def _write(conn: sqlite3.Connection, start: str, activity: _Activity) -> None:
    days = len(activity.days)
    session, day = activity.session, activity.day
    # Scope 0 is all collections; collection i is scope i + 1.
    every = _links(np.zeros(len(session), np.int64), session, day, days)
    each = _links(activity.collection + 1, session, day, days)
    scope = np.concatenate([every[0], each[0]])
    linked = np.concatenate([every[1], each[1]])
    previous = np.concatenate([every[2], each[2]])
    wanted = (np.asarray(activity.days, dtype=object) >= start).astype(bool)[linked]
    cells, counts = unique_counts((scope[wanted] * (days + 1) + linked[wanted]) * (days + 1) + previous[wanted] + 1)
    rest, prev = np.divmod(cells, days + 1)
    scope_code, day_index = np.divmod(rest, days + 1)
    names = [ALL_SCOPE, *activity.collections]
    dates = activity.days
    conn.executemany(
        f"INSERT INTO {REACH} (scope, date, prev_date, sessions) VALUES (?, ?, ?, ?)",
        [
            (names[s], dates[d], dates[p - 1] if p else "", n)
            for s, d, p, n in zip(scope_code.tolist(), day_index.tolist(), prev.tolist(), counts.tolist(), strict=True)
        ],
    )
