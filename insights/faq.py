"""The FAQ and the knowledge gaps: question groups over a date range, each with one stored answer.

Both read the per-day distinct questions (``faq_questions``, kept by
``chat_statistics.questions``), merge them per normalised question over the range and
group paraphrases with ``QuestionGrouper``; they never read events. Grouping a month
of distinct questions takes a while, so the groups of a (database, range, collection)
are cached in the process with the data version they were computed from (the applied
line counts and the statistics generation): a read while nothing changed reuses them,
and while events keep arriving an answer that took at least ``STALE_MIN_COST`` to
compute is reused while younger than ten times that (at most ``MAX_STALE_SECONDS``),
so the FAQ stays fresh within seconds without regrouping on every read of a busy day.
That cache (``grouped``) serves the CLI (``chatlog faq export``); the analytics API keeps
its own, warmed at start and refreshed in the background (``analytics_api.groupings``),
from the same pieces: ``load_questions`` (a short read) then ``group_questions`` (no
database access). Term analysis of a text is pure, so it is kept per text (bounded, in
the process's one grouper) across groupings: a regrouping analyses only new texts.

The answer shown with a group is one of its stored candidates (``status`` ok, not a
regeneration nor regenerated): one with good feedback (more good than bad) first, then
the highest best score, then the smallest log_id.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

import msgspec

from chat_statistics.quality_reads import KnowledgeGap, Variant
from chat_statistics.questions import Candidate, decode_candidates
from chat_statistics.sessions import GENERATION_KEY
from insights.grouping import QuestionGrouper
from shared.db import store_name


class FaqItem(msgspec.Struct):
    """One question group (CONTRACT.md "Additions" → FAQ)."""

    question: str
    count: int
    share: float
    variants: list[Variant]
    collections: dict[str, int]
    answer: str | None
    answer_log_id: str | None
    avg_best_score: float | None
    # Where the answer can be read in context: GET /api/admin/conversations/{id}.
    answer_conversation_id: str | None = None


class Faq(msgspec.Struct):
    """The FAQ answer."""

    items: list[FaqItem] = msgspec.field(default_factory=list)


MAX_STALE_SECONDS = 5.0
STALE_MIN_COST = 0.2  # a grouping quicker than this is redone on every change
_STALE_FACTOR = 10.0
_CACHED_RANGES = 32
_CHUNK = 500


@dataclass
class Group:
    """One question group over a range, with what its rows say about its answers."""

    question: str
    count: int
    variants: list[tuple[str, int]]
    keys: list[str]
    collections: dict[str, int] = field(default_factory=dict)
    scored: int = 0
    score_sum: float = 0.0
    # The answer shown, once looked up: cached with the groups (feedback is in their data version).
    answer: Candidate | None = None
    answer_known: bool = False

    @property
    def avg_best_score(self) -> float | None:
        return self.score_sum / self.scored if self.scored else None

    def main_collection(self) -> str | None:
        if not self.collections:
            return None
        return min(self.collections, key=lambda c: (-self.collections[c], c))


@dataclass
class Grouped:
    """Every group of a range, largest first, and how many questions the range holds."""

    groups: list[Group]
    total: int


@dataclass
class _Cached:
    version: tuple[object, ...]
    at: float
    cost: float
    grouped: Grouped


_cache: OrderedDict[tuple[object, ...], _Cached] = OrderedDict()
_cache_lock = threading.Lock()
_grouper_lock = threading.Lock()
_grouper: QuestionGrouper | None = None
_warmed = False  # a grouping has run in this process (the model is loaded)


def _group(counts: dict[str, int]) -> list[tuple[str, int, list[tuple[str, int]]]]:
    with _grouper_lock:  # Kiwi and the grouper's state are not shared between threads
        return [(g.question, g.count, list(g.variants)) for g in _shared_grouper().group(counts)]


def data_version(conn: sqlite3.Connection) -> tuple[object, ...]:
    """What changes whenever the question rows may have: lines applied, statistics rebuilt or erased."""
    (lines,) = conn.execute("SELECT coalesce(sum(lines), 0) FROM ingest_offsets").fetchone()
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (GENERATION_KEY,)).fetchone()
    (feedback,) = conn.execute("SELECT count(*) FROM answer_feedback").fetchone()
    return (int(lines), row[0] if row else None, int(feedback))


def _where(collection: str | None, first: date, last: date) -> tuple[str, list[object]]:
    sql = "date BETWEEN ? AND ?"
    args: list[object] = [first.isoformat(), last.isoformat()]
    if collection is not None:
        sql += " AND collection_name = ?"
        args.append(collection)
    return sql, args


@dataclass
class _KeyTotals:
    text: str  # the shown text: the smallest over the range
    count: int = 0
    scored: int = 0
    score_sum: float = 0.0
    collections: dict[str, int] = field(default_factory=dict)


@dataclass
class Questions:
    """A range's distinct questions merged per normalised key, read in one short transaction."""

    per_key: dict[str, _KeyTotals]


def load_questions(conn: sqlite3.Connection, collection: str | None, first: date, last: date) -> Questions:
    """Merge the range's rows per normalised question (a read; no analysis)."""
    where, args = _where(collection, first, last)
    per_key: dict[str, _KeyTotals] = {}
    for key, name, text, count, scored, total in conn.execute(
        "SELECT question_key, collection_name, min(sample_text), sum(count), sum(scored), sum(score_sum) "
        f"FROM faq_questions WHERE {where} GROUP BY question_key, collection_name",
        args,
    ):
        entry = per_key.get(key)
        if entry is None:
            entry = per_key[key] = _KeyTotals(text)
        elif text < entry.text:
            entry.text = text
        entry.count += int(count)
        entry.scored += int(scored)
        entry.score_sum += float(total)
        entry.collections[name] = int(count)
    return Questions(per_key)


class Stopped(Exception):
    """The analysis was asked to stop (the service is shutting down)."""


def _shared_grouper() -> QuestionGrouper:
    global _grouper
    if _grouper is None:
        _grouper = QuestionGrouper()
    return _grouper


def load_model() -> None:
    """Load Kiwi's model into the process's grouper (about a second and ~100 MB)."""
    with _grouper_lock:
        _shared_grouper().terms.analyser()


def analyse(texts: Iterable[str], stop: threading.Event | None = None) -> None:
    """Analyse ``texts`` into the grouper's bounded per-text cache, a chunk at a time so
    ``stop`` is seen within a chunk's time: term analysis is pure, so a regrouping after new
    events analyses only the new texts."""
    items = list(texts)
    for chunk in _chunks(items):
        if stop is not None and stop.is_set():
            raise Stopped
        with _grouper_lock:
            terms = _shared_grouper().terms
            for text in chunk:
                terms.terms(text)


def group_questions(questions: Questions, stop: threading.Event | None = None) -> Grouped:
    """Group merged questions (no database access: may run outside any read transaction)."""
    per_key = questions.per_key
    analyse((e.text for e in per_key.values()), stop)
    by_text = {e.text: k for k, e in per_key.items()}
    groups = []
    for question, count, variants in _group({e.text: e.count for e in per_key.values()}):
        group = Group(question, count, variants, [by_text[t] for t, _ in variants])
        for key in group.keys:
            entry = per_key[key]
            group.scored += entry.scored
            group.score_sum += entry.score_sum
            for name, n in entry.collections.items():
                group.collections[name] = group.collections.get(name, 0) + n
        groups.append(group)
    return Grouped(groups, sum(e.count for e in per_key.values()))


def compute_groups(conn: sqlite3.Connection, collection: str | None, first: date, last: date) -> Grouped:
    """Merge the range's rows per normalised question and group them (uncached)."""
    return group_questions(load_questions(conn, collection, first, last))


def grouped(conn: sqlite3.Connection, collection: str | None, first: date, last: date) -> Grouped:
    """The range's groups, from the process's cache when still current."""
    key = (store_name(conn), collection, first, last)
    version = data_version(conn)
    now = time.monotonic()
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None and (
            cached.version == version
            or (cached.cost >= STALE_MIN_COST and now - cached.at < min(MAX_STALE_SECONDS, _STALE_FACTOR * cached.cost))
        ):
            _cache.move_to_end(key)
            return cached.grouped
    global _warmed
    warm = _warmed
    started = time.monotonic()
    result = compute_groups(conn, collection, first, last)
    finished = time.monotonic()
    _warmed = True
    # The process's first grouping also loads Kiwi's model: that time says nothing of the next.
    cost = finished - started if warm else 0.0
    with _cache_lock:
        _cache[key] = _Cached(version, finished, cost, result)
        _cache.move_to_end(key)
        while len(_cache) > _CACHED_RANGES:
            _cache.popitem(last=False)
    return result


def clear_cache() -> None:
    """Forget every cached range (tests, benchmarks)."""
    with _cache_lock:
        _cache.clear()


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def best_answer(
    conn: sqlite3.Connection, group: Group, collection: str | None, first: date, last: date
) -> Candidate | None:
    """The answer shown with a group: good feedback first, then best score, then log_id (memoised on the group)."""
    if not group.answer_known:
        group.answer = _best_answer(conn, group, collection, first, last)
        group.answer_known = True
    return group.answer


def _best_answer(
    conn: sqlite3.Connection, group: Group, collection: str | None, first: date, last: date
) -> Candidate | None:
    where, args = _where(collection, first, last)
    candidates: dict[str, Candidate] = {}
    for chunk in _chunks(group.keys):
        marks = ", ".join("?" for _ in chunk)
        for (text,) in conn.execute(
            f"SELECT candidates FROM faq_questions WHERE {where} AND question_key IN ({marks})", [*args, *chunk]
        ):
            for candidate in decode_candidates(text):
                candidates[candidate.log_id] = candidate
    if not candidates:
        return None
    good: set[str] = set()
    ids = sorted(candidates)
    for chunk in _chunks(ids):
        marks = ", ".join("?" for _ in chunk)
        good.update(
            log_id
            for (log_id,) in conn.execute(
                f"SELECT log_id FROM answer_feedback WHERE log_id IN ({marks}) GROUP BY log_id HAVING sum(score) > 0",
                chunk,
            )
        )
    return min(
        candidates.values(),
        key=lambda c: (c.log_id not in good, -c.score if c.score is not None else float("inf"), c.log_id),
    )


def _variants(group: Group) -> list[Variant]:
    return [Variant(text, count) for text, count in group.variants]


def query_faq(
    conn: sqlite3.Connection, collection: str | None, first: date, last: date, limit: int, min_count: int
) -> Faq:
    """The ``limit`` largest question groups of at least ``min_count`` questions, largest first."""
    return faq_from(conn, grouped(conn, collection, first, last), collection, first, last, limit, min_count)


def faq_from(
    conn: sqlite3.Connection,
    result: Grouped,
    collection: str | None,
    first: date,
    last: date,
    limit: int,
    min_count: int,
) -> Faq:
    """The FAQ of already grouped questions (looks up and memoises the answers shown)."""
    items: list[FaqItem] = []
    for group in result.groups:
        if len(items) >= limit or group.count < min_count:
            break  # groups are largest first
        answer = best_answer(conn, group, collection, first, last)
        avg = group.avg_best_score
        items.append(FaqItem(
            question=group.question,
            count=group.count,
            share=group.count / result.total if result.total else 0.0,
            variants=_variants(group),
            collections=dict(sorted(group.collections.items(), key=lambda kv: (-kv[1], kv[0]))),
            answer=answer.text if answer is not None else None,
            answer_log_id=answer.log_id if answer is not None else None,
            avg_best_score=round(avg, 6) if avg is not None else None,
            answer_conversation_id=answer.conversation_id if answer is not None else None,
        ))
    return Faq(items)


def query_knowledge_gaps(
    conn: sqlite3.Connection,
    collection: str | None,
    first: date,
    last: date,
    threshold: float,
    min_count: int,
    limit: int,
) -> list[KnowledgeGap]:
    """Question groups of at least ``min_count`` whose answers' mean best score is under
    ``threshold``, lowest first (then the most asked, then by question)."""
    return gaps_from(grouped(conn, collection, first, last), collection, threshold, min_count, limit)


def gaps_from(
    result: Grouped, collection: str | None, threshold: float, min_count: int, limit: int
) -> list[KnowledgeGap]:
    """The knowledge gaps of already grouped questions (no database access)."""
    gaps = []
    for group in result.groups:
        if group.count < min_count:
            break
        avg = group.avg_best_score
        if avg is not None and avg < threshold:
            gaps.append((avg, group))
    gaps.sort(key=lambda pair: (pair[0], -pair[1].count, pair[1].question))
    return [
        KnowledgeGap(
            question=group.question,
            count=group.count,
            avg_best_score=round(avg, 6),
            collection_name=collection if collection is not None else group.main_collection(),
            variants=_variants(group),
        )
        for avg, group in gaps[:limit]
    ]
