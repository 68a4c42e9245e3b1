"""A brute-force in-memory store: the test double, and a store without filter pushdown."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence

import numpy as np

from tokenflow_rag.errors import ConfigError
from tokenflow_rag.stores.base import check_vectors
from tokenflow_rag.types import Chunk, ScoredChunk


class InMemoryStore:
    """Exact inner-product search over a numpy matrix. It does not filter (``supports_filter = False``),
    so the retriever exercises its over-fetch-and-filter path with it.

    >>> import numpy as np
    >>> store = InMemoryStore()
    >>> store.add([Chunk("a", "x"), Chunk("b", "y")], np.eye(2, dtype=np.float32))
    >>> [sc.chunk.id for sc in store.search(np.array([0.0, 1.0]), 1)]
    ['b']
    """

    supports_filter = False

    def __init__(self) -> None:
        self._chunks: list[Chunk] = []
        self._ids: set[str] = set()
        self._vectors: np.ndarray | None = None

    def add(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        dim = None if self._vectors is None else self._vectors.shape[1]
        vectors = check_vectors(chunks, vectors, dim)
        dupes = [c.id for c in chunks if c.id in self._ids]
        if dupes or len({c.id for c in chunks}) != len(chunks):
            raise ConfigError(f"duplicate chunk id(s) {dupes[:3] or 'within the batch'}; chunk ids must be unique")
        self._chunks.extend(chunks)
        self._ids.update(c.id for c in chunks)
        self._vectors = vectors if self._vectors is None else np.vstack([self._vectors, vectors])

    def search(self, vector: np.ndarray, k: int, *, intents: Collection[str] | None = None) -> list[ScoredChunk]:
        if intents is not None:
            raise ConfigError("InMemoryStore does not filter; check supports_filter before passing intents")
        if self._vectors is None or k <= 0:
            return []
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        if query.shape[0] != self._vectors.shape[1]:
            raise ConfigError(
                f"query vector has dimension {query.shape[0]} but the store holds {self._vectors.shape[1]}; "
                "query with the embedder the store was built with"
            )
        sims = self._vectors @ query
        k = min(k, len(sims))
        top = np.argpartition(-sims, k - 1)[:k]
        top = top[np.lexsort((top, -sims[top]))]  # by score, ties by insertion order: deterministic
        return [ScoredChunk(self._chunks[i], float(sims[i])) for i in top]

    def __len__(self) -> int:
        return len(self._chunks)

    def __iter__(self) -> Iterator[Chunk]:
        return iter(self._chunks)
