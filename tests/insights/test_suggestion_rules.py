"""The suggestion rules on given read results: thresholds, too little data, severity, evidence, messages."""

from __future__ import annotations

import dataclasses

import pytest

from chat_statistics.answer_reads import AnswerGroup
from chat_statistics.quality_reads import CollectionQuality, KnowledgeGap, Variant
from chat_statistics.sketch import LatencySketch
from insights import suggestion_rules as rules
from insights.suggestion_rules import Suggestion, Thresholds
from shared.settings import Settings

T = Thresholds()


def collection(name: str = "hr-docs", **fields: float) -> CollectionQuality:
    base = {"answers": 100, "answers_with_retrieval": 100}
    return CollectionQuality(name, **{**base, **fields})  # type: ignore[arg-type]


def gap(question: str, count: int, avg: float, name: str | None = "hr-docs") -> KnowledgeGap:
    return KnowledgeGap(question, count, avg, name, [Variant(question, count - 1), Variant(question + "?", 1)])


def group(model: str, level: str, answers: int, regenerations: int = 0, latencies: tuple[int, ...] = ()) -> AnswerGroup:
    g = AnswerGroup("hr-docs", model, level, answers=answers, regenerations=regenerations,
                    response_time_count=len(latencies), response_time_sum_ms=sum(latencies))
    g.sketch = LatencySketch.of(list(latencies)) if latencies else LatencySketch()
    return g


def test_thresholds_come_from_the_settings() -> None:
    settings = Settings.for_data_dir("/tmp/x", suggest_min_answers=50, suggest_slow_p95_ms=900, low_score_threshold=0.4)
    t = Thresholds.from_settings(settings)
    assert (t.min_answers, t.slow_p95_ms, t.low_score_threshold) == (50, 900, 0.4)
    assert Thresholds.from_settings(Settings.for_data_dir("/tmp/x")) == T


@pytest.mark.parametrize(("value", "expected"), [(0.3, "low"), (0.449, "low"), (0.45, "medium"), (0.6, "high")])
def test_severity_grows_with_how_far_past_the_threshold(value: float, expected: str) -> None:
    assert rules.severity(value, 0.3) == expected


def test_low_retrieval_needs_the_rate_and_enough_answers() -> None:
    found = rules.low_retrieval([collection(low_score_rate=0.41), collection("it", low_score_rate=0.29),
                                 collection("thin", low_score_rate=0.9, answers_with_retrieval=19)], T)
    (s,) = found
    assert (s.kind, s.collection_name, s.severity) == ("low_retrieval", "hr-docs", "low")
    assert s.evidence["low_score_rate"] == 0.41 and s.evidence["answers_with_retrieval"] == 100
    assert s.message.startswith("hr-docs: 검색된 답변의 41%") and "hr-docs: 41% of answers" in s.message
    assert rules.low_retrieval([collection("edge", low_score_rate=0.3, answers_with_retrieval=20)], T)


def test_knowledge_gap_from_given_gaps() -> None:
    """Each gap under the threshold is a suggestion naming the question; lower mean scores are more severe."""
    found = rules.knowledge_gap([gap("육아휴직 기간", 12, 0.2), gap("출장비 정산", 4, 0.3), gap("연차", 9, 0.45),
                                 gap("covered", 30, 0.7), gap("전사 공지", 5, 0.1, None)], T)
    assert [(s.evidence["question"], s.severity) for s in found] == [
        ("육아휴직 기간", "high"), ("출장비 정산", "medium"), ("연차", "low"), ("전사 공지", "high")]
    first = found[0]
    assert first.collection_name == "hr-docs" and first.evidence["count"] == 12
    assert first.evidence["variants"][0] == {"text": "육아휴직 기간", "count": 11}
    assert "'육아휴직 기간' (asked 12 times)" in first.message and "add a document on it" in first.message
    assert "'육아휴직 기간' 질문(12회)" in first.message
    assert found[3].collection_name is None and found[3].message.startswith("전체 컬렉션: ")


def test_high_regeneration_by_collection_model_and_level() -> None:
    collections = [collection(regeneration_rate=0.31), collection("it", regeneration_rate=0.1)]
    groups = [group("gpt", "low", 40, 16), group("gpt", "high", 40, 1), group("claude", "low", 40, 1),
              group("claude", "high", 40, 0), group("", "low", 500, 400)]
    found = rules.high_regeneration(collections, groups, None, T)
    by = {(s.collection_name, s.evidence.get("llm_model"), s.evidence.get("reasoning_level")): s for s in found}
    assert set(by) == {("hr-docs", None, None), (None, "gpt", None), (None, None, "low")}
    model = by[(None, "gpt", None)]
    assert model.evidence["regeneration_rate"] == pytest.approx(17 / 80)
    assert model.evidence["others_regeneration_rate"] == pytest.approx(1 / 80)
    # The unnamed model's 400 regenerations count for no model; they do count for level low.
    assert by[(None, None, "low")].evidence["regenerations"] == 417
    assert by[("hr-docs", None, None)].severity == "high"


def test_regeneration_by_level_needs_two_levels_with_enough_answers() -> None:
    lone = [group("gpt", "low", 100, 50)]
    assert rules.high_regeneration([], lone, "hr-docs", T) == []
    two = [group("gpt", "low", 100, 50), group("gpt", "high", 20, 1)]
    (s,) = [s for s in rules.high_regeneration([], two, "hr-docs", T) if "reasoning_level" in s.evidence]
    assert (s.collection_name, s.evidence["reasoning_level"]) == ("hr-docs", "low")
    assert rules.high_regeneration([], [group("gpt", "low", 100, 50), group("gpt", "high", 19, 1)], None, T) == []


def test_slow_responses_by_model() -> None:
    slow = tuple(range(9000, 12000, 100))  # 30 answers
    found = rules.slow_responses([group("big", "low", 30, latencies=slow), group("small", "low", 30,
                                  latencies=tuple(range(100, 3100, 100))),
                                  group("thin", "low", 19, latencies=slow[:19])], None, T)
    (s,) = found
    assert (s.evidence["llm_model"], s.severity) == ("big", "high")
    assert s.evidence["p95_response_time_ms"] == pytest.approx(11800, rel=0.01)
    assert "model big: p95 response time is 11," in s.message


def test_errors_name_the_most_frequent_types() -> None:
    found = rules.errors([collection(error_rate=0.08), collection("ok", error_rate=0.01)],
                         {"hr-docs": {"timeout": 5, "": 2, "rate_limit": 1, "parse": 3}}, T)
    (s,) = found
    assert s.evidence["top_error_types"] == [{"type": "timeout", "count": 5}, {"type": "parse", "count": 3},
                                             {"type": "unknown", "count": 2}]
    assert s.severity == "medium" and "timeout 5, parse 3, unknown 2" in s.message


def test_negative_feedback_needs_enough_feedback() -> None:
    names = [collection(), collection("thin"), collection("fine")]
    found = rules.negative_feedback(names, {"hr-docs": (10, 15), "thin": (0, 19), "fine": (90, 10)}, T)
    (s,) = found
    assert (s.collection_name, s.evidence["negative_feedback_rate"], s.severity) == ("hr-docs", 0.6, "high")


def test_ranked_puts_the_most_severe_first() -> None:
    def make(kind: str, level: str) -> Suggestion:
        return Suggestion(kind, level, None, kind, {})  # type: ignore[arg-type]

    order = rules.ranked([make("errors", "low"), make("slow_responses", "high"), make("errors", "high")])
    assert [(s.severity, s.kind) for s in order] == [("high", "errors"), ("high", "slow_responses"), ("low", "errors")]
    assert dataclasses.is_dataclass(T)
