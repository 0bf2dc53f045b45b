"""Which closed conversations are saved, and how long they deserve to be kept.

Rules (CONTRACT.md, "Sampling"): a conversation with an error, a
regeneration, a retrieval score below 0.5 or at least 5 turns is always kept;
any other is kept with probability ``sample_rate``. The draw is a hash of the
conversation id, not a random number, so a conversation that is judged again
(a later continuation, a replay after a crash, the same conversation posted
twice) gets the same answer every time.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Literal

LOW_RETRIEVAL_SCORE_THRESHOLD = 0.5
LONG_CONVERSATION_MIN_TURNS = 5

RetentionPriority = Literal["high", "medium", "low"]
SamplingReason = Literal[
    "error", "regeneration", "low_retrieval_score", "long_conversation", "sampled", "not_sampled"
]

_DRAW_SPACE = 2**64


@dataclass(frozen=True, slots=True)
class ConversationFacts:
    """What the sampling rules need to know about one conversation.

    ``total_turns`` counts user messages; ``min_retrieval_score`` is the lowest
    retrieval score seen in the conversation, None when nothing was retrieved.
    """

    total_turns: int
    has_error: bool
    has_regeneration: bool
    min_retrieval_score: float | None


@dataclass(frozen=True, slots=True)
class SamplingDecision:
    """Whether a conversation is saved, why, and its retention metadata.

    ``is_sampled`` is True only when the random draw kept it; a conversation
    kept by a rule has ``is_sampled`` False.
    """

    saved: bool
    reason: SamplingReason
    is_sampled: bool
    retention_priority: RetentionPriority


def _rule_reason(facts: ConversationFacts) -> SamplingReason | None:
    if facts.has_error:
        return "error"
    if facts.has_regeneration:
        return "regeneration"
    score = facts.min_retrieval_score
    if score is not None and score < LOW_RETRIEVAL_SCORE_THRESHOLD:
        return "low_retrieval_score"
    if facts.total_turns >= LONG_CONVERSATION_MIN_TURNS:
        return "long_conversation"
    return None


_PRIORITY_BY_REASON: dict[SamplingReason, RetentionPriority] = {
    "error": "high",
    "regeneration": "high",
    "low_retrieval_score": "high",
    "long_conversation": "medium",
    "sampled": "low",
    "not_sampled": "low",
}


def retention_priority(facts: ConversationFacts) -> RetentionPriority:
    """``high`` for error, regeneration or low score, ``medium`` for long, else ``low``."""
    reason = _rule_reason(facts)
    return "low" if reason is None else _PRIORITY_BY_REASON[reason]


class ConversationSampler:
    """Applies the sampling rules with a per-conversation deterministic draw."""

    def __init__(self, sample_rate: float, seed: bytes = b"") -> None:
        """``sample_rate`` in [0, 1] is the share of rule-free conversations kept.

        ``seed`` salts the draw, so two deployments with the same ids can keep
        different samples. Raises ValueError for a rate outside [0, 1] or NaN.
        """
        if math.isnan(sample_rate) or not 0.0 <= sample_rate <= 1.0:
            raise ValueError(f"sample_rate must be between 0.0 and 1.0, got {sample_rate!r}")
        self._sample_rate = float(sample_rate)
        # Comparing the raw 64-bit draw with rate * 2**64 (exact: a power-of-two
        # scale) is u < rate without the float rounding of u, which would turn
        # the largest draws into 1.0 and make rate 1.0 drop a conversation.
        self._keep_below = self._sample_rate * _DRAW_SPACE
        self._seed = seed

    @property
    def sample_rate(self) -> float:
        """The probability that a conversation no rule keeps is kept anyway."""
        return self._sample_rate

    def _draw_bits(self, conversation_id: str) -> int:
        digest = hashlib.blake2b(self._seed + conversation_id.encode("utf-8"), digest_size=8).digest()
        return int.from_bytes(digest, "big")

    def draw(self, conversation_id: str) -> float:
        """The conversation's fixed draw u in [0, 1] (rounded); it is kept when u < rate."""
        return self._draw_bits(conversation_id) / _DRAW_SPACE

    def decide(self, conversation_id: str, facts: ConversationFacts) -> SamplingDecision:
        """Judge one closed conversation: rules first, then the draw."""
        reason = _rule_reason(facts)
        if reason is not None:
            return SamplingDecision(
                saved=True,
                reason=reason,
                is_sampled=False,
                retention_priority=_PRIORITY_BY_REASON[reason],
            )
        kept = self._draw_bits(conversation_id) < self._keep_below
        return SamplingDecision(
            saved=kept,
            reason="sampled" if kept else "not_sampled",
            is_sampled=kept,
            retention_priority="low",
        )
