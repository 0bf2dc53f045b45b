"""Labelled answers for the quality statistics, and the exact quality figures computed from them.

Every answer is generated with known retrieval facts (scores on and around bin and
bucket edges, no results, reranking, regenerations, errors); ``expected_quality``
computes the contract's figures straight from the raw events, independently of the
hourly rows and histograms the service aggregates.
"""

from __future__ import annotations

import math
import random
import uuid
from datetime import datetime, timedelta
from typing import Any

from tests.support.events import make_event

EDGE_SCORES = (0.0, 0.1, 0.29, 0.3, 0.49, 0.4999, 0.5, 0.57, 0.9, 0.99, 1.0)


def labelled_answers(seed: int, now: datetime, count: int = 600) -> list[dict[str, Any]]:
    """Assistant answers (and some user questions) with every case of retrieval quality."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    for i in range(count):
        at = now - timedelta(minutes=rng.randrange(0, 36 * 60))
        if i % 5 == 0:
            events.append(make_event(rng, created_at=at))  # a question: not an answer
            continue
        event = make_event(rng, message_type="assistant", created_at=at)
        kind = rng.random()
        if kind < 0.1:
            del event["retrieval_info"]
        elif kind < 0.15:
            event["retrieval_info"] = {"query": "q", "retrieved_count": 0, "top_scores": []}
        elif kind < 0.2:
            event["retrieval_info"] = {"query": "q", "retrieved_count": 3, "top_scores": [], "reranking_used": True}
        elif kind < 0.25:
            event["retrieval_info"] = {"query": "q", "retrieved_count": 0, "top_scores": [0.8]}
        else:
            scores = [round(rng.uniform(0.0, 1.0), 4) for _ in range(rng.randrange(1, 5))]
            if rng.random() < 0.3:
                scores.append(rng.choice(EDGE_SCORES))
            info: dict[str, Any] = {"query": "q", "retrieved_count": len(scores), "top_scores": scores}
            if rng.random() < 0.8:
                info["reranking_used"] = rng.random() < 0.5
            event["retrieval_info"] = info
        event["is_regeneration"] = rng.random() < 0.2
        if rng.random() < 0.1:
            event["status"] = "error"
            event["error"] = {"type": "Timeout", "message": "upstream"}
        events.append(event)
    return events


def feedback_for(answers: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """Feedback on some answers (a few twice), with comments and user ids."""
    rng = random.Random(seed)
    out = []
    for event in answers:
        if event["message_type"] != "assistant" or rng.random() < 0.6:
            continue
        for _ in range(1 + (rng.random() < 0.1)):
            out.append({
                "feedback_id": str(uuid.UUID(int=rng.getrandbits(128))),
                "log_id": event["log_id"],
                "collection_name": event["collection_name"],
                "session_id": event["session_id"],
                "score": rng.choice((1, -1)),
                "comment": "틀렸어요, 연락처 kim@example.com",
                "user_id": "kim.minji",
                "created_at": event["created_at"],
            })
    return out


def _best(event: dict[str, Any]) -> float | None:
    info = event.get("retrieval_info")
    if info is None or info.get("retrieved_count") == 0 or not info.get("top_scores"):
        return None
    return float(max(info["top_scores"]))


def _nearest_rank(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _figures(answers: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    with_retrieval = [a for a in answers if "retrieval_info" in a]
    scored = [a for a in with_retrieval if _best(a) is not None]
    low = [a for a in scored if (_best(a) or 0.0) < threshold]
    other = [a for a in scored if (_best(a) or 0.0) >= threshold]
    bests = [_best(a) or 0.0 for a in scored]
    return {
        "answers": len(answers),
        "answers_with_retrieval": len(with_retrieval),
        "low_score_rate": _rate(len(low), len(with_retrieval)),
        "no_result_rate": _rate(len(with_retrieval) - len(scored), len(with_retrieval)),
        "bests": bests,
        "low": low, "other": other, "with_retrieval": with_retrieval,
        "regeneration_rate": _rate(sum(bool(a.get("is_regeneration")) for a in answers), len(answers)),
        "error_rate": _rate(sum(a.get("status") == "error" for a in answers), len(answers)),
    }


def expected_quality(
    events: list[dict[str, Any]], feedback: list[dict[str, Any]], collection: str | None, threshold: float = 0.5
) -> dict[str, Any]:
    """The quality answer's figures computed from the raw events (percentiles exact, nearest rank)."""
    answers = [e for e in events if e["message_type"] == "assistant"
               and (collection is None or e["collection_name"] == collection)]
    fb = [f for f in feedback if collection is None or f["collection_name"] == collection]
    f = _figures(answers, threshold)
    regen = lambda group: _rate(sum(bool(a.get("is_regeneration")) for a in group), len(group))  # noqa: E731
    used = [a for a in f["with_retrieval"] if a["retrieval_info"].get("reranking_used") is True]
    not_used = [a for a in f["with_retrieval"] if a["retrieval_info"].get("reranking_used") is not True]
    low_ids = {a["log_id"] for a in f["low"]}
    histogram = [0] * 10
    for best in f["bests"]:
        histogram[sum(best >= k / 10 for k in range(1, 10))] += 1
    by_collection = []
    for name in sorted({a["collection_name"] for a in answers} | {x["collection_name"] for x in fb}):
        mine = [a for a in answers if a["collection_name"] == name]
        g = _figures(mine, threshold)
        neg = sum(x["score"] == -1 for x in fb if x["collection_name"] == name)
        total = sum(x["collection_name"] == name for x in fb)
        by_collection.append({
            "collection_name": name, "answers": g["answers"], "low_score_rate": g["low_score_rate"],
            "no_result_rate": g["no_result_rate"], "p50_best_score": _nearest_rank(g["bests"], 0.5),
            "regeneration_rate": g["regeneration_rate"], "error_rate": g["error_rate"],
            "negative_feedback_rate": _rate(neg, total), "answers_with_retrieval": g["answers_with_retrieval"],
        })
    return {
        "answers": f["answers"],
        "answers_with_retrieval": f["answers_with_retrieval"],
        "low_score_rate": f["low_score_rate"],
        "no_result_rate": f["no_result_rate"],
        "best_score_percentiles": {f"p{q}": _nearest_rank(f["bests"], q / 100) for q in (10, 50, 90)},
        "best_score_histogram": histogram,
        "regeneration_rate": {"low_score": regen(f["low"]), "other": regen(f["other"])},
        "reranking": {
            "used": {"answers": len(used),
                     "low_score_rate": _rate(sum(a["log_id"] in low_ids for a in used), len(used))},
            "not_used": {"answers": len(not_used),
                         "low_score_rate": _rate(sum(a["log_id"] in low_ids for a in not_used), len(not_used))},
        },
        "feedback": {"positive": sum(x["score"] == 1 for x in fb), "negative": sum(x["score"] == -1 for x in fb)},
        "by_collection": by_collection,
    }


def check_quality(body: dict[str, Any], expected: dict[str, Any], tolerance: float = 0.01) -> None:
    """Every rate and count equals the exact figure; percentiles within ``tolerance``."""
    for name in ("answers", "answers_with_retrieval", "regeneration_rate", "reranking", "feedback"):
        assert _close(body[name], expected[name]), (name, body[name], expected[name])
    for name in ("low_score_rate", "no_result_rate"):
        assert math.isclose(body[name], expected[name], abs_tol=1e-12), (name, body[name], expected[name])
    assert [b["count"] for b in body["best_score_histogram"]] == expected["best_score_histogram"]
    assert [(b["from"], b["to"]) for b in body["best_score_histogram"]] == [
        (round(i / 10, 1), round((i + 1) / 10, 1)) for i in range(10)
    ]
    for name, value in expected["best_score_percentiles"].items():
        _within(body["best_score_percentiles"][name], value, tolerance)
    assert [c["collection_name"] for c in body["by_collection"]] == [
        c["collection_name"] for c in expected["by_collection"]
    ]
    for got, want in zip(body["by_collection"], expected["by_collection"], strict=True):
        _within(got.pop("p50_best_score"), want.pop("p50_best_score"), tolerance)
        assert _close(got, want), (got, want)


def _within(got: float | None, want: float | None, tolerance: float) -> None:
    assert (got is None) == (want is None), (got, want)
    if got is not None and want is not None:
        assert abs(got - want) <= tolerance, (got, want)


def _close(got: Any, want: Any) -> bool:
    if isinstance(want, dict):
        return isinstance(got, dict) and got.keys() == want.keys() and all(_close(got[k], want[k]) for k in want)
    if isinstance(want, float):
        return isinstance(got, (int, float)) and math.isclose(got, want, abs_tol=1e-12)
    return bool(got == want)
