"""The framework-free retriever core: classify -> size k -> restricted search -> token budget -> accounting.

Everything the LlamaIndex and LangChain adapters do happens here; they only translate types.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np

from tokenflow_rag.classifiers.base import IntentClassifier
from tokenflow_rag.embeddings.base import Embedder, get_embedder
from tokenflow_rag.errors import ConfigError, InvalidQueryError
from tokenflow_rag.policy import KDecision, KPolicy, is_positive_int
from tokenflow_rag.stores.base import VectorStore, matches_intents
from tokenflow_rag.text import clean_query
from tokenflow_rag.tokens import TokenCounter, get_token_counter
from tokenflow_rag.types import Accounting, IntentPrediction, RetrievalResult, ScoredChunk

logger = logging.getLogger(__name__)

_MAX_OVERFETCH_ROUNDS = 4


def _check_budget(token_budget: Any) -> int | None:
    if token_budget is not None and not is_positive_int(token_budget):
        raise ConfigError(f"token_budget must be a positive integer or None, got {token_budget!r}")
    return None if token_budget is None else int(token_budget)


class IntentRetriever:
    """Intent-aware retrieval over any :class:`VectorStore`.

    Args:
        store: Where the tagged chunks live.
        embedder: Embeds the query (the one the store was built with); a name or an instance.
        classifier: Predicts the query's intents; the rule classifier over the default taxonomy if omitted.
        policy: How k follows from the prediction (base k, cap, confidence floor).
        token_counter: A :class:`TokenCounter` or a name (``"cl100k_base"``, ``"hf:<model>"``).
        token_budget: Hard cap on the tokens of the returned chunks (None = no cap).
        overfetch: For stores without filter pushdown, fetch ``k * overfetch`` candidates per round.
        track_baseline: Also measure what plain top-``base_k`` would have returned (``baseline_tokens``).
            After a search the store filtered by itself this takes one more plain search, whose matching
            neighbours the filter missed (documents added without tags) are merged in; False skips it
            (``tokenflow bench`` reports the ratio both ways).

    >>> from tokenflow_rag import IntentRetriever, FaissStore, HashingEmbedder, Chunk
    >>> emb, store = HashingEmbedder(), FaissStore()
    >>> chunks = [Chunk("r1", "Refunds take 5 days", {"intents": ["refund"]}),
    ...           Chunk("s1", "Couriers deliver in 2 days", {"intents": ["shipping"]})]
    >>> store.add(chunks, emb.embed_documents([c.text for c in chunks]))
    >>> result = IntentRetriever(store, emb).retrieve("how long for my refund?")
    >>> result.ids, result.accounting.intents, result.accounting.topped_up  # one refund chunk, then a filler
    (['r1', 's1'], ('refund',), 1)
    """

    def __init__(
        self,
        store: VectorStore,
        embedder: Embedder | str | None = None,
        classifier: IntentClassifier | None = None,
        *,
        policy: KPolicy | None = None,
        token_counter: TokenCounter | str = "cl100k_base",
        token_budget: int | None = None,
        overfetch: int = 4,
        track_baseline: bool = True,
    ) -> None:
        if not isinstance(store, VectorStore):
            raise ConfigError(
                f"store must implement tokenflow_rag.stores.VectorStore (add/search/__len__/__iter__), "
                f"got {type(store).__name__}"
            )
        if classifier is None:
            from tokenflow_rag.classifiers.rules import RuleClassifier

            classifier = RuleClassifier()
        if not isinstance(classifier, IntentClassifier):
            raise ConfigError(f"classifier must have .taxonomy and .predict(texts), got {type(classifier).__name__}")
        token_budget = _check_budget(token_budget)
        # The candidate pool grows by this factor per round: 1 would search the same k again and again.
        if not is_positive_int(overfetch) or overfetch < 2:
            raise ConfigError(f"overfetch must be an integer >= 2, got {overfetch!r}")
        if not isinstance(token_counter, (str, TokenCounter)):
            raise ConfigError(
                f"token_counter must be a TokenCounter (with .name and .count(text)) or a name such as "
                f"'cl100k_base', got {token_counter!r}; wrap a function with tokenflow_rag.tokens.CallableTokenCounter"
            )
        self.store = store
        self.embedder = get_embedder(embedder)
        self.classifier = classifier
        self.policy = policy or KPolicy()
        self.token_counter = get_token_counter(token_counter) if isinstance(token_counter, str) else token_counter
        self.token_budget = token_budget
        self.overfetch = int(overfetch)
        self.track_baseline = track_baseline
        self._token_cache: dict[str, int] = {}

    @property
    def taxonomy(self):  # type: ignore[no-untyped-def]
        """The classifier's taxonomy."""
        return self.classifier.taxonomy

    # -- public API ---------------------------------------------------------------------------
    def classify(self, query: str) -> IntentPrediction:
        """The classifier's prediction for one query; on a classifier failure, a "none" prediction and a warning."""
        text = clean_query(query)
        try:
            return self.classifier.predict([text])[0]
        except InvalidQueryError:
            raise
        except Exception as exc:  # a broken classifier must not break retrieval: fall back to plain top-k
            logger.warning(
                "classifier %s failed (%s: %s); using plain top-k",
                type(self.classifier).__name__,
                type(exc).__name__,
                exc,
            )
            return IntentPrediction(scores={}, intents=(), evidence={"error": (f"{type(exc).__name__}: {exc}",)})

    def retrieve(
        self,
        query: str,
        *,
        k: int | None = None,
        token_budget: int | None = None,
        query_vector: np.ndarray | None = None,
    ) -> RetrievalResult:
        """Retrieve chunks for ``query``; ``k`` given explicitly always wins over intent sizing.

        ``query_vector``: search with this embedding instead of embedding ``query`` (e.g. a HyDE embedding);
        the intents are still predicted from ``query``.
        """
        text = clean_query(query)
        prediction = self.classify(text)
        decision = self.policy.decide(prediction, self.taxonomy, explicit_k=k)
        vector = self.embedder.embed_query(text) if query_vector is None else np.asarray(query_vector, np.float32)
        return self._search(
            vector, prediction, decision, self.token_budget if token_budget is None else _check_budget(token_budget)
        )

    def retrieve_with_prediction(
        self, query: str, prediction: IntentPrediction, *, k: int | None = None, token_budget: int | None = None
    ) -> RetrievalResult:
        """Like :meth:`retrieve` with a prediction made elsewhere (e.g. cached or oracle intents)."""
        text = clean_query(query)
        decision = self.policy.decide(prediction, self.taxonomy, explicit_k=k)
        vector = self.embedder.embed_query(text)
        return self._search(
            vector, prediction, decision, self.token_budget if token_budget is None else _check_budget(token_budget)
        )

    def retrieve_batch(self, queries: Sequence[str], *, k: int | None = None) -> list[RetrievalResult]:
        """Retrieve for several queries (classification is batched)."""
        if isinstance(queries, str | bytes):
            raise InvalidQueryError("retrieve_batch takes a list of queries, got one string; use retrieve(query)")
        texts = [clean_query(q) for q in queries]
        try:
            predictions = self.classifier.predict(texts)
        except Exception:
            predictions = [self.classify(t) for t in texts]
        # embed_query, as retrieve does: query and document embeddings differ for many models (E5, BGE prefixes).
        vectors = [self.embedder.embed_query(t) for t in texts]
        return [
            self._search(v, p, self.policy.decide(p, self.taxonomy, explicit_k=k), self.token_budget)
            for v, p in zip(vectors, predictions)
        ]

    async def aretrieve(self, query: str, *, k: int | None = None, token_budget: int | None = None) -> RetrievalResult:
        """Async :meth:`retrieve`: the CPU-bound work runs in a worker thread."""
        return await asyncio.to_thread(self.retrieve, query, k=k, token_budget=token_budget)

    def count_tokens(self, hits: Sequence[ScoredChunk]) -> int:
        """Tokens of the chunks' texts (cached per chunk id)."""
        total = 0
        for sc in hits:
            n = self._token_cache.get(sc.chunk.id)
            if n is None:
                n = self._token_cache[sc.chunk.id] = self.token_counter.count(sc.chunk.text)
            total += n
        return total

    # -- internals ----------------------------------------------------------------------------
    def _search(
        self, vector: np.ndarray, prediction: IntentPrediction, decision: KDecision, token_budget: int | None
    ) -> RetrievalResult:
        base_k = self.policy.base_k
        plain: list[ScoredChunk] | None = None  # plain neighbours fetched on the way, if any
        complete = False  # plain holds every neighbour the store gives (it returned fewer than asked)
        topped_up = 0
        if decision.fallback:
            hits = self.store.search(vector, decision.k)
            filter_mode = "none"
        else:
            hits, filter_mode, plain, complete = self._restricted_search(vector, decision.k, decision.search_intents)
            if len(hits) < decision.k:
                hits, topped_up, plain, complete = self._top_up(vector, hits, decision.k, plain, complete)
        baseline_tokens = None
        if self.track_baseline:
            if decision.fallback and decision.k == base_k:
                baseline = hits
            elif plain is not None and (complete or len(plain) >= min(base_k, len(self.store))):
                baseline = plain[:base_k]
            else:
                baseline = self.store.search(vector, base_k)
            baseline_tokens = self.count_tokens(baseline)
            if filter_mode == "pushdown":
                hits, topped_up = self._with_missed_matches(
                    hits, topped_up, plain if plain is not None else baseline, decision
                )
        hits, dropped = self._apply_budget(hits, token_budget)
        accounting = Accounting(
            intents=prediction.intents,
            scores=dict(prediction.scores),
            confidence=prediction.confidence,
            k=decision.k,
            k_reason=decision.reason,
            fallback=decision.fallback,
            filter_mode=filter_mode,
            searched_intents=decision.search_intents,
            topped_up=topped_up,
            tokens=self.count_tokens(hits),
            baseline_k=base_k,
            baseline_tokens=baseline_tokens,
            token_budget=token_budget,
            dropped_for_budget=dropped,
        )
        logger.info(
            "intents=%s k=%d (%s) filter=%s returned=%d tokens=%d baseline_tokens=%s",
            list(prediction.intents),
            decision.k,
            decision.reason,
            filter_mode,
            len(hits),
            accounting.tokens,
            baseline_tokens,
        )
        return RetrievalResult(tuple(hits), accounting)

    def _restricted_search(
        self, vector: np.ndarray, k: int, intents: Collection[str]
    ) -> tuple[list[ScoredChunk], str, list[ScoredChunk] | None, bool]:
        """Hits tagged with ``intents``: pushed down when the store can, else over-fetched and filtered.

        Also returns the plain neighbours fetched (None after a pushdown) and whether they are all there are.
        """
        if self.store.supports_filter:
            hits = self.store.search(vector, k, intents=intents)
            if self.store.supports_filter:
                return hits, "pushdown", None, False
            # The store stopped filtering during this search (an adapter's store rejected the filter): filter here.
        wanted = set(intents)
        fetch = max(k * self.overfetch, self.policy.base_k)
        for _ in range(_MAX_OVERFETCH_ROUNDS):
            plain = self.store.search(vector, fetch)
            hits = [sc for sc in plain if matches_intents(sc.chunk, wanted)][:k]
            if len(hits) >= k or len(plain) < fetch:
                break
            fetch *= self.overfetch
        return hits, "post-filter", plain, len(plain) < fetch

    def _top_up(
        self, vector: np.ndarray, hits: list[ScoredChunk], k: int, plain: list[ScoredChunk] | None, complete: bool
    ) -> tuple[list[ScoredChunk], int, list[ScoredChunk], bool]:
        """Too few tagged chunks matched: fill up with the nearest other neighbours, so k is honoured."""
        if plain is None or (not complete and len(plain) < min(k + len(hits), len(self.store))):
            plain = self.store.search(vector, k + len(hits))
            complete = len(plain) < k + len(hits)
        have = {sc.chunk.id for sc in hits}
        extra = [sc for sc in plain if sc.chunk.id not in have][: k - len(hits)]
        if extra:
            logger.info("only %d chunks matched the intent filter; topped up with %d neighbours", len(hits), len(extra))
        # Intent matches stay ahead of the filler, so a token budget drops filler first.
        return hits + extra, len(extra), plain, complete

    def _with_missed_matches(
        self, hits: list[ScoredChunk], topped_up: int, plain: list[ScoredChunk], decision: KDecision
    ) -> tuple[list[ScoredChunk], int]:
        """Merge in plain neighbours that match the intents but the store's filter missed.

        A store filters on the tags it holds: documents added to it later without tags (an adapter then tags
        them on the fly), or an approximate index, can miss a match that a plain search finds.
        """
        wanted = set(decision.search_intents)
        matched, filler = hits[: len(hits) - topped_up], hits[len(hits) - topped_up :]
        have = {sc.chunk.id for sc in matched}
        missed = [sc for sc in plain if sc.chunk.id not in have and matches_intents(sc.chunk, wanted)]
        if not missed:
            return hits, topped_up
        logger.info("%d matching neighbour(s) missing from the store's filtered search; merged in", len(missed))
        matched = sorted(matched + missed, key=lambda sc: -sc.score)[: decision.k]
        kept = {sc.chunk.id for sc in matched}
        filler = [sc for sc in filler if sc.chunk.id not in kept][: decision.k - len(matched)]
        return matched + filler, len(filler)

    def _apply_budget(self, hits: list[ScoredChunk], budget: int | None) -> tuple[list[ScoredChunk], int]:
        """Keep chunks in rank order while they fit the budget; a chunk too big to fit is skipped."""
        if budget is None:
            return list(hits), 0
        kept, used = [], 0
        for sc in hits:
            n = self.count_tokens([sc])
            if used + n <= budget:
                kept.append(sc)
                used += n
        dropped = len(hits) - len(kept)
        if dropped:
            logger.info("token budget %d: dropped %d of %d chunks", budget, dropped, len(hits))
            if not kept:
                logger.warning("token budget %d is smaller than every retrieved chunk; nothing returned", budget)
        return kept, dropped

    def describe(self) -> dict[str, Any]:
        """Configuration summary (for logs and the CLI)."""
        return {
            "store": type(self.store).__name__,
            "chunks": len(self.store),
            "embedder": self.embedder.name,
            "classifier": type(self.classifier).__name__,
            "taxonomy": self.taxonomy.name,
            "base_k": self.policy.base_k,
            "max_k": self.policy.max_k,
            "token_budget": self.token_budget,
        }
