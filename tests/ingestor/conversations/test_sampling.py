"""Conversation sampling rules (CONTRACT.md, "Sampling")."""

from __future__ import annotations

import hashlib
import math

import pytest

from ingestor.conversations.sampling import (
    ConversationFacts,
    ConversationSampler,
    RetentionPriority,
    SamplingDecision,
    SamplingReason,
    retention_priority,
)


def facts(
    *,
    total_turns: int = 2,
    has_error: bool = False,
    has_regeneration: bool = False,
    min_retrieval_score: float | None = 0.9,
) -> ConversationFacts:
    """Facts of an unremarkable conversation, with the given fields changed."""
    return ConversationFacts(
        total_turns=total_turns,
        has_error=has_error,
        has_regeneration=has_regeneration,
        min_retrieval_score=min_retrieval_score,
    )


PLAIN = facts()

# Rate 0 means only the rules can keep a conversation.
RULES_ONLY = ConversationSampler(0.0)


@pytest.mark.parametrize(
    ("conversation", "reason", "priority"),
    [
        (facts(has_error=True), "error", "high"),
        (facts(has_regeneration=True), "regeneration", "high"),
        (facts(min_retrieval_score=0.2), "low_retrieval_score", "high"),
        (facts(total_turns=5), "long_conversation", "medium"),
        (facts(total_turns=12), "long_conversation", "medium"),
    ],
)
def test_rule_keeps_conversation_with_reason_and_priority(
    conversation: ConversationFacts, reason: SamplingReason, priority: RetentionPriority
) -> None:
    """Each always-keep rule saves the conversation, not by the draw, at its priority."""
    decision = RULES_ONLY.decide("conv-1", conversation)
    assert decision == SamplingDecision(
        saved=True, reason=reason, is_sampled=False, retention_priority=priority
    )


def test_rules_apply_in_contract_order() -> None:
    """Error beats regeneration beats low score beats long conversation."""
    everything = facts(has_error=True, has_regeneration=True, min_retrieval_score=0.1, total_turns=9)
    assert RULES_ONLY.decide("c", everything).reason == "error"
    no_error = facts(has_regeneration=True, min_retrieval_score=0.1, total_turns=9)
    assert RULES_ONLY.decide("c", no_error).reason == "regeneration"
    low_and_long = facts(min_retrieval_score=0.1, total_turns=9)
    decision = RULES_ONLY.decide("c", low_and_long)
    assert (decision.reason, decision.retention_priority) == ("low_retrieval_score", "high")


def test_score_exactly_half_is_not_low() -> None:
    """The low-score rule is strictly below 0.5."""
    assert not RULES_ONLY.decide("c", facts(min_retrieval_score=0.5)).saved
    assert RULES_ONLY.decide("c", facts(min_retrieval_score=0.4999)).saved


def test_no_retrieval_score_is_not_low() -> None:
    """A conversation without retrieval is not kept by the low-score rule."""
    assert not RULES_ONLY.decide("c", facts(min_retrieval_score=None)).saved


def test_four_turns_is_not_long_but_five_is() -> None:
    """The long-conversation rule starts at 5 user turns."""
    assert not RULES_ONLY.decide("c", facts(total_turns=4)).saved
    assert RULES_ONLY.decide("c", facts(total_turns=5)).saved


def test_rate_zero_drops_every_rule_free_conversation() -> None:
    """With rate 0.0 nothing is kept by the draw."""
    decisions = [RULES_ONLY.decide(f"conv-{index}", PLAIN) for index in range(2000)]
    assert all(decision == SamplingDecision(False, "not_sampled", False, "low") for decision in decisions)


def test_rate_one_keeps_every_conversation_as_sampled() -> None:
    """With rate 1.0 every rule-free conversation is kept by the draw."""
    sampler = ConversationSampler(1.0)
    decisions = [sampler.decide(f"conv-{index}", PLAIN) for index in range(2000)]
    assert all(decision == SamplingDecision(True, "sampled", True, "low") for decision in decisions)


def test_rule_kept_conversation_is_not_marked_sampled_even_at_rate_one() -> None:
    """is_sampled stays False when a rule, not the draw, keeps the conversation."""
    decision = ConversationSampler(1.0).decide("c", facts(has_error=True))
    assert decision.saved
    assert not decision.is_sampled


def test_draw_is_deterministic_per_conversation_id() -> None:
    """The same id gets the same decision from any sampler with the same rate and seed."""
    first = ConversationSampler(0.5, seed=b"salt")
    second = ConversationSampler(0.5, seed=b"salt")
    for index in range(500):
        conversation_id = f"conv-{index}"
        assert first.decide(conversation_id, PLAIN) == second.decide(conversation_id, PLAIN)
        assert first.decide(conversation_id, PLAIN) == first.decide(conversation_id, PLAIN)


def test_draw_follows_the_contract_formula() -> None:
    """u is the big-endian 8-byte blake2b of seed + id over 2**64."""
    sampler = ConversationSampler(0.3, seed=b"k")
    digest = hashlib.blake2b(b"k" + "대화-42".encode(), digest_size=8).digest()
    expected = int.from_bytes(digest, "big") / 2**64
    assert sampler.draw("대화-42") == expected
    assert sampler.decide("대화-42", PLAIN).saved is (expected < 0.3)


def test_seed_changes_which_conversations_are_kept() -> None:
    """Different seeds keep different samples of the same ids."""
    ids = [f"conv-{index}" for index in range(200)]
    unsalted = [ConversationSampler(0.5).decide(i, PLAIN).saved for i in ids]
    salted = [ConversationSampler(0.5, seed=b"other").decide(i, PLAIN).saved for i in ids]
    assert unsalted != salted


def test_rate_point_two_keeps_about_a_fifth() -> None:
    """Over 20,000 ids, rate 0.2 keeps 20% within 1.5 points."""
    sampler = ConversationSampler(0.2)
    kept = sum(sampler.decide(f"conversation-{index}", PLAIN).saved for index in range(20_000))
    assert abs(kept / 20_000 - 0.2) <= 0.015


@pytest.mark.parametrize("rate", [-0.01, 1.01, math.nan, math.inf])
def test_rate_outside_zero_to_one_is_rejected(rate: float) -> None:
    """sample_rate must lie in [0, 1]."""
    with pytest.raises(ValueError, match="sample_rate"):
        ConversationSampler(rate)


@pytest.mark.parametrize(
    ("conversation", "priority"),
    [
        (facts(has_error=True, total_turns=8), "high"),
        (facts(has_regeneration=True), "high"),
        (facts(min_retrieval_score=0.1), "high"),
        (facts(total_turns=5), "medium"),
        (facts(total_turns=4), "low"),
        (PLAIN, "low"),
    ],
)
def test_retention_priority_mapping(conversation: ConversationFacts, priority: str) -> None:
    """high for error/regeneration/low score, medium for >= 5 turns, low otherwise."""
    assert retention_priority(conversation) == priority
