"""Chat traffic built to trigger (or not) each improvement suggestion, with exact shares.

``balanced`` is healthy traffic: two collections, two models, three reasoning levels,
few low scores, regenerations and errors, fast answers, mostly good feedback; no rule
fires on it. Each scenario adds answers that push exactly one measure past its default
threshold. Shares are exact: the first ``round(n * share)`` answers of a block get the
property, in a shuffled order.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.events import make_event


@dataclass
class Traffic:
    """Events and feedback to post, and the answers' log_ids by collection."""

    events: list[dict[str, Any]] = field(default_factory=list)
    feedback: list[dict[str, Any]] = field(default_factory=list)
    answer_ids: dict[str, list[str]] = field(default_factory=dict)
    rng: random.Random = field(default_factory=lambda: random.Random(11))
    now: datetime = field(default_factory=lambda: datetime.now(UTC) - timedelta(minutes=1))

    @property
    def answers(self) -> int:
        return sum(e["message_type"] == "assistant" for e in self.events)

    def _flags(self, n: int, share: float) -> list[bool]:
        k = round(n * share)
        flags = [True] * k + [False] * (n - k)
        self.rng.shuffle(flags)
        return flags

    def block(
        self,
        collection: str,
        n: int,
        *,
        models: tuple[str | None, ...] = ("gpt-4o-mini", "claude-3-haiku"),
        levels: tuple[str | None, ...] = ("low", "medium", "high"),
        low: float = 0.1,
        regenerated: float = 0.03,
        failed: float = 0.02,
        latency: tuple[int, int] = (300, 3000),
        error_types: tuple[str | None, ...] = ("timeout",),
    ) -> None:
        """``n`` questions and answers of one collection."""
        lows, regens, errors = self._flags(n, low), self._flags(n, regenerated), self._flags(n, failed)
        failures = 0
        for i in range(n):
            at = self.now - timedelta(seconds=len(self.events) + 1)
            session = f"{collection}-{i // 3}"
            self.events.append(make_event(self.rng, session_id=session, collection_name=collection, created_at=at))
            best = self.rng.uniform(0.05, 0.45) if lows[i] else self.rng.uniform(0.6, 0.95)
            answer = make_event(
                self.rng, session_id=session, collection_name=collection, created_at=at, message_type="assistant",
                is_regeneration=regens[i],
                retrieval_info={"query": "q", "retrieved_count": 3, "reranking_used": True,
                                "top_scores": [round(best, 3), round(best / 2, 3)]},
                performance={"response_time_ms": self.rng.randrange(*latency), "token_count": 100},
            )
            for key, values in (("llm_model", models), ("reasoning_level", levels)):
                value = values[i % len(values)]
                if value is None:
                    answer.pop(key, None)
                else:
                    answer[key] = value
            if errors[i]:
                kind = error_types[failures % len(error_types)]
                failures += 1
                answer["status"] = "error"
                answer["error"] = {"message": "failed"} | ({"type": kind} if kind else {})
            self.events.append(answer)
            self.answer_ids.setdefault(collection, []).append(answer["log_id"])

    def rate(self, collection: str, n: int, negative: float) -> None:
        """``n`` pieces of feedback on the collection's answers, a ``negative`` share of them bad."""
        ids = self.answer_ids[collection]
        for i, bad in enumerate(self._flags(n, negative)):
            self.feedback.append({"log_id": ids[i % len(ids)], "collection_name": collection,
                                  "score": -1 if bad else 1})


def balanced() -> Traffic:
    """Healthy traffic: no suggestion is due."""
    traffic = Traffic()
    for collection in ("hr-docs", "it-helpdesk"):
        traffic.block(collection, 180)
        traffic.rate(collection, 30, 0.1)
    return traffic


UNNAMED: dict[str, Any] = {"models": (None,), "levels": (None,)}

# Each scenario: what it adds to the balanced traffic, and the (kind, collection) it must trigger.
SCENARIOS: dict[str, tuple[dict[str, Any], tuple[str, str | None]]] = {
    "low_retrieval": ({"collection": "low-kb", "n": 40, "low": 0.6, **UNNAMED}, ("low_retrieval", "low-kb")),
    "regeneration_by_collection": (
        {"collection": "regen-kb", "n": 40, "regenerated": 0.4, **UNNAMED}, ("high_regeneration", "regen-kb")
    ),
    "regeneration_by_model": (
        {"collection": "hr-docs", "n": 30, "regenerated": 0.5, "models": ("flaky-model",), "levels": (None,)},
        ("high_regeneration", None),
    ),
    "regeneration_by_level": (
        {"collection": "it-helpdesk", "n": 40, "regenerated": 0.6, "models": (None,), "levels": ("low",)},
        ("high_regeneration", None),
    ),
    "slow_responses": (
        {"collection": "hr-docs", "n": 30, "latency": (9000, 12000), "models": ("big-model",), "levels": (None,)},
        ("slow_responses", None),
    ),
    "errors": (
        {"collection": "error-kb", "n": 40, "failed": 0.25, "error_types": ("timeout", "timeout", "rate_limit", None),
         **UNNAMED},
        ("errors", "error-kb"),
    ),
}


def scenario(name: str) -> Traffic:
    """The balanced traffic plus the named scenario's answers (``negative_feedback``: bad feedback)."""
    traffic = balanced()
    if name == "balanced":
        return traffic
    if name == "negative_feedback":
        traffic.block("feedback-kb", 30, **UNNAMED)
        traffic.rate("feedback-kb", 25, 0.6)
        return traffic
    if name == "too_little_data":
        traffic.block("tiny-kb", 19, low=1.0, regenerated=1.0, failed=1.0, latency=(9000, 9001),
                      models=("tiny-model",), levels=(None,))
        traffic.rate("tiny-kb", 19, 1.0)
        return traffic
    block, _ = SCENARIOS[name]
    traffic.block(**block)
    return traffic
