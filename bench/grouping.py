"""Question grouping: pairwise precision and recall on the labelled set, and grouping time.

    python -m bench.grouping [--threshold T] [--sweep] [--days 30] [--distinct-per-day N]

Precision: of the question pairs put in one group, the share the labels put in one group.
Recall: of the pairs the labels put in one group, the share the grouping put together.
Targets: precision >= 0.95, recall >= 0.80. The timing part groups a month of distinct
questions (synthetic variants of the labelled ones with counts) as the FAQ would.
"""

from __future__ import annotations

import argparse
import itertools
import random
import time
from collections import Counter
from pathlib import Path

from insights.grouping import QuestionGrouper
from insights.terms import QuestionTerms, normalise_question

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
LABELLED = DATA / "question_groups.tsv"  # thresholds and word lists were chosen on this set
HOLDOUT = DATA / "question_groups_holdout.tsv"  # written afterwards, never tuned on


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


def month_of_questions(labelled: list[tuple[str, str]], days: int, distinct_per_day: int) -> Counter[str]:
    """Distinct question texts of a month with their counts: labelled ones plus numbered variants."""
    rng = random.Random(7)
    counts: Counter[str] = Counter()
    for day in range(days):
        for n in range(distinct_per_day):
            _, question = labelled[rng.randrange(len(labelled))]
            # Most traffic repeats known questions; a tail is new text (ids, dates, names).
            text = question if rng.random() < 0.6 else f"{question} {day}-{n}"
            counts[normalise_question(text)] += rng.randint(1, 20)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threshold", type=float, default=None)
    parser.add_argument("--sweep", action="store_true", help="precision/recall over thresholds and IDF powers")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--distinct-per-day", type=int, default=2000)
    parser.add_argument("--show-errors", action="store_true")
    args = parser.parse_args()
    labelled = load_labelled()
    terms = QuestionTerms()
    groups = len({g for g, _ in labelled})
    print(f"labelled set: {len(labelled)} questions in {groups} groups ({LABELLED.name})")
    if args.sweep:
        print("| idf power | threshold | precision | recall | false merges | missed pairs |")
        print("| --- | --- | --- | --- | --- | --- |")
        for power in (0.0, 0.5, 1.0):
            for threshold in (0.4, 0.45, 0.5, 0.55, 0.6, 0.65):
                grouper = QuestionGrouper(terms, threshold, idf_power=power)
                p, r, fp, fn = evaluate(grouper, labelled)
                print(f"| {power} | {threshold} | {p:.3f} | {r:.3f} | {fp} | {fn} |")
    grouper = QuestionGrouper(terms)
    if args.threshold is not None:
        grouper.threshold = args.threshold
    p, r, fp, fn = evaluate(grouper, labelled)
    print(f"default grouping (threshold {grouper.threshold}): precision {p:.3f} (target >= 0.95), "
          f"recall {r:.3f} (target >= 0.80), {fp} false-merge pairs, {fn} missed pairs")
    holdout = load_labelled(HOLDOUT)
    hp, hr, hfp, hfn = evaluate(grouper, holdout)
    print(f"held-out set: {len(holdout)} questions in {len({g for g, _ in holdout})} groups: precision {hp:.3f}, "
          f"recall {hr:.3f}, {hfp} false-merge pairs, {hfn} missed pairs")
    if args.show_errors:
        shown = labelled + holdout
        counts = Counter(normalise_question(q) for _, q in shown)
        label = {normalise_question(q): g for g, q in shown}
        for group in grouper.group(counts):
            names = {label[t] for t, _ in group.variants}
            if len(names) > 1:
                print("MERGED:", [(t, label[t]) for t, _ in group.variants])
        seen: dict[str, list[str]] = {}
        for group in grouper.group(counts):
            seen.setdefault(label[group.question], []).append(" | ".join(t for t, _ in group.variants))
        for name, parts in seen.items():
            if len(parts) > 1:
                print("SPLIT:", name, parts)
    counts = month_of_questions(labelled, args.days, args.distinct_per_day)
    started = time.perf_counter()
    month = QuestionGrouper(QuestionTerms()).group(counts)
    took = time.perf_counter() - started
    print(f"grouping {args.days} days: {len(counts):,} distinct questions "
          f"({sum(counts.values()):,} asked) into {len(month):,} groups in {took:.2f} s "
          "(includes loading the Korean model)")


if __name__ == "__main__":
    main()
