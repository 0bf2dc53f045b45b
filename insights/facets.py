"""Facets: words that make a narrower question of a topic, learnt from the questions grouped.

"휴가 신청" and "출산휴가 신청" share every word of the first, yet ask about different
things: "출산" narrows "휴가" to another kind of leave. A word is such a facet when it
stands right before a word of the topic in several questions ("출산 휴가" recurs); a
one-off modifier ("신규 사원증") is taken as a detail of the same question. And two
questions that each keep a word of their own that recurs with their shared topic
("사원증 분실" vs "사원증 발급") ask about two aspects of one topic. Either way they do
not join, whatever their similarity. Numbers are never facets: they are ids, dates and
amounts of one question.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence

FACET_MIN_COUNT = 2  # a word seen with the same topic this often is a facet of it


class Facets:
    """Bigram counts and postings of the questions being grouped, and the veto they give."""

    def __init__(self, rows: Sequence[Sequence[int]], numeric: frozenset[int]) -> None:
        # rows: each question's content term ids in text order (intent markers and numbers left out)
        self.rows = [[t for t in row if t not in numeric] for row in rows]
        self.sets = [frozenset(row) for row in self.rows]
        self.bigrams: Counter[tuple[int, int]] = Counter()
        self.postings: dict[int, set[int]] = {}
        for number, row in enumerate(self.rows):
            self.bigrams.update(itertools.pairwise(row))
            for term in row:
                self.postings.setdefault(term, set()).add(number)
        self._together: dict[tuple[int, int], int] = {}
        # Each question's words, rarest first: the first one another question has is their topic's anchor.
        self.by_rarity = [sorted(row, key=lambda t: len(self.postings[t])) for row in self.rows]

    def apart(self, a: int, b: int) -> bool:
        """Whether questions ``a`` and ``b`` ask about different facets of their topic."""
        set_a, set_b = self.sets[a], self.sets[b]
        if self._narrows(self.rows[a], set_b) or self._narrows(self.rows[b], set_a):
            return True
        anchor = next((t for t in self.by_rarity[a] if t in set_b), None)  # the topic's rarest word
        if anchor is None:
            return False
        return self._recurs(set_a - set_b, anchor) and self._recurs(set_b - set_a, anchor)

    def _narrows(self, row: Sequence[int], other: frozenset[int]) -> bool:
        """``row`` has a recurring modifier, missing from ``other``, of a word ``other`` has."""
        before = -1
        for word, head in itertools.pairwise(row):
            # After a word both have, it is that word's tail ("연차 휴가" for "연차"), not a modifier.
            if (
                word not in other
                and before not in other
                and head in other
                and self.bigrams[word, head] >= FACET_MIN_COUNT
            ):
                return True
            before = word
        return False

    def _recurs(self, own: frozenset[int], anchor: int) -> bool:
        """Some word of ``own`` is asked with ``anchor`` in several questions."""
        for term in own:
            key = (term, anchor)
            count = self._together.get(key)
            if count is None:
                small, large = sorted((self.postings[term], self.postings[anchor]), key=len)
                count = self._together[key] = sum(1 for row in small if row in large)
            if count >= FACET_MIN_COUNT:
                return True
        return False
