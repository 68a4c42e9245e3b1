"""Choosing k from a prediction."""

from __future__ import annotations

import pytest

from tokenflow_rag import IntentPrediction, KPolicy, default_taxonomy
from tokenflow_rag.errors import ConfigError

TAX = default_taxonomy()


def prediction(**scores: float) -> IntentPrediction:
    return IntentPrediction(scores, tuple(n for n, s in sorted(scores.items(), key=lambda kv: -kv[1]) if s >= 0.5))


def test_single_intent_uses_its_budget_and_searches_children():
    decision = KPolicy(base_k=5).decide(prediction(payment=0.9), TAX)
    assert decision.k == TAX["payment"].k
    assert not decision.fallback
    assert set(decision.search_intents) == {"payment", "refund"}
    assert "payment:3" in decision.reason


def test_budgets_sum_over_intents_and_are_capped():
    policy = KPolicy(base_k=5, max_k=5)
    decision = policy.decide(prediction(payment=0.9, notification=0.8), TAX)
    assert decision.k == 5 and "capped at max_k=5" in decision.reason
    assert KPolicy(max_k=20).decide(prediction(payment=0.9, notification=0.8), TAX).k == 6


def test_none_and_low_confidence_fall_back_to_base_k():
    policy = KPolicy(base_k=7, min_confidence=0.7)
    none = policy.decide(IntentPrediction({"payment": 0.1}, ()), TAX)
    assert (none.k, none.fallback, none.search_intents) == (7, True, ())
    unsure = policy.decide(prediction(payment=0.6), TAX)
    assert unsure.fallback and unsure.k == 7 and "confidence 0.60" in unsure.reason


def test_explicit_k_always_wins():
    policy = KPolicy(base_k=5)
    assert policy.decide(prediction(payment=0.9), TAX, explicit_k=2).k == 2
    assert policy.decide(IntentPrediction({}, ()), TAX, explicit_k=9).k == 9
    with pytest.raises(ConfigError, match="k must be a positive integer"):
        policy.decide(prediction(payment=0.9), TAX, explicit_k=0)


@pytest.mark.parametrize("kwargs", [{"base_k": 0}, {"max_k": -1}, {"min_confidence": 1.5}])
def test_bad_policy(kwargs):
    with pytest.raises(ConfigError):
        KPolicy(**kwargs)
