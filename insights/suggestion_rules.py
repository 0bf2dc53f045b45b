"""The suggestion rules: pure functions from read results to suggestions.

Each rule takes what the statistics reads answered (the quality answer, the answer
groups by model and reasoning level, the error types, the knowledge gaps) and the
thresholds, and returns its suggestions; nothing here touches the database, so every
rule can be tested on given values. A rule says nothing about a collection, model or
reasoning level with too little data (``Thresholds.min_answers``), never suggests
without the numbers behind it (``evidence``), and grades its severity by how far past
its threshold the value is (``severity``). Messages are Korean, then English.

Answers whose event names no ``llm_model`` (``reasoning_level``) are left out of the
rules by model (level): there is nothing to change about a model without a name; the
rules by collection still count them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from chat_statistics.answer_reads import AnswerGroup
from chat_statistics.quality_reads import CollectionQuality, KnowledgeGap
from shared.settings import Settings

Severity = Literal["high", "medium", "low"]
SEVERITY_ORDER: dict[str, int] = {"high": 0, "medium": 1, "low": 2}
# How far past the threshold (value / threshold) makes a suggestion medium, and high.
MEDIUM_AT = 1.5
HIGH_AT = 2.0
TOP_ERROR_TYPES = 3
ALL = ("전체 컬렉션", "all collections")


class Suggestion(msgspec.Struct):
    """One suggestion (CONTRACT.md "Additions" → suggestions)."""

    kind: str
    severity: Severity
    collection_name: str | None
    message: str
    evidence: dict[str, Any]


@dataclass(frozen=True)
class Thresholds:
    """What the rules compare against (each a ``CHATLOG_SUGGEST_*`` setting)."""

    min_answers: int = 20
    low_score_threshold: float = 0.5
    low_score_rate: float = 0.30
    regeneration_rate: float = 0.15
    slow_p95_ms: int = 5000
    error_rate: float = 0.05
    negative_feedback_rate: float = 0.30

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        """The thresholds the settings give."""
        return cls(
            min_answers=settings.suggest_min_answers,
            low_score_threshold=settings.low_score_threshold,
            low_score_rate=settings.suggest_low_score_rate,
            regeneration_rate=settings.suggest_regeneration_rate,
            slow_p95_ms=settings.suggest_slow_p95_ms,
            error_rate=settings.suggest_error_rate,
            negative_feedback_rate=settings.suggest_negative_feedback_rate,
        )


def severity(value: float, threshold: float) -> Severity:
    """``high`` at HIGH_AT times the threshold or more, ``medium`` at MEDIUM_AT, else ``low``."""
    ratio = value / threshold if threshold > 0 else float("inf")
    return "high" if ratio >= HIGH_AT else "medium" if ratio >= MEDIUM_AT else "low"


def _both(korean: str, english: str) -> str:
    return f"{korean} / {english}"


def _pct(rate: float) -> str:
    return f"{rate:.0%}" if rate >= 0.1 or rate == 0 else f"{rate:.1%}"


def low_retrieval(collections: Iterable[CollectionQuality], t: Thresholds) -> list[Suggestion]:
    """A collection whose answers' best retrieval score is often under the low-score threshold."""
    out = []
    for c in collections:
        if c.answers_with_retrieval < t.min_answers or c.low_score_rate < t.low_score_rate:
            continue
        name, rate, n, s = c.collection_name, c.low_score_rate, c.answers_with_retrieval, t.low_score_threshold
        out.append(Suggestion(
            "low_retrieval", severity(rate, t.low_score_rate), name,
            _both(
                f"{name}: 검색된 답변의 {_pct(rate)}가 최고 점수 {s} 미만입니다 (기준 {_pct(t.low_score_rate)}, "
                f"답변 {n:,}건) — 문서 분할·임베딩·리랭킹 설정을 점검하고 빠진 문서를 보강하세요",
                f"{name}: {_pct(rate)} of answers with retrieval had a best score under {s} (threshold "
                f"{_pct(t.low_score_rate)}, {n:,} answers) — review chunking, embeddings and reranking, "
                "and add the documents that are missing",
            ),
            {"answers_with_retrieval": n, "low_score_rate": rate, "low_score_threshold": s,
             "threshold": t.low_score_rate, "no_result_rate": c.no_result_rate, "p50_best_score": c.p50_best_score},
        ))
    return out


def knowledge_gap(gaps: Iterable[KnowledgeGap], t: Thresholds) -> list[Suggestion]:
    """A question group asked often (``CHATLOG_FAQ_MIN_COUNT``, the gaps' own rule) and answered from low scores.

    Severity grows as the mean best score falls: threshold / mean at MEDIUM_AT, HIGH_AT.
    """
    out = []
    s = t.low_score_threshold
    for gap in gaps:
        if gap.avg_best_score >= s:
            continue
        ko, en = (gap.collection_name,) * 2 if gap.collection_name else ALL
        q, n, avg = gap.question, gap.count, gap.avg_best_score
        out.append(Suggestion(
            "knowledge_gap", severity(s, max(avg, 0.01)), gap.collection_name,
            _both(
                f"{ko}: '{q}' 질문({n:,}회)의 답변은 평균 최고 점수 {avg:.2f}로 기준 {s} 미만입니다 "
                "— 이 주제의 문서를 추가하세요",
                f"{en}: '{q}' (asked {n:,} times) was answered from a mean best score of {avg:.2f}, under {s} "
                "— add a document on it",
            ),
            {"question": q, "count": n, "avg_best_score": avg, "low_score_threshold": s,
             "variants": [{"text": v.text, "count": v.count} for v in gap.variants[:5]]},
        ))
    return out


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _by(groups: Iterable[AnswerGroup], attribute: str) -> dict[str, AnswerGroup]:
    """Groups summed by model or reasoning level, the unnamed ('') left out."""
    out: dict[str, AnswerGroup] = {}
    for g in groups:
        key = getattr(g, attribute)
        if not key:
            continue
        total = out.get(key)
        if total is None:
            total = out[key] = AnswerGroup("", "", "")
        total.merge(g)
    return out


def high_regeneration(
    collections: Iterable[CollectionQuality], groups: Iterable[AnswerGroup], scope: str | None, t: Thresholds
) -> list[Suggestion]:
    """Answers regenerated often: by collection, and by model or reasoning level when one stands out.

    By model (level) only when at least two models (levels) have enough answers and
    this one is past the threshold and above the others together: with one model the
    collection's suggestion already says it. ``scope`` is the collection asked about (None: all).
    """
    out = []
    for c in collections:
        if c.answers < t.min_answers or c.regeneration_rate < t.regeneration_rate:
            continue
        name, rate, n = c.collection_name, c.regeneration_rate, c.answers
        out.append(Suggestion(
            "high_regeneration", severity(rate, t.regeneration_rate), name,
            _both(
                f"{name}: 답변의 {_pct(rate)}가 재생성되었습니다 (기준 {_pct(t.regeneration_rate)}, 답변 {n:,}건) "
                "— 재생성된 대화를 읽고 프롬프트와 검색 결과를 점검하세요",
                f"{name}: {_pct(rate)} of answers were regenerated (threshold {_pct(t.regeneration_rate)}, "
                f"{n:,} answers) — read the regenerated conversations and review the prompt and retrieval",
            ),
            {"answers": n, "regenerations": round(rate * n), "regeneration_rate": rate,
             "threshold": t.regeneration_rate},
        ))
    listed = list(groups)
    for attribute, ko_label, en_label, ko_action, en_action in (
        ("llm_model", "모델", "model", "이 모델의 매개변수를 점검하거나 다른 모델을 시험하세요",
         "review its parameters or try another model"),
        ("reasoning_level", "추론 수준", "reasoning level", "이 질문들에 더 높은 추론 수준을 시험하세요",
         "try a higher reasoning level for these questions"),
    ):
        totals = {k: g for k, g in _by(listed, attribute).items() if g.answers >= t.min_answers}
        if len(totals) < 2:
            continue
        for key, g in sorted(totals.items()):
            rate = _rate(g.regenerations, g.answers)
            others_answers = sum(o.answers for k, o in totals.items() if k != key)
            others = _rate(sum(o.regenerations for k, o in totals.items() if k != key), others_answers)
            if rate < t.regeneration_rate or rate <= others:
                continue
            out.append(Suggestion(
                "high_regeneration", severity(rate, t.regeneration_rate), scope,
                _both(
                    f"{ko_label} {key}: 답변의 {_pct(rate)}가 재생성되었습니다 (다른 {ko_label} {_pct(others)}, "
                    f"답변 {g.answers:,}건) — {ko_action}",
                    f"{en_label} {key}: {_pct(rate)} of its answers were regenerated (other {en_label}s "
                    f"{_pct(others)}, {g.answers:,} answers) — {en_action}",
                ),
                {attribute: key, "answers": g.answers, "regenerations": g.regenerations, "regeneration_rate": rate,
                 "others_regeneration_rate": others, "others_answers": others_answers,
                 "threshold": t.regeneration_rate},
            ))
    return out


def slow_responses(groups: Iterable[AnswerGroup], scope: str | None, t: Thresholds) -> list[Suggestion]:
    """A model whose p95 response time is at or above the threshold (over enough timed answers)."""
    out = []
    for model, g in sorted(_by(groups, "llm_model").items()):
        if g.response_time_count < t.min_answers:
            continue
        p50, p95, p99 = g.sketch.percentiles()
        if p95 is None or p95 < t.slow_p95_ms:
            continue
        n = g.response_time_count
        out.append(Suggestion(
            "slow_responses", severity(p95, t.slow_p95_ms), scope,
            _both(
                f"모델 {model}: 응답 시간 p95가 {p95:,.0f} ms입니다 (기준 {t.slow_p95_ms:,} ms, 응답 {n:,}건) "
                "— max_tokens 축소, 스트리밍, 더 빠른 모델을 검토하세요",
                f"model {model}: p95 response time is {p95:,.0f} ms (threshold {t.slow_p95_ms:,} ms, {n:,} answers) "
                "— consider a lower max_tokens, streaming or a faster model",
            ),
            {"llm_model": model, "answers": n, "p50_response_time_ms": p50, "p95_response_time_ms": p95,
             "p99_response_time_ms": p99, "avg_response_time_ms": round(g.response_time_sum_ms / n, 2),
             "threshold_ms": t.slow_p95_ms},
        ))
    return out


def errors(
    collections: Iterable[CollectionQuality], error_types: Mapping[str, Mapping[str, int]], t: Thresholds
) -> list[Suggestion]:
    """A collection whose answers often fail, with its most frequent error types ('' shown as ``unknown``)."""
    out = []
    for c in collections:
        if c.answers < t.min_answers or c.error_rate < t.error_rate:
            continue
        name, rate, n = c.collection_name, c.error_rate, c.answers
        kinds = sorted(error_types.get(name, {}).items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_ERROR_TYPES]
        top = [{"type": kind or "unknown", "count": count} for kind, count in kinds]
        listed = ", ".join(f"{e['type']} {e['count']:,}" for e in top) or "-"
        out.append(Suggestion(
            "errors", severity(rate, t.error_rate), name,
            _both(
                f"{name}: 답변의 {_pct(rate)}가 오류였습니다 (기준 {_pct(t.error_rate)}, 답변 {n:,}건; "
                f"주요 오류: {listed}) — 이 오류들의 원인을 해결하세요",
                f"{name}: {_pct(rate)} of answers failed (threshold {_pct(t.error_rate)}, {n:,} answers; "
                f"most frequent: {listed}) — fix their causes",
            ),
            {"answers": n, "errors": round(rate * n), "error_rate": rate, "threshold": t.error_rate,
             "top_error_types": top},
        ))
    return out


def negative_feedback(
    collections: Iterable[CollectionQuality], feedback: Mapping[str, tuple[int, int]], t: Thresholds
) -> list[Suggestion]:
    """A collection whose feedback is often negative (``feedback``: positive, negative per collection)."""
    out = []
    for c in collections:
        positive, negative = feedback.get(c.collection_name, (0, 0))
        n = positive + negative
        rate = _rate(negative, n)
        if n < t.min_answers or rate < t.negative_feedback_rate:
            continue
        name = c.collection_name
        out.append(Suggestion(
            "negative_feedback", severity(rate, t.negative_feedback_rate), name,
            _both(
                f"{name}: 피드백의 {_pct(rate)}가 부정적입니다 (기준 {_pct(t.negative_feedback_rate)}, 피드백 "
                f"{n:,}건) — 부정 피드백을 받은 대화를 읽고 답변과 문서를 점검하세요",
                f"{name}: {_pct(rate)} of feedback was negative (threshold {_pct(t.negative_feedback_rate)}, "
                f"{n:,} pieces) — read the conversations with negative feedback and review their answers "
                "and documents",
            ),
            {"feedback": n, "positive": positive, "negative": negative, "negative_feedback_rate": rate,
             "threshold": t.negative_feedback_rate},
        ))
    return out


def ranked(suggestions: Iterable[Suggestion]) -> list[Suggestion]:
    """Most severe first; then by kind and collection, so the order is deterministic."""
    return sorted(suggestions, key=lambda s: (SEVERITY_ORDER[s.severity], s.kind, s.collection_name or "", s.message))
