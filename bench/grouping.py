"""Question grouping: pairwise precision and recall on the labelled set, and grouping time.

    python -m bench.grouping [--threshold T] [--sweep] [--days 30] [--distinct-per-day N] [--show-errors SET]

Precision: of the question pairs put in one group, the share the labels put in one group.
Recall: of the pairs the labels put in one group, the share the grouping put together.
Targets: precision >= 0.95, recall >= 0.80, on three labelled sets side by side: the tuning
set, a first held-out set (whose errors were studied to make the rules more general) and a
second held-out set written before that and never tuned on. With CHATLOG_EMBEDDINGS_URL
(and _MODEL, _API_KEY) set, the sets are scored again with the embeddings' cosine. The
timing part groups a month of distinct questions (synthetic variants of the tuning set's
with counts) as the FAQ would, and scores it by the variants' source labels.
"""

from __future__ import annotations

import argparse
import itertools
import random
import time
from collections import Counter
from pathlib import Path

from insights.embeddings import EmbeddingsClient
from insights.grouping import QuestionGroup, QuestionGrouper
from insights.terms import QuestionTerms, normalise_question
from shared.settings import Settings

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
LABELLED = DATA / "question_groups.tsv"  # thresholds and word lists were chosen on this set
HOLDOUT = DATA / "question_groups_holdout.tsv"  # written afterwards; its errors were studied in round 3
HOLDOUT2 = DATA / "question_groups_holdout2.tsv"  # written before that study, never tuned on


def load_labelled(path: Path = LABELLED) -> list[tuple[str, str]]:
    """(group, question) pairs of the labelled set."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            group, question = line.split("\t")
            rows.append((group, question))
    return rows


def pairwise(labelled: list[tuple[str, str]], predicted: dict[str, int]) -> tuple[float, float, int, int]:
    """Pairwise precision, recall, and the false-merge and missed pair counts."""
    tp = fp = fn = 0
    for (g1, q1), (g2, q2) in itertools.combinations(labelled, 2):
        same_label = g1 == g2
        same_group = predicted[normalise_question(q1)] == predicted[normalise_question(q2)]
        if same_group and same_label:
            tp += 1
        elif same_group:
            fp += 1
        elif same_label:
            fn += 1
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return precision, recall, fp, fn


def evaluate(grouper: QuestionGrouper, labelled: list[tuple[str, str]]) -> tuple[float, float, int, int]:
    """Group the labelled questions (each counted once) and score the grouping."""
    counts = Counter(normalise_question(q) for _, q in labelled)
    predicted: dict[str, int] = {}
    for number, group in enumerate(grouper.group(counts)):
        for text, _ in group.variants:
            predicted[text] = number
    return pairwise(labelled, predicted)


def month_of_questions(
    labelled: list[tuple[str, str]], days: int, distinct_per_day: int
) -> tuple[Counter[str], dict[str, str]]:
    """Distinct question texts of a month with their counts (labelled ones plus numbered
    variants), and each text's label (its source question's)."""
    rng = random.Random(7)
    counts: Counter[str] = Counter()
    labels: dict[str, str] = {}
    for day in range(days):
        for n in range(distinct_per_day):
            label, question = labelled[rng.randrange(len(labelled))]
            # Most traffic repeats known questions; a tail is new text (ids, dates, names).
            text = normalise_question(question if rng.random() < 0.6 else f"{question} {day}-{n}")
            counts[text] += rng.randint(1, 20)
            labels[text] = label
    return counts, labels


def pairwise_by_counts(groups: list[QuestionGroup], labels: dict[str, str]) -> tuple[float, float]:
    """Pairwise precision and recall of distinct texts from the contingency counts (no pair loop)."""
    cells: Counter[tuple[int, str]] = Counter()
    for number, group in enumerate(groups):
        for text, _ in group.variants:
            cells[number, labels[text]] += 1
    pairs = lambda n: n * (n - 1) // 2  # noqa: E731
    together = sum(pairs(n) for n in cells.values())
    grouped = sum(pairs(len(g.variants)) for g in groups)
    same_label = sum(pairs(n) for n in Counter(labels.values()).values())
    return (together / grouped if grouped else 1.0), (together / same_label if same_label else 1.0)


MONTH_BUDGET_SECONDS = 60  # the FAQ groups a month of distinct questions on request: a ceiling
SETS = {"tuning": LABELLED, "held-out 1": HOLDOUT, "held-out 2": HOLDOUT2}


def report(grouper: QuestionGrouper, sets: dict[str, list[tuple[str, str]]]) -> None:
    """One row per labelled set: precision and recall side by side, against the targets."""
    print("| set | questions | groups | precision (>= 0.95) | recall (>= 0.80) | false-merge pairs | missed pairs |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, labelled in sets.items():
        p, r, fp, fn = evaluate(grouper, labelled)
        groups = len({g for g, _ in labelled})
        print(f"| {name} | {len(labelled)} | {groups} | {p:.3f} | {r:.3f} | {fp} | {fn} |")


def show_errors(grouper: QuestionGrouper, labelled: list[tuple[str, str]]) -> None:
    """Groups that mix labels, and labels spread over several groups."""
    counts = Counter(normalise_question(q) for _, q in labelled)
    label = {normalise_question(q): g for g, q in labelled}
    groups = grouper.group(counts)
    for group in groups:
        if len({label[t] for t, _ in group.variants}) > 1:
            print("MERGED:", [(t, label[t]) for t, _ in group.variants])
    seen: dict[str, list[str]] = {}
    for group in groups:
        seen.setdefault(label[group.question], []).append(" | ".join(t for t, _ in group.variants))
    for name, parts in seen.items():
        if len(parts) > 1:
            print("SPLIT:", name, parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threshold", type=float, default=None)
    parser.add_argument("--sweep", action="store_true", help="precision/recall over thresholds (tuning set only)")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--distinct-per-day", type=int, default=2000)
    parser.add_argument("--show-errors", choices=sorted(SETS), default=None, help="print one set's errors")
    args = parser.parse_args()
    sets = {name: load_labelled(path) for name, path in SETS.items()}
    terms = QuestionTerms()
    if args.sweep:
        print("| threshold | precision | recall | false merges | missed pairs |")
        print("| --- | --- | --- | --- | --- |")
        for threshold in (0.4, 0.45, 0.5, 0.55, 0.6, 0.65):
            p, r, fp, fn = evaluate(QuestionGrouper(terms, threshold), sets["tuning"])
            print(f"| {threshold} | {p:.3f} | {r:.3f} | {fp} | {fn} |")
    grouper = QuestionGrouper(terms) if args.threshold is None else QuestionGrouper(terms, args.threshold)
    print(f"lexical grouping, threshold {grouper.threshold}:")
    report(grouper, sets)
    embeddings = EmbeddingsClient.from_settings(Settings.from_env())
    if embeddings is not None:  # CHATLOG_EMBEDDINGS_URL set: the same sets with its cosine too
        print(f"with embeddings ({embeddings.model or 'default model'}, cosine threshold {embeddings.threshold}):")
        report(QuestionGrouper(terms, grouper.threshold, embeddings=embeddings), sets)
    if args.show_errors:
        show_errors(grouper, sets[args.show_errors])
    counts, labels = month_of_questions(sets["tuning"], args.days, args.distinct_per_day)
    started = time.perf_counter()
    month = QuestionGrouper(QuestionTerms()).group(counts)
    took = time.perf_counter() - started
    mp, mr = pairwise_by_counts(month, labels)
    print(f"grouping {args.days} days: {len(counts):,} distinct questions "
          f"({sum(counts.values()):,} asked) into {len(month):,} groups in {took:.2f} s, "
          f"{took / MONTH_BUDGET_SECONDS:.0%} of a {MONTH_BUDGET_SECONDS} s budget "
          f"(includes loading the Korean model); pairwise precision {mp:.3f}, recall {mr:.3f} "
          "(variants labelled as their tuning-set source)")


if __name__ == "__main__":
    main()
