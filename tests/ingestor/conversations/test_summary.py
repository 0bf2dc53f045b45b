"""Extractive conversation summaries: opening question plus topic words."""

from __future__ import annotations

import time

import pytest

from ingestor.conversations.summary import (
    MAX_SUMMARY_CHARS,
    MAX_TOPIC_CHARS,
    ExtractiveSummarizer,
    Summarizer,
    capped_summary,
    topic_tokens,
    trim_at_word_boundary,
)

SUMMARIZER = ExtractiveSummarizer()


def test_korean_conversation_gives_opening_and_topics() -> None:
    """A Korean chat yields its first question and its recurring nouns."""
    messages = [
        ("user", "연차 휴가를 신청하려면 어떻게 해야 하나요?"),
        ("assistant", "인사시스템에서 휴가 메뉴로 신청하시면 됩니다."),
        ("user", "작년 휴가는 이월되나요? 연차 수당도 궁금해요"),
        ("user", "복지제도 문의는 어디로 하나요?"),
    ]
    assert SUMMARIZER.summarize(messages) == (
        "연차 휴가를 신청하려면 어떻게 해야 하나요? — topics: 연차, 휴가, 작년, 수당, 복지제도"
    )


def test_english_conversation_gives_opening_and_topics() -> None:
    """An English chat yields its first question and its most frequent content words."""
    messages = [
        ("user", "How do I reset my VPN password?"),
        ("assistant", "Open the VPN portal and choose reset password."),
        ("user", "The VPN client still rejects the new password."),
        ("user", "Is there a password expiry policy?"),
    ]
    assert SUMMARIZER.summarize(messages) == (
        "How do I reset my VPN password? — topics: password, vpn, reset, client, rejects"
    )


def test_assistant_words_do_not_become_topics() -> None:
    """Only user messages feed the topic counts."""
    messages = [
        ("user", "출장비 정산"),
        ("assistant", "영수증 영수증 영수증 영수증"),
    ]
    assert SUMMARIZER.summarize(messages) == "출장비 정산 — topics: 출장비, 정산"


def test_korean_particles_are_stripped_so_forms_count_together() -> None:
    """휴가를, 휴가는, 휴가가 and 휴가 all count as one topic."""
    assert topic_tokens("휴가를 휴가는 휴가가 휴가 회사에서 회사로") == [
        "휴가", "휴가", "휴가", "휴가", "회사", "회사",
    ]  # fmt: skip


def test_two_syllable_words_keep_a_particle_like_ending() -> None:
    """Short words such as 휴가 and 평가 are never stripped to one syllable."""
    assert topic_tokens("휴가 평가 제도") == ["휴가", "평가", "제도"]


def test_nouns_ending_like_particles_are_kept_whole() -> None:
    """복지제도 and 화상회의 are nouns, not 복지제 + 도 or 화상회 + 의."""
    assert topic_tokens("복지제도 화상회의 고객문의는") == ["복지제도", "화상회의", "고객문의"]


def test_stopwords_and_numbers_are_dropped() -> None:
    """Korean and English stopwords, predicates and pure numbers are no topics."""
    text = "그리고 어떻게 무엇을 알려주세요 해주세요 있나요 the what is 2024 30 3 수당"
    assert topic_tokens(text) == ["수당"]


def test_topics_are_nfkc_and_casefolded() -> None:
    """Full-width and upper-case spellings count as the same word."""
    assert topic_tokens("ＶＰＮ vpn Vpn") == ["vpn", "vpn", "vpn"]


def test_redaction_placeholders_are_not_topics() -> None:
    """[EMAIL] or [PHONE] left by redaction are not words the user talked about."""
    assert topic_tokens("[EMAIL] 으로 [PHONE] 계정") == ["계정"]


def test_at_most_five_topics_most_frequent_first() -> None:
    """Topics are capped at five, ordered by count, ties by first use."""
    messages = [("user", "alpha beta gamma delta epsilon zeta"), ("user", "zeta zeta epsilon")]
    assert SUMMARIZER.summarize(messages).endswith("topics: zeta, epsilon, alpha, beta, gamma")


def test_long_opening_question_is_trimmed_at_word_boundary() -> None:
    """A question over 120 characters is cut at a space and ends in an ellipsis."""
    question = (
        "The quarterly expense reimbursement policy for international business travel "
        "including per diem rates, lodging caps, and currency conversion rules"
    )
    opening = SUMMARIZER.summarize([("user", question)]).split(" — topics: ")[0]
    assert opening == (
        "The quarterly expense reimbursement policy for international business travel "
        "including per diem rates, lodging caps, and…"
    )
    assert len(opening) <= 121


def test_short_opening_question_is_kept_whole() -> None:
    """A question within the limit is not cut and gets no ellipsis."""
    assert trim_at_word_boundary("휴가 며칠?", 120) == "휴가 며칠?"


def test_text_without_spaces_is_cut_mid_word() -> None:
    """Unspaced text is cut at the limit rather than shrunk to nothing."""
    assert trim_at_word_boundary("가" * 200, 120) == "가" * 120 + "…"


def test_opening_whitespace_is_collapsed() -> None:
    """Newlines and runs of spaces in the question become single spaces."""
    summary = SUMMARIZER.summarize([("user", "  연차\n\n 신청   방법  ")])
    assert summary == "연차 신청 방법 — topics: 연차, 신청, 방법"


def test_opening_is_first_non_blank_user_message() -> None:
    """Assistant messages and blank user messages do not open the summary."""
    messages = [("assistant", "무엇을 도와드릴까요?"), ("user", "   "), ("user", "급여명세서")]
    assert SUMMARIZER.summarize(messages) == "급여명세서 — topics: 급여명세서"


def test_topics_part_is_omitted_when_there_are_none() -> None:
    """A question made only of stopwords gives just the question."""
    assert SUMMARIZER.summarize([("user", "안녕하세요")]) == "안녕하세요"


@pytest.mark.parametrize(
    "messages",
    [[], [("assistant", "안녕하세요, 무엇을 도와드릴까요?")], [("user", " \n ")]],
)
def test_no_user_messages_gives_empty_summary(messages: list[tuple[str, str]]) -> None:
    """Without anything the user said, the summary is the empty string."""
    assert SUMMARIZER.summarize(messages) == ""


def test_extractive_summarizer_satisfies_summarizer_protocol() -> None:
    """ExtractiveSummarizer can stand in wherever a Summarizer is expected."""
    summarizer: Summarizer = ExtractiveSummarizer(max_question_chars=10, max_topics=1)
    assert summarizer.summarize([("user", "vpn vpn password")]) == "vpn vpn…" + (" — topics: vpn")


@pytest.mark.parametrize(("max_question_chars", "max_topics"), [(0, 5), (120, -1)])
def test_invalid_limits_are_rejected(max_question_chars: int, max_topics: int) -> None:
    """A non-positive question length or a negative topic count is a ValueError."""
    with pytest.raises(ValueError):
        ExtractiveSummarizer(max_question_chars=max_question_chars, max_topics=max_topics)


def test_words_longer_than_a_topic_are_not_topics() -> None:
    """Pasted ids and unspaced runs are not topics: the summary stays a few hundred characters."""
    longest = "y" * MAX_TOPIC_CHARS
    messages = [("user", f"Refunds? {'x' * (MAX_TOPIC_CHARS + 1)} {longest}"), ("user", "z" * 1_000_000)]
    summary = SUMMARIZER.summarize(messages)
    assert summary == f"Refunds? {'x' * (MAX_TOPIC_CHARS + 1)} {longest} — topics: refunds, {longest}"
    assert len(summary) <= MAX_SUMMARY_CHARS


def test_only_the_start_of_a_huge_conversation_is_read() -> None:
    """Megabytes of user text are summarised from their first part, in milliseconds, not seconds."""
    words = " ".join(f"휴가를 vacation policy{i % 50} 연차" for i in range(150_000))
    started = time.process_time()
    summary = SUMMARIZER.summarize([("user", words)] * 3)
    assert time.process_time() - started < 0.5
    assert summary.startswith("휴가를 vacation") and "topics: 휴가" in summary


def test_capped_summary_cuts_any_summarizer_at_a_word_boundary() -> None:
    """Whatever a summariser returns is stored at most MAX_SUMMARY_CHARS (plus the ellipsis) long."""
    long_summary = " ".join(["topic"] * 1000)
    capped = capped_summary(long_summary)
    assert len(capped) <= MAX_SUMMARY_CHARS + 1 and capped.endswith("topic…")
    assert capped_summary("short one") == "short one"
