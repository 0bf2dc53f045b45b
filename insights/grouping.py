"""Question groups: paraphrases together, different questions apart.

Input is the distinct normalised questions with their counts (never every event), so
a month of traffic groups in seconds. Each question becomes a set of content terms
(``insights.terms``) weighted by IDF; two questions are as similar as the weighted
Jaccard of their term sets (shared weight over the weight of their union).

Grouping runs in two passes:
1. *Leaders*: most frequent question first, each joins the group whose leader (its most
   frequent variant) it is most similar to, if that reaches ``threshold``, else it leads
   a new group. Comparing with the leader, not with any member, keeps "A ~ B ~ C" from
   chaining A and C together when they ask different things.
2. *Average linkage*: a group joins an earlier one when its members are, on average over
   every pair, at least ``merge_threshold`` similar to that group's members; this gathers
   paraphrases the leader alone did not reach, without letting one bridging variant
   join two questions.

Whatever their similarity, two questions never join when
- they are in different languages (a FAQ answers in the question's language);
- their specific intents differ ("how long" vs "how much" vs none; "how do I" is no
  specific intent, so "휴가 신청" and "휴가 신청 방법" agree), ``insights.terms``;
- they ask about different facets of one topic, learnt from the questions being grouped
  ("출산휴가 신청" vs "휴가 신청", "사원증 분실" vs "사원증 발급"), ``insights.facets``;
  a group checks this against its most frequent variants, so one bridging variant
  ("사원증 분실 시 재발급") cannot make it absorb both.

With an embeddings server configured (``insights.embeddings``), a pair's similarity is its
cosine rescaled so that the embeddings threshold counts as ``threshold``, when that is
higher than its weighted Jaccard; candidates still share a content term and the checks
above still apply: embeddings can join paraphrases worded apart, never two intents.

The thresholds and word lists were chosen on ``tests/data/question_groups.tsv`` and the
errors of ``tests/data/question_groups_holdout.tsv``; ``tests/data/question_groups_holdout2.tsv``
was written before that and never tuned on. ``python -m bench.grouping`` reports pairwise
precision and recall on all three. A group that merges unrelated questions is worse than
none, so the defaults favour precision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from insights.embeddings import EmbeddingsClient
from insights.facets import Facets
from insights.lexicon import SPECIFIC_INTENTS
from insights.terms import QuestionTerms, is_korean, normalise_question

DEFAULT_THRESHOLD = 0.5
MERGE_RATIO = 0.6  # merge_threshold = threshold * MERGE_RATIO unless given
LINKAGE_SAMPLE = 20
APART_SAMPLE = 10  # a group's most frequent variants checked for another facet (bounded work)
PREFILTER = 0.25

TermVector = dict[int, float]
Asks = tuple[bool, frozenset[int]]  # written in Korean; its specific intents


@dataclass
class QuestionGroup:
    """One question asked in several ways: its variants, most frequent first."""

    question: str
    count: int = 0
    variants: list[tuple[str, int]] = field(default_factory=list)


def term_vectors(
    terms: QuestionTerms, texts: Sequence[str], idf_power: float = 1.0
) -> tuple[list[TermVector], dict[str, int]]:
    """Each text's content terms weighted by IDF ** ``idf_power`` (a text with none is its own
    term), and the vocabulary (term -> id)."""
    analysed = analyse(terms, texts)
    # Imported here: scikit-learn brings scipy, pandas and pyarrow (~130 MB), which an analytics
    # process that never groups (no FAQ or quality request yet) should not carry.
    from sklearn.feature_extraction.text import TfidfVectorizer

    tfidf = TfidfVectorizer(analyzer=lambda found: found, binary=True, norm=None, use_idf=True)
    matrix = tfidf.fit_transform(analysed).tocsr()
    weights = np.power(tfidf.idf_, idf_power)
    indptr, indices = matrix.indptr, matrix.indices
    vectors = [{int(t): float(weights[t]) for t in indices[indptr[row] : indptr[row + 1]]} for row in range(len(texts))]
    return vectors, {term: int(i) for term, i in tfidf.vocabulary_.items()}


def analyse(terms: QuestionTerms, texts: Sequence[str]) -> list[tuple[str, ...]]:
    """Each text's terms in text order; a text with none is its own term."""
    return [terms.terms(text) or (normalise_question(text),) for text in texts]


def weighted_jaccard(a: TermVector, b: TermVector, size_a: float, size_b: float) -> float:
    """Shared weight over the weight of the union (``size_*``: each vector's total weight)."""
    if len(a) > len(b):
        a, b = b, a
    shared = 0.0
    for t, w in a.items():
        if t in b:
            shared += w
    total = size_a + size_b - shared
    return shared / total if total else 0.0


@dataclass
class _Questions:
    """One call's questions: their term vectors and what the checks need (per call, so one
    grouper may serve several threads)."""

    vectors: list[TermVector]
    sizes: list[float]
    intents: list[Asks]
    intent_ids: frozenset[int]
    facets: Facets
    unit: npt.NDArray[np.float32] | None  # unit embeddings, one row per question, or None
    threshold: float  # the lexical threshold an embeddings cosine at ``floor`` counts as
    floor: float  # the embeddings threshold

    def similarity(self, a: int, b: int) -> float:
        """The weighted Jaccard of two questions' terms, or, with embeddings, their cosine when
        that says more: a cosine at the embeddings threshold counts as the lexical threshold,
        a cosine of 1 as 1."""
        vectors, sizes = self.vectors, self.sizes
        lexical = weighted_jaccard(vectors[a], vectors[b], sizes[a], sizes[b])
        if self.unit is None:
            return lexical
        cosine = float(self.unit[a] @ self.unit[b])
        if cosine < self.floor or self.floor >= 1.0:
            return lexical
        return max(lexical, self.threshold + (cosine - self.floor) / (1.0 - self.floor) * (1.0 - self.threshold))

    def apart(self, group: list[int], rows: list[int]) -> bool:
        """Whether any of the group's most frequent variants asks about another facet than any
        of ``rows``': one variant that bridges two questions ("사원증 분실 시 재발급") must
        not let a group absorb both."""
        return any(self.facets.apart(a, b) for a in group[:APART_SAMPLE] for b in rows[:APART_SAMPLE])


class QuestionGrouper:
    """Groups distinct questions (with counts) into paraphrase groups."""

    def __init__(
        self,
        terms: QuestionTerms | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        merge_threshold: float | None = None,
        idf_power: float = 1.0,
        embeddings: EmbeddingsClient | None = None,
    ) -> None:
        self.terms = terms or QuestionTerms()
        self.embeddings = embeddings
        self.threshold = threshold
        self.merge_threshold = threshold * MERGE_RATIO if merge_threshold is None else merge_threshold
        self.idf_power = idf_power

    def group(self, counts: Mapping[str, int]) -> list[QuestionGroup]:
        """Groups, largest first; ties by question text, so the answer is deterministic."""
        texts = sorted(counts, key=lambda text: (-counts[text], text))
        if not texts:
            return []
        vectors, vocabulary = term_vectors(self.terms, texts, self.idf_power)
        specific_ids = frozenset(vocabulary[t] for t in SPECIFIC_INTENTS if t in vocabulary)
        questions = _Questions(
            vectors=vectors,
            sizes=[sum(v.values()) for v in vectors],
            # What each question asks about its topic: only the specific intents must agree. A
            # FAQ answers in the question's language, so Korean and English questions never join.
            intents=[
                (is_korean(text), frozenset(t for t in v if t in specific_ids))
                for text, v in zip(texts, vectors, strict=True)
            ],
            intent_ids=frozenset(vocabulary[t] for t in self.terms.intents if t in vocabulary),
            facets=Facets(
                [[vocabulary[t] for t in found if t not in self.terms.intents] for found in analyse(self.terms, texts)],
                frozenset(i for t, i in vocabulary.items() if t.isdigit()),
            ),
            unit=self.embeddings.embed(texts) if self.embeddings is not None else None,
            threshold=self.threshold,
            floor=self.embeddings.threshold if self.embeddings is not None else 1.0,
        )
        members = self._leader_pass(questions)
        members = self._linkage_pass(questions, members)
        groups = []
        for rows in members:
            rows.sort(key=lambda row: (-counts[texts[row]], texts[row]))
            variants = [(texts[row], counts[texts[row]]) for row in rows]
            groups.append(QuestionGroup(variants[0][0], sum(c for _, c in variants), variants))
        groups.sort(key=lambda g: (-g.count, g.question))
        return groups

    def _leader_pass(self, questions: _Questions) -> list[list[int]]:
        vectors, sizes, intents = questions.vectors, questions.sizes, questions.intents
        intent_ids = questions.intent_ids
        leaders: list[int] = []
        members: list[list[int]] = []
        postings: dict[int, list[int]] = {}  # content term -> groups whose leader has it
        for row, vector in enumerate(vectors):
            candidates = {g for t in vector if t not in intent_ids for g in postings.get(t, ())}
            best, best_score = -1, self.threshold
            for group in sorted(candidates):
                lead = leaders[group]
                if not _intents_agree(intents[lead], intents[row]):
                    continue
                if questions.unit is None:  # words only: the common case, kept cheap
                    score = weighted_jaccard(vectors[lead], vector, sizes[lead], sizes[row])
                else:
                    score = questions.similarity(lead, row)
                if (score > best_score or (score == best_score and best < 0)) and not questions.apart(
                    members[group], [row]
                ):
                    best, best_score = group, score
            if best < 0:
                leaders.append(row)
                members.append([row])
                for t in vector:
                    if t not in intent_ids:
                        postings.setdefault(t, []).append(len(leaders) - 1)
            else:
                members[best].append(row)
        return members

    def _linkage_pass(self, questions: _Questions, members: list[list[int]]) -> list[list[int]]:
        vectors, intents, intent_ids = questions.vectors, questions.intents, questions.intent_ids
        merged: list[list[int]] = []
        merged_intents: list[Asks] = []
        postings: dict[int, set[int]] = {}  # content term -> merged groups with a member having it
        for rows in members:
            intent = intents[rows[0]]
            terms = {t for row in rows for t in vectors[row] if t not in intent_ids}
            candidates = {g for t in terms for g in postings.get(t, ())}
            best, best_score = -1, self.merge_threshold
            for index in sorted(candidates):
                if not _intents_agree(merged_intents[index], intent):
                    continue
                target = merged[index]
                if questions.similarity(target[0], rows[0]) < PREFILTER:
                    continue  # leaders this far apart cannot average above the merge threshold in practice
                if questions.apart(target, rows):
                    continue
                # The most frequent variants of each side stand for it: bounded work per pair.
                target, mine_rows = target[:LINKAGE_SAMPLE], rows[:LINKAGE_SAMPLE]
                score = sum(questions.similarity(a, b) for a in target for b in mine_rows)
                score /= len(target) * len(mine_rows)
                if score > best_score or (score == best_score and best < 0):
                    best, best_score = index, score
            if best < 0:
                best = len(merged)
                merged.append([])
                merged_intents.append(intent)
            merged[best].extend(rows)
            for t in terms:
                postings.setdefault(t, set()).add(best)
        return merged


def _intents_agree(a: Asks, b: Asks) -> bool:
    """One language, and both ask nothing specific ("how do I", or no marker) or they share a
    specific intent: "출산휴가 신청" and "출산휴가 기간" ask different things."""
    return a[0] == b[0] and (a[1] == b[1] or bool(a[1] & b[1]))
