"""PII redaction of message text before it is stored: in every event (``RecordBuilder``) and conversation.

Every match of a rule is replaced by a typed placeholder such as ``[EMAIL]`` or
``[PHONE]`` so that stored conversations stay readable while the personal
data itself never reaches the disk.

The patterns look at ASCII digits only (``[0-9]``, not ``\\d``): chat text is
full of Hangul and the odd non-Latin digit, and a Unicode-aware class would both
slow every scan and widen the false-positive surface. Full-width forms, which
Korean and Japanese input methods type (``０１０－１２３４－５６７８``,
``ｋｉｍ＠ｅｘａｍｐｌｅ．ｃｏｍ``), are the exception: U+FF01..U+FF5E map one to one
onto ASCII 0x21..0x7E (and U+3000 onto the space), so such text is matched in its
ASCII translation, which has the same length, and the same spans of the original
are replaced.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from shared.settings import Settings

# Every default rule needs an '@' or at least this many digits to match (the
# shortest is a Seoul number, 02-123-4567, with nine), so text with neither can
# skip all of them; that is most chat messages.
FAST_PATH_MIN_DIGITS = 7

_ASCII_DIGITS = "0123456789"

_EXTRA_RULE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")

# What decides the fast path: ASCII digits, '@' and the full-width forms.
_LOOK_AT = re.compile("[0-9@\u3000\uff01-\uff5e]")
_TO_ASCII = {0x3000: 0x20, **{code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}}


@dataclass(frozen=True, slots=True)
class RedactionRule:
    """One kind of PII: a pattern, an optional check on each match, a placeholder kind.

    ``validate`` receives the matched text and returns False to leave a match
    alone (e.g. a digit run that fails the Luhn check is not a card number).
    ``matches_need_at_or_digits`` promises that every match contains an '@' or
    at least ``FAST_PATH_MIN_DIGITS`` ASCII digits; such rules are skipped for
    text that has neither.
    """

    kind: str
    pattern: re.Pattern[str]
    validate: Callable[[str], bool] | None = None
    matches_need_at_or_digits: bool = False

    @property
    def placeholder(self) -> str:
        """The text that replaces each match, e.g. ``[EMAIL]``."""
        return f"[{self.kind}]"


def _only_digits(text: str) -> str:
    return "".join(char for char in text if char in _ASCII_DIGITS)


def passes_luhn(number: str) -> bool:
    """Whether the digits of ``number`` (separators ignored) pass the Luhn checksum."""
    digits = _only_digits(number)
    if not digits:
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


# The 7th digit encodes sex and century: 1/2 (and 5/6 for foreigners) were born
# in the 1900s, 3/4 (7/8) in the 2000s. 9/0 (1800s) is left out: nobody alive.
_RRN_CENTURY_BY_SEX_DIGIT = {
    "1": 1900, "2": 1900, "5": 1900, "6": 1900,
    "3": 2000, "4": 2000, "7": 2000, "8": 2000,
}  # fmt: skip


def is_plausible_rrn(text: str) -> bool:
    """Whether a 13-digit run reads as a real birth date plus a valid sex/century digit."""
    digits = _only_digits(text)
    if len(digits) != 13:
        return False
    century = _RRN_CENTURY_BY_SEX_DIGIT.get(digits[6])
    if century is None:
        return False
    year = century + int(digits[0:2])
    month = int(digits[2:4])
    day = int(digits[4:6])
    if not 1 <= month <= 12:
        return False
    return 1 <= day <= calendar.monthrange(year, month)[1]


def has_e164_length(text: str) -> bool:
    """Whether an international number has a plausible E.164 digit count (8 to 15)."""
    return 8 <= len(_only_digits(text)) <= 15


_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])"
    r"[A-Za-z0-9._%+-]+@"
    # Labels are dot-separated runs, so each repetition starts at a '.', which
    # keeps backtracking linear on long garbage after an '@'.
    r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
    r"(?![A-Za-z0-9-])"
)

# 6 digits of birth date, an optional dash, 7 digits; whether the date exists
# is left to is_plausible_rrn, because a regex cannot know February.
_RRN = re.compile(r"(?<![0-9])[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])-?[1-8][0-9]{6}(?![0-9])")

# Cards as people type them: one unbroken run, or the printed groupings with
# one consistent separator (4-4-4-4, Amex 4-6-5, Diners 4-6-4). Free-form
# separators would let the pattern glue neighbouring numbers into a "card".
_CARD = re.compile(
    r"(?<![0-9])(?:"
    r"[0-9]{13,19}"
    r"|[0-9]{4}(?P<sep16>[ -])[0-9]{4}(?P=sep16)[0-9]{4}(?P=sep16)[0-9]{4}"
    r"|[0-9]{4}(?P<sep15>[ -])[0-9]{6}(?P=sep15)[0-9]{4,5}"
    r")(?![0-9])"
)

# Korean numbers: mobiles (01x) with or without separators; landlines (Seoul
# 02, regions 031-064) and 070 internet phones only with separators or with
# the area code in parentheses, because a bare 9-10 digit run starting with 0
# is as likely an account or order number. Company numbers such as 1588-xxxx
# are not personal data and are left alone.
_KOREAN_AREA_CODE = r"0(?:2|3[1-3]|4[1-4]|5[1-5]|6[1-4]|70)"
_KOREAN_PHONE = re.compile(
    r"(?<![0-9])(?:"
    r"01[016789][-. ]?[0-9]{3,4}[-. ]?[0-9]{4}"
    rf"|(?:\({_KOREAN_AREA_CODE}\) ?|{_KOREAN_AREA_CODE}[-. ])[0-9]{{3,4}}[-. ][0-9]{{4}}"
    r")(?![0-9])"
)

# E.164 as written by people: '+', country code, then digit groups split by
# spaces, dots or dashes, an area code possibly in parentheses. This also
# covers Korean numbers written with +82.
_INTERNATIONAL_PHONE = re.compile(
    r"(?<![\w+])\+[1-9][0-9]{0,2}(?:[ .-]?(?:\([0-9]{1,4}\)|[0-9]{1,4})){2,6}(?![0-9])"
)


def default_rules() -> list[RedactionRule]:
    """The built-in rules, in the order they must run.

    Email goes first because addresses may hold digit runs; RRN and card come
    before phone so a 13-digit RRN is not partly eaten as a phone number.
    """
    return [
        RedactionRule("EMAIL", _EMAIL, None, matches_need_at_or_digits=True),
        RedactionRule("RRN", _RRN, is_plausible_rrn, matches_need_at_or_digits=True),
        RedactionRule("CARD", _CARD, passes_luhn, matches_need_at_or_digits=True),
        RedactionRule("PHONE", _KOREAN_PHONE, None, matches_need_at_or_digits=True),
        RedactionRule("PHONE", _INTERNATIONAL_PHONE, has_e164_length, matches_need_at_or_digits=True),
    ]


def parse_extra_rule(spec: str) -> RedactionRule:
    """Build a rule from a ``NAME=REGEX`` spec; matches become ``[NAME]``.

    Raises ValueError naming the spec when the name or the regex is invalid.
    """
    name, equals, regex = spec.partition("=")
    if not equals or not _EXTRA_RULE_NAME.fullmatch(name):
        raise ValueError(
            f"invalid redaction pattern {spec!r}: expected NAME=REGEX with NAME "
            "made of letters, digits and underscores"
        )
    if not regex:
        raise ValueError(f"invalid redaction pattern {name!r}: the regex is empty")
    try:
        pattern = re.compile(regex)
    except re.error as error:
        raise ValueError(f"invalid redaction pattern {name!r} ({regex!r}): {error}") from error
    return RedactionRule(name, pattern)


class PiiRedactor:
    """Replaces PII in message text with typed placeholders, rule by rule in order."""

    def __init__(self, rules: Sequence[RedactionRule]) -> None:
        """Use ``rules`` in the given order; earlier rules win over later ones."""
        self._rules: tuple[RedactionRule, ...] = tuple(rules)
        self._steps: tuple[_Step, ...] = tuple(_Step.for_rule(rule) for rule in self._rules)
        self._steps_for_plain_text: tuple[_Step, ...] = tuple(
            step
            for rule, step in zip(self._rules, self._steps, strict=True)
            if not rule.matches_need_at_or_digits
        )

    @classmethod
    def default(cls, extra_patterns: Sequence[str] = ()) -> PiiRedactor:
        """The built-in rules followed by user rules given as ``NAME=REGEX``.

        Raises ValueError naming the first invalid extra pattern.
        """
        extra_rules = [parse_extra_rule(spec) for spec in extra_patterns]
        return cls([*default_rules(), *extra_rules])

    @property
    def rules(self) -> tuple[RedactionRule, ...]:
        """The rules in the order they run."""
        return self._rules

    def redact(self, text: str) -> str:
        """Return ``text`` with every rule match replaced by its placeholder."""
        # One scan finds everything the fast path asks about: most chat text has no
        # digit, '@' or full-width form at all, and stops the work right here.
        first = _LOOK_AT.search(text)
        if first is None:
            steps = self._steps_for_plain_text
        else:
            hits = _LOOK_AT.findall(text, first.start())
            if max(hits) >= "\u3000":  # ASCII digits and '@' sort below every full-width form
                return self._redact_translated(text)
            steps = self._steps
            if len(hits) < FAST_PATH_MIN_DIGITS and "@" not in hits:
                steps = self._steps_for_plain_text
        for pattern, replace in steps:
            text = pattern.sub(replace, text)
        return text

    def _redact_translated(self, original: str) -> str:
        """Match on the ASCII translation of full-width forms; replace the same spans of the original."""
        ascii_form = original.translate(_TO_ASCII)
        steps = self._steps
        if "@" not in ascii_form and sum(map(ascii_form.count, _ASCII_DIGITS)) < FAST_PATH_MIN_DIGITS:
            steps = self._steps_for_plain_text
        for pattern, replace in steps:
            kept_original: list[str] = []
            kept_ascii: list[str] = []
            end = 0
            for match in pattern.finditer(ascii_form):
                replacement = replace(match)
                if replacement == match.group(0):
                    continue
                start = match.start()
                kept_original += (original[end:start], replacement)
                kept_ascii += (ascii_form[end:start], replacement)
                end = match.end()
            if end:
                # Placeholders are the same in both, so the two texts stay aligned.
                original = "".join(kept_original) + original[end:]
                ascii_form = "".join(kept_ascii) + ascii_form[end:]
        return original


class _Step(NamedTuple):
    pattern: re.Pattern[str]
    replace: Callable[[re.Match[str]], str]

    @classmethod
    def for_rule(cls, rule: RedactionRule) -> _Step:
        placeholder = rule.placeholder
        validate = rule.validate

        def replace(match: re.Match[str]) -> str:
            matched = match.group(0)
            # A user pattern that can match nothing would otherwise sprinkle
            # placeholders between every character.
            if not matched:
                return matched
            if validate is not None and not validate(matched):
                return matched
            return placeholder

        return cls(rule.pattern, replace)


def content_redactor(settings: Settings) -> Callable[[str], str] | None:
    """The PII redaction applied to message text before storage, unless turned off."""
    if not settings.pii_redaction:
        return None
    return PiiRedactor.default(settings.pii_extra_patterns).redact
