"""Generated traffic for the alert rules: balanced weeks, anomalies, and a realistic week with daily cycles."""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class Mix:
    """How one stretch of traffic behaves."""

    per_minute: float = 4.0  # questions (each answered) per minute, on average
    error_rate: float = 0.01
    latency_ms: tuple[int, int] = (300, 900)
    low_score_rate: float = 0.05
    low_score: float = 0.5  # the threshold scores are drawn against


BALANCED = Mix()


def exchange(rng: random.Random, collection: str, at: datetime, mix: Mix) -> list[dict[str, Any]]:
    """One question and its answer at ``at``."""
    session = f"s-{rng.randrange(10**6)}"
    low = rng.random() < mix.low_score_rate
    best = rng.uniform(0.1, mix.low_score - 0.05) if low else rng.uniform(mix.low_score + 0.05, 0.95)
    common = {"session_id": session, "collection_name": collection, "created_at": at.isoformat()}
    answer: dict[str, Any] = {
        **common, "log_id": str(uuid.UUID(int=rng.getrandbits(128))), "message_type": "assistant",
        "message_content": "답변입니다 / here is the answer",
        "performance": {"response_time_ms": rng.randrange(*mix.latency_ms)},
        "retrieval_info": {"top_scores": [round(best, 3), round(best * rng.uniform(0.5, 1.0), 3)]},
    }
    if rng.random() < mix.error_rate:
        answer["status"] = "error"
        answer["error"] = {"type": "LLMTimeout", "message": "upstream timed out"}
    question = {**common, "log_id": str(uuid.UUID(int=rng.getrandbits(128))), "message_type": "user",
                "message_content": rng.choice(("연차 신청 방법?", "VPN 접속 오류", "How do I reset my password?"))}
    return [question, answer]


def stretch(rng: random.Random, collection: str, start: datetime, minutes: int, mix: Mix) -> list[dict[str, Any]]:
    """``minutes`` of traffic from ``start``: a Poisson-like count per minute around ``mix.per_minute``."""
    events: list[dict[str, Any]] = []
    for minute in range(minutes):
        at = start + timedelta(minutes=minute)
        count = _poisson(rng, mix.per_minute)
        for _ in range(count):
            events += exchange(rng, collection, at + timedelta(seconds=rng.uniform(0, 59.9)), mix)
    return events


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def daily_rate(at: datetime, peak: float) -> float:
    """Questions per minute at ``at``: a working-day curve (night ~3% of the peak, lunch dip), weekends at 40%."""
    hour = at.hour + at.minute / 60
    day = max(0.0, math.sin(math.pi * (hour - 7) / 13)) if 7 <= hour <= 20 else 0.0
    lunch = 0.75 if 12 <= hour < 13 else 1.0
    weekend = 0.4 if at.weekday() >= 5 else 1.0
    return peak * (0.03 + 0.97 * day * lunch) * weekend


def realistic(rng: random.Random, collection: str, start: datetime, minutes: int, peak: float) -> list[
    dict[str, Any]
]:
    """Healthy traffic with daily cycles and noise: rates that wander a little hour to hour."""
    events: list[dict[str, Any]] = []
    for hour in range(0, minutes, 60):
        at = start + timedelta(minutes=hour)
        mix = Mix(
            per_minute=daily_rate(at, peak) * rng.uniform(0.8, 1.2),
            error_rate=rng.uniform(0.0, 0.02),
            latency_ms=(rng.randrange(250, 400), rng.randrange(900, 1600)),
            low_score_rate=rng.uniform(0.03, 0.12),
        )
        events += stretch(rng, collection, at, min(60, minutes - hour), mix)
    return events
