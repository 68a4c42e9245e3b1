"""A running tally of prompt tokens sent versus the fixed-k baseline, across the queries of a session."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from tokenflow_rag.types import Accounting


class SavingsTracker:
    """Accumulates :class:`Accounting` records and summarises the tokens saved.

    Thread-safe, so one tracker can be shared by concurrent queries (``batch``, ``abatch``).

    >>> from tokenflow_rag.types import Accounting
    >>> tracker = SavingsTracker()
    >>> tracker.record(Accounting((), {}, 1.0, 3, "x", False, "pushdown", tokens=60, baseline_tokens=100))
    >>> tracker.tokens_saved, round(tracker.saved_ratio, 2)
    (40, 0.4)
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.queries = 0
        """Retrievals recorded."""
        self.tokens = 0
        """Prompt tokens of the returned chunks, summed."""
        self.baseline_tokens = 0
        """Tokens the fixed-k baseline would have sent, over the queries where it was measured."""
        self.measured = 0
        self.measured_tokens = 0
        self.fallbacks = 0
        """Queries answered with the plain top-k."""
        self.intents: Counter[str] = Counter()
        """How often each intent was predicted ("none" for none)."""

    def record(self, accounting: Accounting) -> None:
        """Add one retrieval's accounting."""
        with self._lock:
            self.queries += 1
            self.tokens += accounting.tokens
            self.fallbacks += int(accounting.fallback)
            self.intents.update(accounting.intents or ("none",))
            if accounting.baseline_tokens is not None:
                self.measured += 1
                self.measured_tokens += accounting.tokens
                self.baseline_tokens += accounting.baseline_tokens

    @property
    def tokens_saved(self) -> int:
        """Baseline tokens minus sent tokens, over the queries whose baseline was measured (never guessed)."""
        return self.baseline_tokens - self.measured_tokens

    @property
    def saved_ratio(self) -> float:
        """Share of the baseline's tokens that was not sent (0.0 when nothing was measured)."""
        return self.tokens_saved / self.baseline_tokens if self.baseline_tokens else 0.0

    def reset(self) -> None:
        """Forget everything recorded so far."""
        with self._lock:
            self.queries = self.tokens = self.fallbacks = 0
            self.baseline_tokens = self.measured = self.measured_tokens = 0
            self.intents.clear()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready totals."""
        return {
            "queries": self.queries,
            "tokens": self.tokens,
            "baseline_tokens": self.baseline_tokens,
            "tokens_saved": self.tokens_saved,
            "saved_ratio": round(self.saved_ratio, 4),
            "fallbacks": self.fallbacks,
            "intents": dict(self.intents.most_common()),
        }

    def summary(self) -> str:
        """A short human-readable report, e.g. for ``print(retriever.savings.summary())``."""
        if not self.queries:
            return "tokenflow: no queries recorded yet"
        top = ", ".join(f"{name} {n}" for name, n in self.intents.most_common(5))
        saved = self.tokens_saved
        outcome = f"saved {saved} ({self.saved_ratio:.1%})" if saved >= 0 else f"{-saved} more sent"
        lines = [
            f"tokenflow: {self.queries} queries, {self.tokens} prompt tokens sent",
            f"  fixed-k baseline: {self.baseline_tokens} tokens; {outcome}",
            f"  intents: {top}; plain top-k fallbacks: {self.fallbacks}",
        ]
        if self.measured < self.queries:
            lines.append(f"  (baseline measured on {self.measured} of {self.queries} queries)")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return f"SavingsTracker(queries={self.queries}, tokens={self.tokens}, baseline_tokens={self.baseline_tokens})"
