"""Exact distinct sessions: activity bookkeeping, per-row counts and range reach.

``chat_statistics_sessions`` records each (session, collection, date, hour) that had
events. From it follow exactly, for any batch of new activity:

- the unique_sessions increments of hourly, overall-hourly and daily rows;
- the changes to ``chat_statistics_reach``: each session contributes, per scope and
  active date, one count under its previous active date in that scope. A late event
  on an earlier date re-links the next date, which the diff below handles.

The rebuild recomputes reach from the same table (``chat_statistics.rebuild.reach``); both give
the same rows.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from chat_statistics.tables import ALL_SCOPE, REACH, SESSIONS

Activity = tuple[str, str, str, int]  # session_id, collection_name, date (ISO), hour
Place = tuple[str, str, int]  # collection_name, date, hour
_CHUNK = 900


@dataclass
class UniqueDeltas:
    """Increments of unique_sessions per row key, and reach changes per (scope, date, prev)."""

    hourly: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    overall: Counter[tuple[str, int]] = field(default_factory=Counter)
    daily: Counter[tuple[str, str]] = field(default_factory=Counter)
    reach: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    new_rows: list[Activity] = field(default_factory=list)


def _links(days: set[str]) -> list[tuple[str, str]]:
    """(date, previous date) for each active date of one session in one scope."""
    ordered = sorted(days)
    return list(zip(ordered, ["", *ordered[:-1]], strict=False))


def _reach_change(scope: str, old: set[str], new: set[str], into: Counter[tuple[str, str, str]]) -> None:
    if new <= old:
        return
    for day, prev in _links(old | new):
        into[(scope, day, prev)] += 1
    for day, prev in _links(old):
        into[(scope, day, prev)] -= 1


def unique_deltas(existing: Mapping[str, set[Place]], activity: Mapping[str, set[Place]]) -> UniqueDeltas:
    """What new activity (places by session) changes, given every stored place of those sessions."""
    deltas = UniqueDeltas()
    empty: set[Place] = set()
    for session, places in activity.items():
        old = existing.get(session, empty)
        # Most events land where their session already was: nothing changes.
        new = places - old
        if not new:
            continue
        deltas.new_rows.extend((session, c, d, h) for c, d, h in new)
        for place in new:
            deltas.hourly[place] += 1
        old_hours = {(d, h) for _, d, h in old}
        for hour_key in {(d, h) for _, d, h in new} - old_hours:
            deltas.overall[hour_key] += 1
        old_days = {(c, d) for c, d, _ in old}
        for day_key in {(c, d) for c, d, _ in new} - old_days:
            deltas.daily[day_key] += 1
        old_any = {d for _, d, _ in old}
        for day in {d for _, d, _ in new} - old_any:
            deltas.daily[(ALL_SCOPE, day)] += 1
        _reach_change(ALL_SCOPE, old_any, old_any | {d for _, d, _ in new}, deltas.reach)
        for collection in {c for c, _, _ in new}:
            before = {d for c, d, _ in old if c == collection}
            after = before | {d for c, d, _ in new if c == collection}
            _reach_change(collection, before, after, deltas.reach)
    deltas.reach = Counter({k: n for k, n in deltas.reach.items() if n})
    return deltas


GENERATION_KEY = "statistics_generation"
WRITER_KEY = "statistics_writer"


def bump_generation(conn: sqlite3.Connection) -> None:
    """Tell live writers that stored activity may have changed under them (inside a transaction)."""
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, '1') "
        "ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(meta.value AS INTEGER) + 1 AS TEXT)",
        (GENERATION_KEY,),
    )


class PlaceCache:
    """The stored places of recently active sessions, so the live path rarely reads them back.

    Entries are exact copies of ``chat_statistics_sessions``. Every transaction that
    inserts places also stores a mark of its writer (``meta.statistics_writer``: this
    cache's token and a count), so the cache forgets everything when the database does
    not hold its own last mark: a transaction it fed was rolled back, another writer
    added places since (another node on a shared PostgreSQL, a rebuild), or a rebuild
    changed the table (the generation moved).
    """

    def __init__(self, capacity: int = 50_000) -> None:
        self._capacity = capacity
        self._places: OrderedDict[str, set[Place]] = OrderedDict()
        self._token = uuid.uuid4().hex
        self._writes = 0
        self._mark: str | None = None  # the writer mark the database holds if nobody else wrote since
        self._generation: str | None = None

    def __len__(self) -> int:
        return len(self._places)

    def validate(self, conn: sqlite3.Connection) -> None:
        """Drop everything unless the database still holds what the cache believes."""
        found = dict(conn.execute(
            "SELECT key, value FROM meta WHERE key IN (?, ?)", (GENERATION_KEY, WRITER_KEY)
        ).fetchall())
        generation = found.get(GENERATION_KEY)
        generation = str(generation) if generation is not None else None
        mark = found.get(WRITER_KEY)
        mark = str(mark) if mark is not None else None
        if generation != self._generation or mark != self._mark:
            self._places.clear()
        self._generation = generation
        self._mark = mark

    def mark_written(self, conn: sqlite3.Connection) -> None:
        """Store this writer's mark in the caller's transaction (it inserted places)."""
        self._writes += 1
        mark = f"{self._token}:{self._writes}"
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (WRITER_KEY, mark),
        )
        self._mark = mark

    def lookup(self, sessions: Iterable[str]) -> tuple[dict[str, set[Place]], list[str]]:
        """Known places of the cached sessions, and the sessions to read from the database."""
        known: dict[str, set[Place]] = {}
        missing: list[str] = []
        for session in sessions:
            places = self._places.get(session)
            if places is None:
                missing.append(session)
            else:
                known[session] = places
                self._places.move_to_end(session)
        return known, missing

    def remember(self, places: dict[str, set[Place]], new_rows: list[Activity]) -> None:
        """Take in the sessions of a batch with the rows it inserted."""
        for session, collection, day, hour in new_rows:
            places.setdefault(session, set()).add((collection, day, hour))
        for session, known in places.items():
            self._places[session] = known
            self._places.move_to_end(session)
        while len(self._places) > self._capacity:
            self._places.popitem(last=False)


def _read_places(conn: sqlite3.Connection, sessions: list[str]) -> dict[str, set[Place]]:
    found: dict[str, set[Place]] = {session: set() for session in sessions}
    for start in range(0, len(sessions), _CHUNK):
        chunk = sessions[start : start + _CHUNK]
        marks = ", ".join("?" for _ in chunk)
        sql = f"SELECT session_id, collection_name, date, hour FROM {SESSIONS} WHERE session_id IN ({marks})"
        for session, collection, day, hour in conn.execute(sql, chunk):
            found[session].add((collection, day, hour))
    return found


def apply_sessions(
    conn: sqlite3.Connection, activity: Mapping[str, set[Place]], cache: PlaceCache | None = None
) -> UniqueDeltas:
    """Record new activity (places by session) and update reach in the caller's transaction."""
    cache = cache if cache is not None else PlaceCache(0)
    cache.validate(conn)
    existing, missing = cache.lookup(activity)
    if missing:
        existing.update(_read_places(conn, sorted(missing)))
    deltas = unique_deltas(existing, activity)
    conn.executemany(f"INSERT INTO {SESSIONS} VALUES (?, ?, ?, ?)", deltas.new_rows)
    if deltas.new_rows:
        cache.mark_written(conn)
    if deltas.reach:
        conn.executemany(
            f"INSERT INTO {REACH} VALUES (?, ?, ?, ?) ON CONFLICT (scope, date, prev_date) "
            "DO UPDATE SET sessions = chat_statistics_reach.sessions + excluded.sessions",
            [(*key, n) for key, n in deltas.reach.items()],
        )
        # A re-linked date can leave a zero row; the rebuild never writes those.
        conn.executemany(
            f"DELETE FROM {REACH} WHERE scope = ? AND date = ? AND prev_date = ? AND sessions = 0",
            [key for key, n in deltas.reach.items() if n < 0],
        )
    cache.remember(existing, deltas.new_rows)
    return deltas
