"""Recomputing ``chat_statistics_reach`` from the activity table, vectorised (rebuild side).

For every scope (each collection, and ``''`` for all) and every session, each active
date is linked to the session's previous active date in that scope; reach rows count
those links per (scope, date, previous date). Sessions are encoded as integers and
sorted once with numpy, which is several times faster than a window query in SQLite.
"""

from __future__ import annotations

import sqlite3
from datetime import date

import numpy as np
import numpy.typing as npt
import pandas as pd

from shared.stats.schema import ALL_SCOPE, REACH, SESSIONS

_ALL = f"SELECT session_id, collection_name, date FROM {SESSIONS}"
_TOUCHED = f"""
SELECT session_id, collection_name, date FROM {SESSIONS}
WHERE session_id IN (SELECT session_id FROM {SESSIONS} WHERE date >= ?)
"""


def _links(
    scope: npt.NDArray[np.int64], session: npt.NDArray[np.int64], day: npt.NDArray[np.int64], days: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(scope, day, previous day or -1) for every distinct (scope, session, day)."""
    sessions = int(session.max()) + 1 if len(session) else 1
    keys = np.unique((scope * sessions + session) * days + day)
    owner, linked = np.divmod(keys, days)
    same = np.r_[False, owner[1:] == owner[:-1]]
    previous = np.where(same, np.r_[-1, linked[:-1]], -1)
    return owner // sessions, linked, previous


def recompute_reach(conn: sqlite3.Connection, first: date) -> None:
    """Rewrite every reach row dated ``first`` or later (inside the caller's transaction)."""
    start = first.isoformat()
    (oldest,) = conn.execute(f"SELECT min(date) FROM {SESSIONS}").fetchone()
    # From the first stored day on, every session is touched: skip the costly IN.
    everything = oldest is None or start <= oldest
    rows = conn.execute(_ALL if everything else _TOUCHED, () if everything else (start,)).fetchall()
    conn.execute(f"DELETE FROM {REACH} WHERE date >= ?", (start,))
    if not rows:
        return
    session = pd.factorize(np.array([r[0] for r in rows], dtype=object))[0].astype(np.int64)
    collection_code, collections = pd.factorize(np.array([r[1] for r in rows], dtype=object))
    day_code, day_names = pd.factorize(np.array([r[2] for r in rows], dtype=object), sort=True)
    days = len(day_names)
    # Scope 0 is all collections; collection i is scope i + 1.
    every = _links(np.zeros(len(session), np.int64), session, day_code.astype(np.int64), days)
    each = _links(collection_code.astype(np.int64) + 1, session, day_code.astype(np.int64), days)
    scope = np.concatenate([every[0], each[0]])
    linked = np.concatenate([every[1], each[1]])
    previous = np.concatenate([every[2], each[2]])
    wanted = np.asarray(day_names >= start)[linked]
    cells, counts = np.unique(
        (scope[wanted] * (days + 1) + linked[wanted]) * (days + 1) + previous[wanted] + 1, return_counts=True
    )
    rest, prev = np.divmod(cells, days + 1)
    scope_code, day_index = np.divmod(rest, days + 1)
    names = [ALL_SCOPE, *(str(c) for c in collections)]
    dates = [str(d) for d in day_names]
    conn.executemany(
        f"INSERT INTO {REACH} (scope, date, prev_date, sessions) VALUES (?, ?, ?, ?)",
        [
            (names[s], dates[d], dates[p - 1] if p else "", n)
            for s, d, p, n in zip(
                scope_code.tolist(), day_index.tolist(), prev.tolist(), counts.tolist(), strict=True
            )
        ],
    )
