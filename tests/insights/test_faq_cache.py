"""The FAQ's grouping cache: reused while the data is unchanged, recomputed when it changed."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from datetime import date
from pathlib import Path

import pytest

from chat_statistics.questions import Candidate, encode_candidates
from insights import faq
from insights.faq import grouped, query_faq, query_knowledge_gaps
from shared.db import connect_writer_sync

DAY = date(2026, 3, 2)


def add_row(conn: sqlite3.Connection, key: str, count: int, scored: int, total: float, *answers: Candidate) -> None:
    with conn:
        conn.execute(
            "INSERT OR REPLACE INTO faq_questions VALUES (?, 'hr-docs', ?, ?, ?, ?, ?, ?)",
            (DAY.isoformat(), key, key, count, scored, total, encode_candidates(list(answers))),
        )
        conn.execute(
            "INSERT INTO ingest_offsets (stream, day, lines) VALUES ('data', ?, 1) "
            "ON CONFLICT (stream, day) DO UPDATE SET lines = lines + 1",
            (DAY.isoformat(),),
        )


def test_groups_are_cached_until_the_data_changes(tmp_path: Path) -> None:
    """Same version: the very same groups; new rows: regrouped at once; gaps ordered lowest mean first."""
    faq.clear_cache()
    with contextlib.closing(connect_writer_sync(tmp_path / "db.sqlite3")) as conn:
        add_row(conn, "연차 휴가 신청 방법", 4, 2, 0.6, Candidate("a1", 0.3, "answer one", "c1", "s1"))
        first = grouped(conn, None, DAY, DAY)
        assert grouped(conn, None, DAY, DAY) is first  # nothing changed: the same groups
        assert grouped(conn, "hr-docs", DAY, DAY) is not first  # another collection is another entry
        add_row(conn, "육아휴직 기간은 얼마나 되나요?", 3, 3, 0.3)
        # Grouping this little takes microseconds: a change shows at once.
        items = query_faq(conn, None, DAY, DAY, 20, 3).items
        assert [(i.question, i.count, i.answer, i.answer_conversation_id) for i in items] == [
            ("연차 휴가 신청 방법", 4, "answer one", "c1"), ("육아휴직 기간은 얼마나 되나요?", 3, None, None),
        ]
        gaps = query_knowledge_gaps(conn, None, DAY, DAY, 0.5, 3, 20)
        assert [(g.question, g.avg_best_score) for g in gaps] == [
            ("육아휴직 기간은 얼마나 되나요?", 0.1), ("연차 휴가 신청 방법", 0.3),
        ]
        assert query_knowledge_gaps(conn, None, DAY, DAY, 0.5, 3, 1)[0].question == "육아휴직 기간은 얼마나 되나요?"
        assert query_knowledge_gaps(conn, None, DAY, DAY, 0.5, 4, 20)[0].question == "연차 휴가 신청 방법"


def test_a_regrouping_analyses_only_new_texts(tmp_path: Path) -> None:
    """Term analysis is kept per text across groupings: new rows cost only their own analysis."""
    with contextlib.closing(connect_writer_sync(tmp_path / "db.sqlite3")) as conn:
        add_row(conn, "연차 휴가 신청 방법 문의 1", 4, 0, 0.0)
        add_row(conn, "재택근무 신청은 어디서 하나요 문의 1", 3, 0, 0.0)
        faq.compute_groups(conn, None, DAY, DAY)
        terms = faq._shared_grouper().terms.terms
        before = terms.cache_info().misses
        faq.compute_groups(conn, None, DAY, DAY)
        assert terms.cache_info().misses == before  # nothing new: nothing analysed
        add_row(conn, "법인카드 분실 신고 문의 1", 3, 0, 0.0)
        faq.compute_groups(conn, None, DAY, DAY)
        assert terms.cache_info().misses == before + 1


def test_the_analysis_stops_when_asked() -> None:
    """A shutdown is seen between chunks: the analysis raises ``Stopped`` instead of running on."""
    stop = threading.Event()
    stop.set()
    with pytest.raises(faq.Stopped):
        faq.analyse([f"질문 {i} 전혀 새로운 것" for i in range(2000)], stop)
