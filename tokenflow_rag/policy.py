"""Choosing k (and whether to restrict the search) from an intent prediction."""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

from tokenflow_rag.errors import ConfigError
from tokenflow_rag.taxonomy import Taxonomy
from tokenflow_rag.types import IntentPrediction


def is_positive_int(value: object) -> bool:
    """An integer >= 1 of any integer type (numpy's too), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= 1


@dataclass(frozen=True)
class KPolicy:
    """How many chunks to fetch for a prediction.

    Args:
        base_k: The plain top-k used when unsure (and the fixed-k baseline it replaces).
        max_k: Cap on the sum of per-intent budgets for multi-intent queries.
        min_confidence: Below this prediction confidence, fall back to plain top-``base_k``.

    >>> KPolicy(base_k=5, max_k=8).max_k
    8
    """

    base_k: int = 5
    max_k: int = 8
    min_confidence: float = 0.5

    def __post_init__(self) -> None:
        for name in ("base_k", "max_k"):
            value = getattr(self, name)
            if not is_positive_int(value):
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
            object.__setattr__(self, name, int(value))  # frozen: numpy integers stored as int
        confidence: Any = self.min_confidence
        if not isinstance(confidence, int | float) or isinstance(confidence, bool) or not 0.0 <= confidence <= 1.0:
            raise ConfigError(f"min_confidence must be in [0, 1], got {self.min_confidence!r}")

    def decide(self, prediction: IntentPrediction, taxonomy: Taxonomy, explicit_k: int | None = None) -> KDecision:
        """k, its reason, and the intents to restrict the search to (empty = plain search)."""
        if explicit_k is not None and not is_positive_int(explicit_k):
            raise ConfigError(f"k must be a positive integer, got {explicit_k!r}")
        explicit_k = None if explicit_k is None else int(explicit_k)  # numpy integers reach FAISS as int
        if prediction.is_none:
            return self._fallback(explicit_k, "no intent predicted")
        if prediction.confidence < self.min_confidence:
            return self._fallback(
                explicit_k, f"confidence {prediction.confidence:.2f} < min_confidence {self.min_confidence:.2f}"
            )
        known = [name for name in prediction.intents if name in taxonomy]
        if not known:
            return self._fallback(explicit_k, "predicted intents are not in the taxonomy")
        search_intents = taxonomy.expand(known)
        if explicit_k is not None:
            return KDecision(explicit_k, "explicit k from the caller", False, search_intents)
        budget = sum(taxonomy[name].k for name in known)
        k = min(budget, self.max_k)
        parts = " + ".join(f"{name}:{taxonomy[name].k}" for name in known)
        reason = f"intent budgets {parts}" + (f", capped at max_k={self.max_k}" if budget > self.max_k else "")
        return KDecision(k, reason, False, search_intents)

    def _fallback(self, explicit_k: int | None, why: str) -> KDecision:
        if explicit_k is not None:
            return KDecision(explicit_k, f"explicit k from the caller (plain search: {why})", True, ())
        return KDecision(self.base_k, f"fallback to base_k={self.base_k}: {why}", True, ())


POLICY_SETTINGS = ("base_k", "max_k", "min_confidence")
"""The knobs of :class:`KPolicy`, which the adapters also take as keyword arguments."""


@dataclass(frozen=True)
class KDecision:
    """The outcome of :meth:`KPolicy.decide`."""

    k: int
    reason: str
    fallback: bool
    search_intents: tuple[str, ...]
