"""Redaction's fast path (one scan for digits, '@' and full-width forms) never skips a match."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from ingestor.redaction import PiiRedactor, default_rules

# What the rules look at, the full-width forms of it, and Hangul around it.
_ALPHABET = st.sampled_from(
    list("0123456789@.-+ ()_%abcxyz") + list("０１２３４５６７８９＠．－＋（）ａｂｃ\u3000") + list("가나다연락처 ")
)
# Real PII next to near misses, so that matches are common rather than a fluke of the generator.
_FRAGMENTS = st.sampled_from([
    "010-1234-5678", "02-123-4567", "(02) 123-4567", "kim@example.com", "a.b@c.co",
    "4111 1111 1111 1111", "900101-1234567", "+82 10 1234 5678", "+1 (415) 555-0100",
    "０２－１２３－４５６７", "ｋｉｍ＠ｅｘａｍｐｌｅ．ｃｏｍ", "12", "123456", "1588-1234", "제12조",
])
_TEXTS = st.one_of(
    st.text(_ALPHABET, max_size=60),
    st.text(max_size=40),
    st.lists(st.one_of(_FRAGMENTS, st.text(_ALPHABET, max_size=4)), max_size=6).map("".join),
)

_FAST = PiiRedactor.default()
# The same rules with no promise about '@' or digits: every text goes through every rule.
_EVERY_RULE = PiiRedactor([dataclasses.replace(r, matches_need_at_or_digits=False) for r in default_rules()])


@settings(max_examples=400, deadline=None)
@given(_TEXTS)
def test_fast_path_redacts_what_every_rule_would(text: str) -> None:
    assert _FAST.redact(text) == _EVERY_RULE.redact(text)


def test_fast_path_cases() -> None:
    """Text with nothing to look at, a few digits, an address, and full-width forms."""
    assert _FAST.redact("연차 휴가는 어떻게 신청하나요?") == "연차 휴가는 어떻게 신청하나요?"
    assert _FAST.redact("사내 규정 제12조에 따르면") == "사내 규정 제12조에 따르면"
    assert _FAST.redact("서울 02-123-4567") == "서울 [PHONE]"  # nine digits: the fewest a rule needs
    assert _FAST.redact("메일 kim@example.com 으로") == "메일 [EMAIL] 으로"
    assert _FAST.redact("번호 ０１０－１２３４－５６７８ 입니다") == "번호 [PHONE] 입니다"
    assert _FAST.redact("ｋｉｍ＠ｅｘａｍｐｌｅ．ｃｏｍ") == "[EMAIL]"
