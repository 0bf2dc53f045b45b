"""Questions reduced to their content terms: Korean by morphology, English by stemming.

Two questions that ask the same thing rarely share their exact words: Korean glues
particles and endings to its words ("연차휴가는 어떻게 신청하나요?" vs "연차 휴가 신청
방법"), English inflects ("requesting" vs "request"). Grouping compares what is left
after that: nouns, roots, verb stems and foreign words, plus a few *intent* markers
("how", "when", "how much", ...) so that "육아휴직 기간" and "육아휴직 신청 방법" keep
the word that tells them apart.

Korean goes through Kiwi (kiwipiepy; its model ships in its package, nothing is
downloaded), English through the Snowball stemmer. Both are loaded once per process.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import lru_cache
from typing import Any

import snowballstemmer

# Kiwi's part-of-speech tags that carry what a question is about.
_CONTENT_TAGS = frozenset(
    {"NNG", "NNP", "NR", "SL", "SN", "SH", "XR", "VV", "VA", "VV-I", "VA-I", "VV-R", "VA-R", "MAG"}
)

# Intent markers: words (Korean lemma or English stem) that say what is asked about a topic.
# They are kept as one token per intent, so paraphrases of the intent agree.
_INTENTS: dict[str, str] = {
    # how (procedure)
    "어떻": "~how",
    "방법": "~how",
    "절차": "~how",
    "법": "~how",
    "사용법": "~how",
    "how": "~how",
    "어떡하": "~how",
    "step": "~how",
    # when (date, deadline)
    "언제": "~when",
    "기한": "~when",
    "마감일": "~when",
    "마감": "~when",
    "날짜": "~when",
    "when": "~when",
    "date": "~when",
    # how long / how many days
    "기간": "~howlong",
    "며칠": "~howlong",
    "일수": "~howlong",
    "얼마나": "~howlong",
    "howlong": "~howlong",
    "length": "~howlong",
    "durat": "~howlong",
    # how much (money)
    "얼마": "~howmuch",
    "금액": "~howmuch",
    "howmuch": "~howmuch",
    # how many (times)
    "몇": "~howmany",
    "횟수": "~howmany",
    "howmany": "~howmany",
    # something is wrong: a problem report, not a how-to
    "오류": "~problem",
    "안": "~problem",
    "끊기": "~problem",
    "error": "~problem",
    "disconnect": "~problem",
    "걸리": "~problem",
    "안되": "~problem",
    "않": "~problem",
    # where
    # where to do something is asked as how to do it ("예약은 어디서 하나요" = "예약 방법")
    "어디": "~how",
    "where": "~how",
    "어디서": "~how",
}

# Everyday synonyms of support questions, folded onto one word ("reset" is "reset").
_SYNONYMS: dict[str, str] = {
    "재설정": "초기화",
    "리셋": "초기화",
    "조회": "확인",
    "요청": "신청",
    "접수": "신청",
    "패스워드": "비밀번호",
    "비번": "비밀번호",
    "wifi": "와이파이",
    "방식": "방법",
    "월급": "급여",
    "에러": "error",
    "잃어버리": "분실",
    "잃": "분실",
    "lose": "lost",
    "lost": "lost",
    "request": "appli",
    "applic": "appli",
}

# Words that ask nothing by themselves: politeness, "tell me", "I am curious", fillers.
_KOREAN_STOP = frozenset(
    {
        "알리",
        "주",
        "궁금",
        "궁금하",
        "하",
        "되",
        "있",
        "없",
        "이",
        "그",
        "저",
        "것",
        "거",
        "수",
        "좀",
        "뭐",
        "무엇",
        "가능",
        "필요",
        "싶",
        "받",
        "보",
        "나오",
        "들어오",
        "쓰",
        "해주",
        "문의",
        "질문",
        "회사",
        "사내",
        "본인",
        "저희",
        "우리",
        "혹시",
        "제",
        "내",
        "나",
        "요",
    }
)
_ENGLISH_STOP_WORDS = (
    "a an the i me my we our you your it is are was were be been do does did can could should would "
    "will to of for in on at from with by and or if what which who whom this that these those there "
    "get got need want please tell about any some all per up out into off one take"
)
_ENGLISH_STOP = frozenset(_ENGLISH_STOP_WORDS.split())
_WORD = re.compile(r"[a-z0-9]+")
_ENGLISH_INTENT = re.compile(r"\bhow (long|many|much)\b|\bwhat (day|date)\b")
_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_SPACE = re.compile(r"\s+")


def normalise_question(text: str) -> str:
    """The text as top queries count it: NFKC, case-folded, whitespace collapsed."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def _compound_parts(noun: str) -> list[str]:
    """A Hangul compound of 4, 6, ... syllables as its two-syllable parts.

    Kiwi splits "재택 근무" into two nouns but sometimes keeps "재택근무" whole, by
    context; most such compounds are two-syllable Sino-Korean words, so cutting every
    even-length compound the same way makes both spellings agree.
    """
    if len(noun) >= 4 and len(noun) % 2 == 0 and all("\uac00" <= c <= "\ud7a3" for c in noun):
        return [noun[i : i + 2] for i in range(0, len(noun), 2)]
    return [noun]


class QuestionTerms:
    """Reduces a question to its content terms (cached: the same text comes back often)."""

    def __init__(self, cache_size: int = 200_000) -> None:
        self.intents = frozenset(_INTENTS.values())
        self._kiwi: Any = None
        self._lock = threading.Lock()
        self._stemmer = snowballstemmer.stemmer("english")
        self.terms = lru_cache(maxsize=cache_size)(self._terms)

    def analyser(self) -> Any:
        """Kiwi, loaded on first use."""
        with self._lock:
            if self._kiwi is None:
                from kiwipiepy import Kiwi  # 1 s and ~100 MB: only where questions are grouped

                self._kiwi = Kiwi()
            return self._kiwi

    def _terms(self, text: str) -> tuple[str, ...]:
        text = normalise_question(text)
        out: list[str] = []
        if _HANGUL.search(text):
            tokens = [
                (t.form, t.tag)
                for t in self.analyser().tokenize(text)
                if t.tag in _CONTENT_TAGS or t.form in _INTENTS  # "하는 법": 법 is a bound noun
            ]
            for index, (form, tag) in enumerate(tokens):
                if form == "어떻" and index + 1 < len(tokens) and tokens[index + 1][0] == "되":
                    continue  # "어떻게 되나요" asks "what is it", not "how do I"
                if tag == "SL":
                    self._add(out, form, english=True)
                    continue
                for part in _compound_parts(_SYNONYMS.get(form, form)):
                    self._add(out, part, english=False)
        else:
            text = _ENGLISH_INTENT.sub(lambda m: "how" + m.group(1) if m.group(1) else "when", text)
            for word in _WORD.findall(text):
                self._add(out, word, english=True)
        return tuple(dict.fromkeys(out))

    def _add(self, out: list[str], word: str, english: bool) -> None:
        if english:
            word = word.lower()
            if word in _ENGLISH_STOP:
                return
            intent = _INTENTS.get(word)
            if intent is None:
                stem = self._stemmer.stemWord(word)
                intent = _INTENTS.get(stem)
                word = stem
        else:
            if word in _KOREAN_STOP:
                return
            intent = _INTENTS.get(word)
        out.append(intent or _SYNONYMS.get(word, word))
