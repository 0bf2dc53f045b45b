"""A short extractive summary of a conversation: no network, no model.

The summary is the user's opening question plus the words the user kept
coming back to, e.g. ``"연차 휴가는 며칠인가요? — topics: 휴가, 연차, 이월"``.
It is built for the admin conversation list, where it has to be cheap and
good enough to recognise a conversation at a glance. ``Summarizer`` is the
hook for a model-backed summariser later; whatever it returns is stored cut to
``MAX_SUMMARY_CHARS`` (``capped_summary``), since every admin list item carries it.
Only the first ``DEFAULT_MAX_SCAN_CHARS`` of what the user wrote are read, so a
conversation of megabytes is summarised as fast as a short one.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from typing import Protocol

DEFAULT_MAX_QUESTION_CHARS = 120
DEFAULT_MAX_TOPICS = 5
DEFAULT_MAX_SCAN_CHARS = 20_000
# Longer "words" are pasted ids, hashes or URLs, not topics anyone recognises.
MAX_TOPIC_CHARS = 32
# The opening question, the separator and five topics of at most MAX_TOPIC_CHARS fit.
MAX_SUMMARY_CHARS = 300
ELLIPSIS = "…"
TOPICS_SEPARATOR = " — topics: "

_WORD = re.compile(r"\w+")
# Redaction placeholders such as [EMAIL] are not topics the user talked about.
_PLACEHOLDER = re.compile(r"\[[A-Z][A-Z0-9_]*\]")

# Longest first, so "에서" is stripped whole rather than leaving "...에".
_KOREAN_PARTICLES: tuple[str, ...] = tuple(
    sorted(
        (
            "은", "는", "이", "가", "을", "를", "에", "에서", "의", "로", "으로",
            "와", "과", "도", "만", "요", "에는", "에서는", "으로는", "에게",
            "까지", "부터",
        ),
        key=len,
        reverse=True,
    )
)  # fmt: skip

_KOREAN_PARTICLE_SET = frozenset(_KOREAN_PARTICLES)

# Nouns whose last syllable looks like a particle ("복지제도" is not "복지제" +
# "도"); common in the HR and support documents these chatbots answer from.
_KOREAN_NOUN_ENDINGS_NOT_PARTICLES: tuple[str, ...] = (
    "제도", "정도", "한도", "용도", "속도", "온도", "태도", "지도", "회의", "문의",
    "동의", "합의", "논의", "강의", "주의", "정의", "협의", "건의",
)  # fmt: skip

# Without a morphological analyser, verb and adjective forms ("신청하려면",
# "이월되나요") would crowd out the nouns; these endings mark them cheaply and
# hardly ever end a noun.
_KOREAN_PREDICATE_ENDINGS: tuple[str, ...] = (
    "니다", "나요", "까요", "세요", "어요", "아요", "해요", "예요", "에요", "는데",
    "한데", "려면", "으면", "하면", "해서", "하고", "하는", "하다", "했다", "한다",
    "는지", "을까", "할까", "되나", "된다", "했어", "해줘", "싶어",
)  # fmt: skip

_KOREAN_STOPWORDS = frozenset(
    {
        "그리고", "그런데", "그래서", "하지만", "그러면", "어떻게", "무엇", "무슨", "어떤",
        "어디", "언제", "누구", "얼마나", "있나요", "없나요", "있는", "없는", "있어", "없어",
        "알려줘", "알려주세요", "해주세요", "해줘", "주세요", "이거", "그거", "저거", "이것",
        "그것", "저것", "제가", "저는", "나는", "내가", "우리", "저희", "혹시", "그냥", "정말",
        "너무", "다시", "관련", "대해", "대한", "대해서", "안녕하세요", "감사합니다",
        "고마워", "아니요", "해야", "하나요", "되나요", "인가요", "뭐야", "뭔가", "이제",
    }
)  # fmt: skip

_ENGLISH_STOPWORDS = frozenset(
    {
        "about", "above", "after", "again", "against", "all", "also", "am", "an", "and",
        "any", "are", "as", "at", "be", "because", "been", "before", "being", "below",
        "between", "both", "but", "by", "can", "could", "did", "do", "does", "doing", "don",
        "done", "down", "during", "each", "else", "even", "ever", "few", "for", "from",
        "further", "get", "gets", "got", "had", "has", "have", "having", "he", "her",
        "here", "hers", "herself", "him", "himself", "his", "how", "however", "if", "in",
        "into", "is", "isn", "it", "its", "itself", "just", "let", "like", "ll", "me",
        "might", "more", "most", "must", "my", "myself", "need", "no", "nor", "not", "now",
        "of", "off", "on", "once", "only", "or", "other", "our", "ours", "out", "over",
        "own", "please", "re", "really", "same", "shall", "she", "should", "so", "some", "still",
        "such", "tell", "than", "thank", "thanks", "that", "the", "their", "theirs", "them",
        "then", "there", "these", "they", "this", "those", "through", "to", "too", "under",
        "until", "up", "us", "ve", "very", "want", "was", "wasn", "we", "were", "what",
        "when", "where", "which", "while", "who", "whom", "why", "will", "with", "won",
        "would", "yes", "yet", "you", "your", "yours", "hi", "hello", "hey", "ok", "okay",
        "doesn", "didn", "aren", "weren", "hasn", "haven", "wouldn", "shouldn", "couldn",
    }
)  # fmt: skip

STOPWORDS: frozenset[str] = _KOREAN_STOPWORDS | _ENGLISH_STOPWORDS


class Summarizer(Protocol):
    """Anything that turns (role, content) pairs into a one-line summary."""

    def summarize(self, messages: Sequence[tuple[str, str]]) -> str:
        """Summarise a conversation given as (role, content) pairs in order."""
        ...


def _is_hangul_syllable(char: str) -> bool:
    return "\uac00" <= char <= "\ud7a3"


def _strip_korean_particle(token: str) -> str:
    # Two-syllable words are left whole: "휴가" must not lose its "가".
    if len(token) < 3 or not _is_hangul_syllable(token[-1]):
        return token
    if token.endswith(_KOREAN_NOUN_ENDINGS_NOT_PARTICLES):
        return token
    for particle in _KOREAN_PARTICLES:
        if token.endswith(particle):
            return token[: -len(particle)]
    return token


@functools.lru_cache(maxsize=1 << 16)
def topic_token(raw_token: str) -> str | None:
    """The topic a casefolded NFKC word stands for, or None when it is no topic.

    Drops stopwords, pure numbers, Korean predicate forms and anything shorter
    than two or longer than MAX_TOPIC_CHARS characters; strips a trailing Korean
    particle ("휴가를" -> "휴가"). Remembered for the most recent words: users ask the same
    things in the same words, and every closing conversation is summarised.
    """
    # A particle standing alone is what is left after a redaction
    # placeholder: "[EMAIL]으로" becomes "으로".
    if raw_token in STOPWORDS or raw_token in _KOREAN_PARTICLE_SET or raw_token.isdigit():
        return None
    if raw_token.endswith(_KOREAN_PREDICATE_ENDINGS):
        return None
    token = _strip_korean_particle(raw_token)
    if not 2 <= len(token) <= MAX_TOPIC_CHARS or token in STOPWORDS:
        return None
    return token


def topic_tokens(text: str) -> list[str]:
    """The topic tokens of one message, in order of appearance."""
    normalised = unicodedata.normalize("NFKC", _PLACEHOLDER.sub(" ", text)).casefold()
    topics: list[str] = []
    for raw_token in _WORD.findall(normalised):
        token = topic_token(raw_token)
        if token is not None:
            topics.append(token)
    return topics


def trim_at_word_boundary(text: str, max_chars: int) -> str:
    """``text`` cut to about ``max_chars`` at a word boundary, ending in "…" when cut."""
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    if not text[max_chars].isspace():
        last_space = cut.rfind(" ")
        # Text without spaces (a URL, unspaced CJK) is cut mid-word rather than
        # shrunk to a stub.
        if last_space >= max_chars // 2:
            cut = cut[:last_space]
    return cut.rstrip(" ,.;:!?-—") + ELLIPSIS


def capped_summary(summary: str) -> str:
    """``summary`` cut to MAX_SUMMARY_CHARS at a word boundary, as it is stored and listed."""
    return trim_at_word_boundary(summary, MAX_SUMMARY_CHARS)


class ExtractiveSummarizer:
    """Opening user question plus the most frequent topic words of the user's messages."""

    def __init__(
        self,
        max_question_chars: int = DEFAULT_MAX_QUESTION_CHARS,
        max_topics: int = DEFAULT_MAX_TOPICS,
        max_scan_chars: int = DEFAULT_MAX_SCAN_CHARS,
    ) -> None:
        """Trim the question to ``max_question_chars``, list up to ``max_topics`` words
        found in the first ``max_scan_chars`` characters the user wrote."""
        if max_question_chars < 1:
            raise ValueError(f"max_question_chars must be at least 1, got {max_question_chars}")
        if max_topics < 0:
            raise ValueError(f"max_topics must not be negative, got {max_topics}")
        if max_scan_chars < max_question_chars:
            raise ValueError(f"max_scan_chars must be at least max_question_chars, got {max_scan_chars}")
        self._max_question_chars = max_question_chars
        self._max_topics = max_topics
        self._max_scan_chars = max_scan_chars

    def summarize(self, messages: Sequence[tuple[str, str]]) -> str:
        """``"<opening question> — topics: a, b"``; "" when the user said nothing."""
        user_texts: list[str] = []
        budget = self._max_scan_chars
        for role, content in messages:
            if role != "user":
                continue
            piece = content[:budget]
            budget -= len(piece)
            if text := " ".join(piece.split()):
                user_texts.append(text)
            if budget <= 0:
                break
        if not user_texts:
            return ""
        opening = trim_at_word_boundary(user_texts[0], self._max_question_chars)
        counts: Counter[str] = Counter()
        for text in user_texts:
            counts.update(topic_tokens(text))
        # most_common keeps first-seen order among equal counts, so ties go to
        # the words the user used first and the summary is deterministic.
        topics = [token for token, _ in counts.most_common(self._max_topics)]
        if not topics:
            return opening
        return f"{opening}{TOPICS_SEPARATOR}{', '.join(topics)}"
