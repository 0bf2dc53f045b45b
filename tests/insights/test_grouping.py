"""Question grouping: the issue's own examples, determinism, and the labelled set's floor."""

from __future__ import annotations

import pytest

from bench.grouping import HOLDOUT, LABELLED, evaluate, load_labelled
from insights.grouping import QuestionGrouper
from insights.terms import QuestionTerms


@pytest.fixture(scope="module")
def grouper() -> QuestionGrouper:
    return QuestionGrouper(QuestionTerms())


def _together(grouper: QuestionGrouper, *questions: str) -> bool:
    groups = grouper.group(dict.fromkeys(questions, 1))
    return len(groups) == 1


def test_paraphrases_are_one_group(grouper: QuestionGrouper) -> None:
    assert _together(grouper, "연차 휴가 신청 방법", "연차휴가는 어떻게 신청하나요?")
    assert _together(grouper, "How do I reset my password?", "steps to reset password")


def test_different_questions_stay_apart(grouper: QuestionGrouper) -> None:
    assert not _together(grouper, "육아휴직 기간", "연차 기간")
    assert not _together(grouper, "육아휴직 기간", "육아휴직 신청 방법")
    assert not _together(grouper, "VPN 접속 방법", "VPN 접속 오류")


def test_groups_count_variants_most_frequent_first(grouper: QuestionGrouper) -> None:
    counts = {"연차 휴가 신청 방법": 2, "연차휴가는 어떻게 신청하나요?": 5, "육아휴직 기간": 3}
    groups = grouper.group(counts)
    assert [(g.question, g.count) for g in groups] == [("연차휴가는 어떻게 신청하나요?", 7), ("육아휴직 기간", 3)]
    assert groups[0].variants == [("연차휴가는 어떻게 신청하나요?", 5), ("연차 휴가 신청 방법", 2)]
    assert grouper.group(dict(reversed(list(counts.items())))) == groups


def test_labelled_set_meets_the_targets(grouper: QuestionGrouper) -> None:
    precision, recall, _, _ = evaluate(grouper, load_labelled(LABELLED))
    assert precision >= 0.95 and recall >= 0.80


def test_held_out_set_is_scored(grouper: QuestionGrouper) -> None:
    # Not yet at the targets on questions it was not tuned on (see bench.grouping); this
    # guards against a change that makes it worse than today's figures.
    precision, recall, _, _ = evaluate(grouper, load_labelled(HOLDOUT))
    assert precision >= 0.65 and recall >= 0.55
