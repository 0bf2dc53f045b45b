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

from insights.lexicon import (
    CONTENT_TAGS,
    DURATION_WORDS,
    ENGLISH_DURATION,
    ENGLISH_INTENT,
    ENGLISH_STOP,
    HOW_MUCH_OR_LONG,
    INTENTS,
    KOREAN_STOP,
    PHRASAL,
    PHRASAL_VERBS,
    SYNONYMS,
    WORD,
)

_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_SPACE = re.compile(r"\s+")


def is_korean(text: str) -> bool:
    """Whether a question is written in Korean (has Hangul)."""
    return _HANGUL.search(text) is not None


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
        self.intents = frozenset(INTENTS.values())
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
            tokens = self._korean_tokens(text)
            for index, (form, tag) in enumerate(tokens):
                following = tokens[index + 1] if index + 1 < len(tokens) else ("", "")
                if form == "어떻" and following[0] == "되":
                    continue  # "어떻게 되나요" asks "what is it", not "how do I"
                if form == "마다":
                    continue
                if form == "몇" and any(later == "마다" for later, _ in tokens[index + 1 : index + 3]):
                    out.append("~howoften")  # "몇 달마다": how often, not how many
                    continue
                if form == "얼마나":
                    # "얼마나 걸리나요" asks how long, "얼마나 받나요" how much; alone it may be either
                    out.extend(HOW_MUCH_OR_LONG.get(following[0], ("~howlong", "~howmuch")))
                    continue
                if form == "걸리" and index and tokens[index - 1][0] in DURATION_WORDS:
                    continue  # "며칠 걸리나요": it takes time, nothing is stuck
                if form == "일" and tag == "NNG" and index and tokens[index - 1][1] == "NNG" and following[1] != "NNG":
                    out.append("~when")  # "지급일", "마감일": the day of something
                    continue
                if tag == "SL":
                    self._add(out, form, english=True)
                    continue
                if len(form) >= 3 and form.endswith("날") and tag == "NNG":
                    out.append("~when")  # "월급날": the day of pay
                    form = form[:-1]
                for part in _compound_parts(SYNONYMS.get(form, form)):
                    self._add(out, part, english=False)
        else:
            text = ENGLISH_DURATION.sub("howlong", text)
            text = ENGLISH_INTENT.sub(lambda m: "how" + m.group(1) if m.group(1) else "when", text)
            text = PHRASAL.sub(lambda m: PHRASAL_VERBS[m.group(1)] + m.group(2), text)
            for word in WORD.findall(text):
                self._add(out, word, english=True)
        return tuple(dict.fromkeys(out))

    def _korean_tokens(self, text: str) -> list[tuple[str, str]]:
        """Kiwi's content morphemes (form, tag); a prefix stays on its noun ("재" + "설정")."""
        tokens: list[tuple[str, str]] = []
        prefix = ""
        for token in self.analyser().tokenize(text):
            if token.tag == "XPN":
                prefix = token.form
                continue
            # "하는 법": 법 is a bound noun; "마다" ("every") only tells "몇" apart
            if token.tag in CONTENT_TAGS or token.form in INTENTS or token.form == "마다":
                form = prefix + token.form if prefix and token.tag.startswith("NN") else token.form
                tokens.append((form, token.tag))
            prefix = ""
        return tokens

    def _add(self, out: list[str], word: str, english: bool) -> None:
        if english:
            word = word.lower()
            if word in ENGLISH_STOP:
                return
            intent = INTENTS.get(word)
            if intent is None:
                stem = self._stemmer.stemWord(word)
                intent = INTENTS.get(stem)
                word = stem
        else:
            if word in KOREAN_STOP:
                return
            intent = INTENTS.get(word)
        out.append(intent or SYNONYMS.get(word, word))
