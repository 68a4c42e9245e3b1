"""Framework-free plumbing shared by the adapters' store wrappers.

A framework's store (a LlamaIndex index or retriever, a LangChain vector store) becomes a core
:class:`~tokenflow_rag.stores.VectorStore` through a :class:`FrameworkStore` subclass that only knows
how to run one query (``_query``). Everything else lives here, once: deciding between filter pushdown
and post-filtering, tagging untagged candidates on the fly (cached by id), and degrading to the plain
top-k with one warning when the store, its tags or the classifier misbehave.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import numpy as np

from tokenflow_rag.classifiers.base import IntentClassifier
from tokenflow_rag.errors import ConfigError, IndexStoreError, InvalidQueryError
from tokenflow_rag.retriever import IntentRetriever
from tokenflow_rag.stores.base import matches_intents
from tokenflow_rag.stores.tag_encoding import TagEncoding
from tokenflow_rag.tagging import tag_chunks
from tokenflow_rag.text import clean_query
from tokenflow_rag.types import INTENTS_KEY, Accounting, Chunk, RetrievalResult, ScoredChunk

logger = logging.getLogger("tokenflow_rag.integrations")

ACCOUNTING_KEY = "tokenflow"
"""Metadata key of the accounting attached to every returned node / document."""

PROBE_K = 8
"""Nearest neighbours inspected on the first query to see whether the store carries intent tags."""

_QUERY: ContextVar[tuple[str, Any]] = ContextVar("tokenflow_query")


@contextmanager
def query_context(text: str, native: Any = None) -> Iterator[None]:
    """Make the query visible to the store wrapper (it also reaches worker threads of ``to_thread``).

    ``native``: the framework's own query object (a LlamaIndex ``QueryBundle``), passed on to wrapped retrievers.
    """
    token = _QUERY.set((text, native))
    try:
        yield
    finally:
        _QUERY.reset(token)


def current_query() -> str:
    """The query being served; the wrappers of text-based framework stores search with it."""
    return _QUERY.get()[0]


def current_native_query() -> Any:
    """The framework's query object of the query being served, or None."""
    return _QUERY.get()[1]


class NoEmbedder:
    """For stores that embed the query themselves: the core's vector is empty and ignored."""

    name = "framework"
    dim = 0

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return np.zeros((len(texts), 0), dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return np.zeros(0, dtype=np.float32)


@dataclass(frozen=True)
class Candidate:
    """One hit of a framework store: its id, text, metadata, similarity and the framework's own object."""

    id: str
    text: str
    metadata: Mapping[str, Any]
    score: float
    native: Any


class FrameworkStore:
    """Base of the adapters' store wrappers; a subclass implements ``_query`` (and may override ``_count``).

    Args:
        classifier: Tags untagged candidates on the fly.
        encoding: How tags are stored in this store's metadata.
        can_push_down: The store accepts the intent filter (``_query`` with ``intents``).
        tag_missing: Tag untagged candidates on the fly; when False they stay untagged (plain top-k).
    """

    def __init__(
        self, classifier: IntentClassifier, *, encoding: TagEncoding, can_push_down: bool, tag_missing: bool = True
    ) -> None:
        self.classifier = classifier
        self.encoding = encoding
        self.can_push_down = can_push_down
        self.tag_missing = tag_missing
        self.supports_filter: bool = False  # kept in step with ``mode``
        self.mode = None if can_push_down else "post-filter"
        self.tags: dict[str, tuple[str, ...]] = {}
        self.native: dict[str, Candidate] = {}  # last hit per id: maps the core's chunks back to framework objects
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    # -- what a subclass provides -------------------------------------------------------------
    def _query(self, vector: np.ndarray | None, k: int, intents: Collection[str] | None) -> list[Candidate]:
        raise NotImplementedError

    def _count(self) -> int | None:
        return None

    @property
    def name(self) -> str:
        """The wrapped framework object's class name, for messages."""
        return type(self).__name__

    # -- the VectorStore protocol -------------------------------------------------------------
    @property
    def mode(self) -> str | None:
        """The filter strategy: ``pushdown``, ``post-filter``, or None until the first query decides."""
        return self._mode

    @mode.setter
    def mode(self, value: str | None) -> None:
        self._mode = value
        self.supports_filter = value == "pushdown"

    def add(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        raise TypeError(f"{type(self).__name__} reads a framework store; add documents through the framework")

    def search(self, vector: np.ndarray, k: int, *, intents: Collection[str] | None = None) -> list[ScoredChunk]:
        query_vector = vector if vector.size else None
        if intents is not None and self.mode == "pushdown":
            try:
                return self._scored(self._query(query_vector, k, intents))
            except Exception as exc:  # the store rejected the filter: degrade, never fail the query
                self.mode = "post-filter"
                self.warn_once(
                    "filter",
                    "%s rejected the intent filter (%s: %s); filtering after the search from now on",
                    self.name,
                    type(exc).__name__,
                    exc,
                )
                return []
        hits = self._scored(self._query(query_vector, k, None))
        return hits if intents is None else [sc for sc in hits if matches_intents(sc.chunk, set(intents))]

    def __len__(self) -> int:
        n = self._count()
        return sys.maxsize if n is None else n  # unknown size: the core then simply searches again when short

    def __iter__(self) -> Iterator[Chunk]:
        """The documents retrieved so far (a framework store need not list its contents)."""
        return iter([self._chunk(c) for c in list(self.native.values())])

    # -- deciding pushdown --------------------------------------------------------------------
    def prepare(self) -> None:
        """Decide pushdown once, on the first query: only a store whose nearest documents carry tags can filter."""
        if self.mode is not None:
            return
        candidates = self._query(None, PROBE_K, None)
        if not candidates:
            return  # empty store: decide when it has documents
        untagged = [c for c in candidates if self.encoding.decode(c.metadata) is None]
        if not untagged:
            self.mode = "pushdown"
        else:
            # Without on-the-fly tags the filter matches nothing anyway: keep the cheap pushdown, the core tops up.
            self.mode = "post-filter" if self.tag_missing else "pushdown"
            self._report_untagged(len(untagged), len(candidates))

    def pretag(self, ids: Sequence[str], texts: Sequence[str], metadatas: Sequence[Mapping[str, Any]]) -> None:
        """Tag the untagged records of a store that can list its contents (a LlamaIndex docstore) at wrap time."""
        if not ids:
            return
        todo = [i for i, md in enumerate(metadatas) if self.encoding.decode(md) is None]
        if not todo:
            self.mode = "pushdown" if self.can_push_down else "post-filter"
            return
        self._report_untagged(len(todo), len(ids))
        if self.tag_missing:  # the store lacks the tags the cache has: it cannot filter on them
            self.mode = "post-filter"
            self._tag([Chunk(ids[i], texts[i]) for i in todo])

    def _report_untagged(self, n: int, total: int) -> None:
        if self.tag_missing:
            self.warn_once(
                "untagged",
                "%d of %d documents carry no intent tags under metadata key %r; tagging them on the "
                "fly (cached by id) and filtering after the search. Tag while indexing (tag_nodes, from_texts) "
                "for filter pushdown.",
                n,
                total,
                INTENTS_KEY,
            )
        else:
            self.warn_once(
                "untagged",
                "%d of %d documents carry no intent tags under metadata key %r (stored under another "
                "key?) and tag_missing=False: such queries return the plain top-k.",
                n,
                total,
                INTENTS_KEY,
            )

    # -- tags ---------------------------------------------------------------------------------
    def _scored(self, candidates: list[Candidate]) -> list[ScoredChunk]:
        missing = [c for c in candidates if c.id not in self.tags and self.encoding.decode(c.metadata) is None]
        if missing:
            self._report_untagged(len(missing), len(candidates))
            if self.tag_missing:
                self._tag([Chunk(c.id, c.text) for c in missing])
                if self.mode == "pushdown":  # documents added without tags: the store's filter cannot see them
                    self.mode = "post-filter"
        for c in candidates:
            self.native[c.id] = c
        return [ScoredChunk(self._chunk(c), c.score) for c in candidates]

    def _tag(self, chunks: list[Chunk]) -> None:
        try:
            tagged = tag_chunks(chunks, self.classifier, progress=False)
        except Exception as exc:  # a broken classifier leaves documents untagged: they stay reachable via top-up
            self.warn_once(
                "tagging",
                "tagging documents with %s failed (%s: %s); they stay untagged",
                type(self.classifier).__name__,
                type(exc).__name__,
                exc,
            )
            return
        with self._lock:
            self.tags.update((c.id, c.intents) for c in tagged)

    def tags_of(self, candidate: Candidate) -> tuple[str, ...] | None:
        """The candidate's tags: stored ones first, else the ones tagged on the fly, else None."""
        stored = self.encoding.decode(candidate.metadata)
        return stored if stored is not None else self.tags.get(candidate.id)

    def _chunk(self, c: Candidate) -> Chunk:
        tags = self.tags_of(c)
        metadata = {k: v for k, v in c.metadata.items() if k != INTENTS_KEY}
        return Chunk(c.id, c.text, metadata if tags is None else {**metadata, INTENTS_KEY: list(tags)})

    def warn_once(self, key: str, message: str, *args: Any) -> None:
        """Log a warning the first time ``key`` comes up for this store."""
        if key not in self._warned:
            self._warned.add(key)
            logger.warning(message, *args)


def retrieve(
    core: IntentRetriever,
    store: FrameworkStore,
    query: str,
    k: int | None,
    *,
    vector: np.ndarray | None = None,
    native: Any = None,
) -> RetrievalResult:
    """Run the core for one query; an unexpected failure gives the plain top-k and one warning, never an error.

    ``vector``: a query embedding the caller already has; ``native``: the framework's query object.
    """
    text = clean_query(query)
    with query_context(text, native):
        try:
            store.prepare()
            return core.retrieve(text, k=k, query_vector=vector)
        except (InvalidQueryError, ConfigError):  # the caller's mistake (empty query, k=0): say so
            raise
        except Exception as exc:
            store.warn_once(
                "core", "intent-aware retrieval failed (%s: %s); returning the plain top-k", type(exc).__name__, exc
            )
            n = k or core.policy.base_k
            try:
                hits = store._scored(store._query(vector, n, None))[:n]
            except Exception as plain_exc:  # the store itself fails: nothing to fall back to
                raise IndexStoreError(
                    f"{store.name} failed to search "
                    f"({type(plain_exc).__name__}: {plain_exc or 'no message'}); check the store and the search "
                    "arguments given to it"
                ) from plain_exc
            accounting = Accounting(
                intents=(),
                scores={},
                confidence=0.0,
                k=n,
                k_reason=f"fallback: {type(exc).__name__}",
                fallback=True,
                filter_mode="none",
                tokens=core.count_tokens(hits),
                baseline_k=core.policy.base_k,
            )
            return RetrievalResult(tuple(hits), accounting)


def tag_records(
    texts: Sequence[str],
    metadatas: Sequence[Mapping[str, Any]] | None,
    classifier: IntentClassifier,
    encoding: TagEncoding,
    ids: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Metadata for records about to be indexed, with their tags in ``encoding`` (tags the user set win)."""
    metadatas = metadatas or [{} for _ in texts]
    if len(metadatas) != len(texts):
        raise ValueError(f"got {len(texts)} texts but {len(metadatas)} metadatas; pass one metadata dict per text")
    chunks = [Chunk(ids[i] if ids else str(i), t, dict(md)) for i, (t, md) in enumerate(zip(texts, metadatas))]
    tagged = tag_chunks(chunks, classifier, progress=len(chunks) > 256)
    return [{**{k: v for k, v in c.metadata.items() if k != INTENTS_KEY}, **encoding.encode(c.intents)} for c in tagged]


def hidden_keys(metadata: Mapping[str, Any], encoding: TagEncoding) -> list[str]:
    """Metadata keys kept out of the LLM's and the embedder's text: the tags and the accounting."""
    return [*encoding.keys(metadata), ACCOUNTING_KEY]
