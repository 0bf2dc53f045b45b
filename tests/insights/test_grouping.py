"""Question grouping: the issue's own examples, determinism, and the labelled set's floor."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from bench.grouping import HOLDOUT, HOLDOUT2, LABELLED, evaluate, load_labelled
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


def test_a_specific_intent_never_joins_a_question_without_one(grouper: QuestionGrouper) -> None:
    # "application" asks nothing specific, "length" asks how long: a wildcard no more.
    assert not _together(grouper, "maternity leave application", "maternity leave length")
    assert not _together(grouper, "VPN connection from home", "VPN connection error")
    assert _together(grouper, "휴가 신청", "휴가 신청 방법")  # "how" alone is no specific intent


def test_a_recurring_modifier_makes_another_question(grouper: QuestionGrouper) -> None:
    general = ["휴가 신청 방법 알려주세요", "휴가 신청은 어떻게 하나요?"]
    maternity = ["출산휴가 신청 방법", "출산 휴가 신청 절차"]
    groups = grouper.group(dict.fromkeys(general + maternity, 1))
    assert sorted(sorted(t for t, _ in g.variants) for g in groups) == sorted([sorted(general), sorted(maternity)])
    # A one-off modifier is a detail of the same question.
    assert _together(grouper, "신규 사원증 발급 방법", "사원증 발급 방법")


def test_a_bridging_variant_does_not_join_two_aspects(grouper: QuestionGrouper) -> None:
    # The bridge ("lost, how to get a new one") may join either side, never both.
    lost = {"사원증 분실 신고", "사원증을 잃어버렸어요"}
    issue = {"사원증 발급 신청", "사원증은 어떻게 발급받나요"}
    groups = grouper.group(dict.fromkeys([*lost, "사원증 분실 시 재발급 방법", *issue], 1))
    assert not any({t for t, _ in g.variants} & lost and {t for t, _ in g.variants} & issue for g in groups)


def test_korean_and_english_questions_never_join(grouper: QuestionGrouper) -> None:
    assert not _together(grouper, "VPN 오류 해결 방법", "VPN connection error")


def test_spelling_variants_agree() -> None:
    terms = QuestionTerms()
    assert terms.terms("비밀번호 재설정 방법") == terms.terms("비밀번호 초기화 방법")  # a prefix stays on its noun
    assert "~howoften" in terms.terms("비밀번호는 몇 달마다 변경해야 하나요")
    assert "~howoften" in terms.terms("비밀번호 변경 주기")
    assert set(terms.terms("setting up Outlook")) == set(terms.terms("Outlook setup"))
    assert "~howlong" in terms.terms("How many weeks of maternity leave do I get?")
    assert "~problem" not in terms.terms("배송은 며칠 걸리나요")  # it takes time, nothing is stuck
    assert "~problem" in terms.terms("프린터 용지 걸림")


def test_groups_count_variants_most_frequent_first(grouper: QuestionGrouper) -> None:
    counts = {"연차 휴가 신청 방법": 2, "연차휴가는 어떻게 신청하나요?": 5, "육아휴직 기간": 3}
    groups = grouper.group(counts)
    assert [(g.question, g.count) for g in groups] == [("연차휴가는 어떻게 신청하나요?", 7), ("육아휴직 기간", 3)]
    assert groups[0].variants == [("연차휴가는 어떻게 신청하나요?", 5), ("연차 휴가 신청 방법", 2)]
    assert grouper.group(dict(reversed(list(counts.items())))) == groups


def test_one_grouper_serves_threads_at_once(grouper: QuestionGrouper) -> None:
    inputs = [Counter(q for _, q in load_labelled(path)) for path in (LABELLED, HOLDOUT, HOLDOUT2)] * 2
    alone = [grouper.group(counts) for counts in inputs]
    with ThreadPoolExecutor(len(inputs)) as pool:
        assert list(pool.map(grouper.group, inputs)) == alone


def test_labelled_set_meets_the_targets(grouper: QuestionGrouper) -> None:
    precision, recall, _, _ = evaluate(grouper, load_labelled(LABELLED))
    assert precision >= 0.95 and recall >= 0.80


def test_held_out_sets_keep_the_precision_target(grouper: QuestionGrouper) -> None:
    # Recall is not at its target on the set never tuned on (see bench.grouping); precision
    # is, and the recall floors guard against a change that loses today's figures.
    precision, recall, _, _ = evaluate(grouper, load_labelled(HOLDOUT))
    assert precision >= 0.95 and recall >= 0.80  # its errors were studied: at the targets
    precision, recall, _, _ = evaluate(grouper, load_labelled(HOLDOUT2))
    assert precision >= 0.95 and recall >= 0.45  # never tuned on
