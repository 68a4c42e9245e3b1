"""Dialogue context: which entity does "is it quiet there?" ask about? The one mentioned last.

A query in a multi-turn chat often names nothing ("Do they allow pets?", "那里的门票是多少钱"); the
entity it is about was named a few turns earlier, by the user or by the assistant. The resolver
classifies the turns, newest first, and returns the intents of the most recent mention:

1. intents of the query itself win, the specific ones (leaves of the taxonomy: an entity) first;
2. a query naming only a general intent ("that hotel") takes the most recent specific intents
   under it from the history, or the general intent itself when the history has none;
3. a query naming nothing takes the most recent specific intents of the history (within
   ``max_turns``), else the most recent general ones, else "none".

It works with any :class:`~tokenflow_rag.classifiers.IntentClassifier` and any taxonomy with
parents; with :class:`~tokenflow_rag.metadata_taxonomy.MetadataTaxonomy` the specific intents are
entities and the general ones their domains. Predictions of turns are memoised per text, since
consecutive queries of one dialogue share their history.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from tokenflow_rag.classifiers.base import IntentClassifier
from tokenflow_rag.errors import ConfigError
from tokenflow_rag.types import IntentPrediction

logger = logging.getLogger(__name__)

__all__ = ["ContextResolver"]

_SPEAKER_PREFIXES = ("U: ", "S: ", "user: ", "assistant: ", "system: ")


class ContextResolver:
    """Resolve a query's intents from the query and the turns before it, preferring the latest mention.

    Args:
        classifier: Classifies single turns (e.g. ``RuleClassifier(MetadataTaxonomy...taxonomy)``).
        max_turns: How many previous turns to look back through (0 = the query alone).
        inherit_general: When no turn names a specific intent, take the latest general intents of
            the history (e.g. the domain "hotel" from "I need a hotel") instead of "none".
        cache_size: Turn predictions kept in memory (0 = no memo).

    >>> from tokenflow_rag.classifiers import RuleClassifier
    >>> from tokenflow_rag.metadata_taxonomy import MetadataTaxonomy
    >>> mt = MetadataTaxonomy.from_metadata([{"domain": "hotel", "entity_name": "ACORN GUEST HOUSE"},
    ...                                      {"domain": "hotel", "entity_name": "AVALON"}])
    >>> resolver = ContextResolver(RuleClassifier(mt.taxonomy))
    >>> resolver.resolve("Do they allow pets?", ["U: A hotel please", "S: How about the Avalon?"]).intents
    ('hotel__avalon',)
    """

    def __init__(
        self,
        classifier: IntentClassifier,
        *,
        max_turns: int = 8,
        inherit_general: bool = True,
        cache_size: int = 100_000,
    ) -> None:
        if not isinstance(classifier, IntentClassifier):
            raise ConfigError(f"classifier must have .taxonomy and .predict(texts), got {type(classifier).__name__}")
        if not isinstance(max_turns, int) or max_turns < 0:
            raise ConfigError(f"max_turns must be an integer >= 0, got {max_turns!r}")
        self.classifier = classifier
        self.max_turns = max_turns
        self.inherit_general = inherit_general
        self.cache_size = cache_size
        taxonomy = classifier.taxonomy
        has_children = {i.parent for i in taxonomy if i.parent is not None}
        self._specific = frozenset(i.name for i in taxonomy if i.name not in has_children)
        self._memo: dict[str, IntentPrediction] = {}

    @property
    def taxonomy(self):  # type: ignore[no-untyped-def]
        """The classifier's taxonomy."""
        return self.classifier.taxonomy

    def resolve(self, query: str, history: Sequence[str] = ()) -> IntentPrediction:
        """The prediction for ``query`` given the earlier turns ``history`` (oldest first).

        History turns may carry a speaker prefix (``"U: "``, ``"S: "``); it is ignored.
        """
        now = self._classify(query)
        specific = [i for i in now.intents if i in self._specific]
        general = [i for i in now.intents if i not in self._specific]
        if specific:
            if general:  # "the restaurant at the Acorn" names both: keep the entities of the named groups
                under = [i for i in specific if self._root_in(i, general)]
                specific = under or specific
            return _narrow(now, specific, "query")
        turns = list(history)[-self.max_turns :] if self.max_turns else []
        for back, turn in enumerate(reversed(turns), start=1):
            previous = self._classify(_strip_speaker(turn))
            found = [i for i in previous.intents if i in self._specific]
            if general:
                found = [i for i in found if self._root_in(i, general)]
            if found:
                logger.debug("resolved %r to %s from %d turn(s) back", query, found, back)
                return _narrow(previous, found, f"turn -{back}")
        if general:
            return _narrow(now, general, "query")
        if self.inherit_general:
            for back, turn in enumerate(reversed(turns), start=1):
                previous = self._classify(_strip_speaker(turn))
                if previous.intents:
                    return _narrow(previous, list(previous.intents), f"turn -{back}")
        return IntentPrediction(scores=dict(now.scores), intents=(), evidence=dict(now.evidence))

    def resolve_batch(self, queries: Sequence[str], histories: Sequence[Sequence[str]]) -> list[IntentPrediction]:
        """:meth:`resolve` for aligned lists of queries and histories."""
        if len(queries) != len(histories):
            raise ConfigError(f"got {len(queries)} queries but {len(histories)} histories; pass one history per query")
        return [self.resolve(q, h) for q, h in zip(queries, histories)]

    # -- internals ----------------------------------------------------------------------------
    def _classify(self, text: str) -> IntentPrediction:
        hit = self._memo.get(text)
        if hit is None:
            hit = self.classifier.predict([text])[0]
            if len(self._memo) >= self.cache_size:
                self._memo.clear()
            if self.cache_size:
                self._memo[text] = hit
        return hit

    def _root_in(self, name: str, general: Sequence[str]) -> bool:
        taxonomy = self.taxonomy
        seen = {name}
        while (parent := taxonomy[name].parent) is not None and parent not in seen:
            if parent in general:
                return True
            seen.add(parent)
            name = parent
        return False


def _strip_speaker(turn: str) -> str:
    for prefix in _SPEAKER_PREFIXES:
        if turn.startswith(prefix):
            return turn[len(prefix) :]
    return turn


def _narrow(prediction: IntentPrediction, intents: Sequence[str], where: str) -> IntentPrediction:
    """The prediction restricted to ``intents``, with where they came from in the evidence."""
    evidence = {i: (*prediction.evidence.get(i, ()), f"@{where}") for i in intents}
    return IntentPrediction(scores=dict(prediction.scores), intents=tuple(intents), evidence=evidence)
