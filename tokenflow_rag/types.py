"""Value objects passed between the parts of tokenflow_rag: chunks, predictions, results."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from types import MappingProxyType
from typing import Any

INTENTS_KEY = "intents"
"""Metadata key under which a chunk's intent tags are stored (a list of intent names)."""


def split_tags(text: str) -> tuple[str, ...]:
    """``"payment, refund"`` -> ``("payment", "refund")``: tags as flat-metadata stores and hand-written JSON
    carry them in one string (never one tag per character)."""
    return tuple(t.strip() for t in text.split(",") if t.strip())


@dataclass(frozen=True)
class Chunk:
    """A piece of a document, the unit that is embedded, tagged and returned.

    >>> Chunk("pay#methods", "We accept cards.", {"intents": ["payment"]}).intents
    ('payment',)
    """

    id: str
    text: str
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def intents(self) -> tuple[str, ...]:
        """The chunk's intent tags (empty when untagged); a string is a comma-separated list (``"payment,refund"``).

        >>> Chunk("c", "text", {"intents": "payment, refund"}).intents
        ('payment', 'refund')
        """
        tags = self.metadata.get(INTENTS_KEY) or ()
        return split_tags(tags) if isinstance(tags, str) else tuple(tags)

    def with_metadata(self, **updates: Any) -> Chunk:
        """A copy with metadata keys added or replaced."""
        return Chunk(self.id, self.text, {**self.metadata, **updates})


@dataclass(frozen=True)
class IntentPrediction:
    """What a classifier says about one text.

    Args:
        scores: Calibrated probability per intent, in [0, 1]; independent per intent (multi-label).
        intents: The intents that passed their thresholds, best first; empty means "none".
        evidence: Why, per intent: the keywords or patterns that fired (rules) or component names.
        components: Per-component score tables, e.g. ``{"rules": {...}, "neural": {...}}`` for a hybrid.

    >>> p = IntentPrediction({"payment": 0.9, "refund": 0.1}, ("payment",))
    >>> p.is_none, round(p.confidence, 2)
    (False, 0.9)
    """

    scores: Mapping[str, float]
    intents: tuple[str, ...]
    evidence: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    components: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "scores", MappingProxyType(dict(self.scores)))

    @property
    def is_none(self) -> bool:
        """True when no intent passed: the query has no business intent the taxonomy knows."""
        return not self.intents

    @property
    def confidence(self) -> float:
        """How sure the prediction is: the weakest chosen intent's score, or 1 - best score for "none"."""
        if self.intents:
            return min(self.scores[i] for i in self.intents)
        return 1.0 - max(self.scores.values(), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "intents": list(self.intents),
            "scores": {k: round(v, 4) for k, v in self.scores.items()},
            "confidence": round(self.confidence, 4),
            "evidence": {k: list(v) for k, v in self.evidence.items()},
            "components": {c: {k: round(v, 4) for k, v in s.items()} for c, s in self.components.items()},
        }


@dataclass(frozen=True)
class ScoredChunk:
    """A retrieved chunk with its similarity score (higher is closer)."""

    chunk: Chunk
    score: float


@dataclass(frozen=True)
class Accounting:
    """How a retrieval was decided and what it cost, attached to every result.

    Args:
        intents: Predicted intents (empty = none).
        scores: Per-intent scores of the prediction.
        confidence: The prediction's confidence.
        k: Number of chunks asked for.
        k_reason: Why this k ("explicit", "intent budgets ...", "fallback: ...").
        fallback: True when the plain top-k retrieval was used instead of the intent-restricted one.
        filter_mode: "pushdown" (the store filtered), "post-filter" (over-fetched and filtered) or "none".
        searched_intents: Intents the search was restricted to (predicted plus their children).
        topped_up: Chunks added from outside the intent filter because too few tagged chunks matched.
        tokens: Tokens of the returned chunks.
        baseline_k: k of the plain fixed-k retrieval this replaces.
        baseline_tokens: Tokens the plain fixed-k retrieval would have returned (None if not measured).
        token_budget: The hard token budget, if any.
        dropped_for_budget: Chunks dropped to respect the token budget.
    """

    intents: tuple[str, ...]
    scores: Mapping[str, float]
    confidence: float
    k: int
    k_reason: str
    fallback: bool
    filter_mode: str
    searched_intents: tuple[str, ...] = ()
    topped_up: int = 0
    tokens: int = 0
    baseline_k: int = 0
    baseline_tokens: int | None = None
    token_budget: int | None = None
    dropped_for_budget: int = 0

    @property
    def tokens_saved(self) -> int | None:
        """Baseline tokens minus returned tokens (negative when more was returned)."""
        return None if self.baseline_tokens is None else self.baseline_tokens - self.tokens

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = asdict(self)
        out["intents"] = list(self.intents)
        out["searched_intents"] = list(self.searched_intents)
        out["scores"] = {k: round(v, 4) for k, v in self.scores.items()}
        out["confidence"] = round(self.confidence, 4)
        out["tokens_saved"] = self.tokens_saved
        return out


@dataclass(frozen=True)
class RetrievalResult:
    """Chunks returned for one query, best first, with the accounting of how they were chosen."""

    chunks: tuple[ScoredChunk, ...]
    accounting: Accounting

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.chunks)

    def __len__(self) -> int:
        return len(self.chunks)

    @property
    def ids(self) -> list[str]:
        """Ids of the returned chunks, best first."""
        return [sc.chunk.id for sc in self.chunks]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the accounting fields plus ``chunks`` (id, text, score, intents)."""
        out = self.accounting.to_dict()
        out["chunks"] = [
            {"id": sc.chunk.id, "text": sc.chunk.text, "score": round(sc.score, 4), "intents": list(sc.chunk.intents)}
            for sc in self.chunks
        ]
        return out
