"""PII redaction of message text: what is replaced, what is left alone."""

from __future__ import annotations

import random
import re

import pytest

from ingestor.redaction import (
    PiiRedactor,
    RedactionRule,
    is_plausible_rrn,
    passes_luhn,
)

REDACTED_EXAMPLES: list[tuple[str, str]] = [
    # Korean mobiles in every common spelling.
    ("연락처는 010-1234-5678 입니다", "연락처는 [PHONE] 입니다"),
    ("01012345678로 전화 주세요", "[PHONE]로 전화 주세요"),
    ("제 번호 010 1234 5678이에요", "제 번호 [PHONE]이에요"),
    ("010.9876.5432", "[PHONE]"),
    ("예전 번호는 011-123-4567", "예전 번호는 [PHONE]"),
    ("016-234-5678, 017-345-6789", "[PHONE], [PHONE]"),
    ("018-1234-5678 / 019-123-4567", "[PHONE] / [PHONE]"),
    # Landlines and internet phones.
    ("서울 사무실 02-123-4567", "서울 사무실 [PHONE]"),
    ("대표번호 02-1234-5678로", "대표번호 [PHONE]로"),
    ("경기 031-123-4567", "경기 [PHONE]"),
    ("제주 064-712-3456", "제주 [PHONE]"),
    ("(02) 3456-7890번", "[PHONE]번"),
    ("인터넷전화 070-1234-5678", "인터넷전화 [PHONE]"),
    # International.
    ("+82 10-1234-5678로 연락", "[PHONE]로 연락"),
    ("+82-10-1234-5678", "[PHONE]"),
    ("call me at +1 415 555 2671 tomorrow", "call me at [PHONE] tomorrow"),
    ("London office: +44 20 7946 0958.", "London office: [PHONE]."),
    ("US: +1 (415) 555-2671", "US: [PHONE]"),
    # Email.
    ("메일은 hong.gildong@example.co.kr로 보내주세요", "메일은 [EMAIL]로 보내주세요"),
    ("write to john+hr@mail.example.com.", "write to [EMAIL]."),
    # Resident registration numbers, Korean and foreign.
    ("주민번호 900101-1234567 입니다", "주민번호 [RRN] 입니다"),
    ("주민등록번호는9001012234567", "주민등록번호는[RRN]"),
    ("2000년생 010203-3123456", "2000년생 [RRN]"),
    ("외국인등록번호 850315-5123456", "외국인등록번호 [RRN]"),
    # Luhn-valid cards, grouped and ungrouped.
    ("카드번호 4111 1111 1111 1111 결제", "카드번호 [CARD] 결제"),
    ("card 5555-5555-5555-4444 exp 12/27", "card [CARD] exp 12/27"),
    ("4111111111111111", "[CARD]"),
    ("아멕스 3782 822463 10005", "아멕스 [CARD]"),
    ("Visa 13자리 4222222222222", "Visa 13자리 [CARD]"),
    # Several kinds in one message.
    (
        "이름 홍길동, 전화 010-1234-5678, 메일 hong@example.com, 주민번호 900101-1234567",
        "이름 홍길동, 전화 [PHONE], 메일 [EMAIL], 주민번호 [RRN]",
    ),
]

KEPT_EXAMPLES: list[str] = [
    "주문번호 2024112900123 배송 조회 부탁드려요",
    "주문번호 20241129001234",
    "4111 1111 1111 1112",
    "2024-11-29에 신청했어요",
    "2024.11.29 기준",
    "회의는 14:30:00에 시작",
    "비밀번호 끝자리 1234",
    "사번 123456",
    "버전 v1.2.3에서 v10.20.30으로",
    "급여 1,234,000원 입금",
    "2024년 11월 29일 오후 3시",
    "900230-1234567",
    "900101-9234567",
    "ISBN 978-89-123-4567-8",
    "09:00-18:00 근무",
    "잔여 연차 15일, 사용 3.5일",
]


@pytest.fixture(scope="module")
def redactor() -> PiiRedactor:
    """The default redactor without extra patterns."""
    return PiiRedactor.default()


@pytest.mark.parametrize(("text", "expected"), REDACTED_EXAMPLES)
def test_pii_is_replaced_by_typed_placeholder(redactor: PiiRedactor, text: str, expected: str) -> None:
    """Each PII kind becomes its placeholder and the surrounding text is kept exactly."""
    assert redactor.redact(text) == expected


@pytest.mark.parametrize("text", KEPT_EXAMPLES)
def test_non_pii_numbers_are_left_alone(redactor: PiiRedactor, text: str) -> None:
    """Order numbers, dates, times, short runs, versions, amounts are not PII."""
    assert redactor.redact(text) == text


def test_table_sizes_meet_the_required_coverage() -> None:
    """The example tables keep at least 20 redacted and 10 kept cases."""
    assert len(REDACTED_EXAMPLES) >= 20
    assert len(KEPT_EXAMPLES) >= 10


def test_digit_boundaries_stop_matches_inside_longer_runs(redactor: PiiRedactor) -> None:
    """A phone-shaped slice of a longer digit run is not redacted."""
    text = "송장 9901012345678901234"
    assert redactor.redact(text) == text


def test_korean_text_around_matches_is_preserved(redactor: PiiRedactor) -> None:
    """Hangul, punctuation, spacing and newlines outside matches are untouched."""
    text = "안녕하세요!\n  제 연락처는 010-1234-5678이고,\t메일은 a.b@corp.kr 입니다 :)"
    expected = "안녕하세요!\n  제 연락처는 [PHONE]이고,\t메일은 [EMAIL] 입니다 :)"
    assert redactor.redact(text) == expected


def test_plain_text_without_digits_or_at_is_returned_unchanged(redactor: PiiRedactor) -> None:
    """The fast path returns ordinary chat text as it is."""
    text = "연차 휴가를 신청하려면 어떻게 해야 하나요? 3일 남았어요."
    assert redactor.redact(text) is text


def test_extra_pattern_is_replaced_by_its_name(redactor: PiiRedactor) -> None:
    """A NAME=REGEX extra pattern redacts its matches as [NAME]."""
    custom = PiiRedactor.default(["EMPLOYEE_ID=EMP-[0-9]{5}"])
    text = "사번 EMP-12345, 전화 010-1234-5678"
    assert custom.redact(text) == "사번 [EMPLOYEE_ID], 전화 [PHONE]"
    assert redactor.redact(text) == "사번 EMP-12345, 전화 [PHONE]"


def test_extra_pattern_runs_even_on_text_without_digits() -> None:
    """The digit/@ fast path does not skip user patterns, which may match anything."""
    custom = PiiRedactor.default(["PROJECT=프로젝트\\s?[가-힣]+"])
    assert custom.redact("프로젝트 하늘 일정 알려줘") == "[PROJECT] 일정 알려줘"


def test_extra_pattern_may_contain_equals_sign() -> None:
    """Only the first '=' separates the name from the regex."""
    custom = PiiRedactor.default(["TOKEN=token=[a-z0-9]{8}"])
    assert custom.redact("url?token=abcd1234&x=1") == "url?[TOKEN]&x=1"


def test_extra_pattern_matching_empty_string_inserts_nothing() -> None:
    """A pattern that can match nothing leaves the gaps between characters alone."""
    custom = PiiRedactor.default(["MAYBE=x*"])
    assert custom.redact("abc xx") == "abc [MAYBE]"


def test_invalid_extra_regex_raises_value_error_naming_it() -> None:
    """A broken regex is rejected at start-up with its name in the message."""
    with pytest.raises(ValueError, match="BROKEN"):
        PiiRedactor.default(["BROKEN=[0-9"])


@pytest.mark.parametrize("spec", ["NO_EQUALS_SIGN", "=abc", "BAD NAME=abc", "EMPTY="])
def test_malformed_extra_spec_raises_value_error(spec: str) -> None:
    """Specs without a NAME, with a bad NAME or without a regex are rejected."""
    with pytest.raises(ValueError, match="invalid redaction pattern"):
        PiiRedactor.default([spec])


def test_rules_run_in_order_so_earlier_rules_win() -> None:
    """With two rules matching the same text, the first one's placeholder is used."""
    first = RedactionRule("FIRST", re.compile(r"secret"))
    second = RedactionRule("SECOND", re.compile(r"secret"))
    assert PiiRedactor([first, second]).redact("a secret") == "a [FIRST]"
    assert PiiRedactor([second, first]).redact("a secret") == "a [SECOND]"


def test_validate_rejecting_a_match_keeps_it() -> None:
    """A rule's validate returning False leaves that match in the text."""
    only_even = RedactionRule("EVEN", re.compile(r"[0-9]+"), validate=lambda digits: int(digits) % 2 == 0)
    assert PiiRedactor([only_even]).redact("1 2 3 4") == "1 [EVEN] 3 [EVEN]"


def test_rrn_wins_over_card_and_phone(redactor: PiiRedactor) -> None:
    """A valid-looking RRN is typed as RRN even where another rule could match."""
    assert redactor.redact("9001011234567") == "[RRN]"


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("4111111111111111", True),
        ("4111 1111 1111 1111", True),
        ("378282246310005", True),
        ("4111111111111112", False),
        ("2024112900123", False),
        ("", False),
    ],
)
def test_luhn_check(number: str, valid: bool) -> None:
    """passes_luhn accepts test card numbers and rejects altered ones."""
    assert passes_luhn(number) is valid


@pytest.mark.parametrize(
    ("rrn", "plausible"),
    [
        ("900101-1234567", True),
        ("000229-3234567", True),  # 2000 was a leap year
        ("010229-3234567", False),  # 2001 was not
        ("900431-1234567", False),
        ("900101-0234567", False),
        ("900101-9234567", False),
        ("90010112345", False),
    ],
)
def test_rrn_plausibility(rrn: str, plausible: bool) -> None:
    """is_plausible_rrn checks the birth date exists in the century the 7th digit gives."""
    assert is_plausible_rrn(rrn) is plausible


_PLACEHOLDER = re.compile(r"\[[A-Z_]+\]")


def full_width(text: str) -> str:
    """ASCII 0x21..0x7E as the full-width forms an IME types (U+FF01..U+FF5E)."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def full_width_outside_placeholders(text: str) -> str:
    """``full_width`` of everything but the ``[KIND]`` placeholders the redactor inserts."""
    pieces = _PLACEHOLDER.split(text)
    kinds = _PLACEHOLDER.findall(text)
    return "".join(full_width(p) + (kinds[i] if i < len(kinds) else "") for i, p in enumerate(pieces))


@pytest.mark.parametrize(("text", "expected"), REDACTED_EXAMPLES)
def test_full_width_pii_is_replaced_and_the_rest_kept_as_typed(
    redactor: PiiRedactor, text: str, expected: str
) -> None:
    """Every PII example typed in full-width forms is redacted; the text around it stays full-width."""
    assert redactor.redact(full_width(text)) == full_width_outside_placeholders(expected)


@pytest.mark.parametrize("text", KEPT_EXAMPLES)
def test_full_width_non_pii_is_left_alone(redactor: PiiRedactor, text: str) -> None:
    """The translation is only for matching: non-PII full-width text comes back unchanged."""
    assert redactor.redact(full_width(text)) == full_width(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("메일 ｋｉｍ＠ｅｘａｍｐｌｅ．ｃｏｍ 로 주세요", "메일 [EMAIL] 로 주세요"),
        ("전화　０１０　１２３４　５６７８", "전화　[PHONE]"),  # ideographic spaces as separators
        ("섞어서 010－１２３４-5678, kim＠example.com", "섞어서 [PHONE], [EMAIL]"),
        ("카드 ４１１１－１１１１－１１１１－１１１１, 폰 ０１０-1234-5678", "카드 [CARD], 폰 [PHONE]"),
    ],
)
def test_mixed_full_width_and_ascii(redactor: PiiRedactor, text: str, expected: str) -> None:
    """Full-width and ASCII forms mixed in one number or one message are all found."""
    assert redactor.redact(text) == expected


def test_hangul_text_without_full_width_forms_takes_the_plain_path(redactor: PiiRedactor) -> None:
    """Text with no digit, no '@' and no full-width form comes back as the same object."""
    text = "연차 휴가는 어떻게 신청하나요? 팀장님 승인이 필요한가요"
    assert redactor.redact(text) is text


def test_full_width_input_is_redacted_like_its_ascii_form(redactor: PiiRedactor) -> None:
    """For random PII-like text, typing it full-width redacts the same spans and keeps the rest as typed."""
    rng = random.Random(20241129)
    alphabet = "0123456789" * 4 + "abkimz.@-+() " + "연락처메일"
    pieces = ["010-1234-5678", "kim@example.com", "900101-1234567", "4111 1111 1111 1111", "+82 10 1234 5678"]
    for _ in range(2000):
        parts = [rng.choice(pieces) if rng.random() < 0.3 else "".join(rng.choices(alphabet, k=rng.randrange(1, 12)))
                 for _ in range(rng.randrange(1, 5))]
        text = "".join(parts)
        assert redactor.redact(full_width(text)) == full_width_outside_placeholders(redactor.redact(text)), text
