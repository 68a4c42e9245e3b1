"""FAISS, the embedded default store: exact inner-product search with intent filters pushed down.

Filters run inside FAISS through an ``IDSelectorBatch`` over the rows tagged with the wanted intents,
so a filtered search costs no over-fetching. Persistence is FAISS's own index file plus the chunks
as JSON lines (no pickle), written to a temporary directory and renamed into place.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from tokenflow_rag._io import atomic_directory
from tokenflow_rag._optional import require
from tokenflow_rag.errors import ConfigError, IndexStoreError
from tokenflow_rag.stores.base import check_vectors
from tokenflow_rag.types import Chunk, ScoredChunk

INDEX_FILE = "vectors.faiss"
CHUNKS_FILE = "chunks.jsonl"


def _faiss() -> Any:
    return require("faiss", extra="faiss")


class FaissStore:
    """Chunks in a FAISS ``IndexFlatIP``, with pushdown of intent filters.

    >>> import numpy as np
    >>> store = FaissStore()
    >>> store.add([Chunk("a", "x", {"intents": ["payment"]}), Chunk("b", "y")], np.eye(2, dtype=np.float32))
    >>> [sc.chunk.id for sc in store.search(np.array([0.0, 1.0]), 2, intents={"payment"})]
    ['a']
    """

    supports_filter = True

    def __init__(self, *, search_threads: int | None = None) -> None:
        """``search_threads``: OpenMP threads FAISS may use for one query (None, the default: FAISS's own).

        One query gains nothing from threads on a small or busy machine, while waking them can cost more
        than the search: on a shared 2-core machine a plain single-query search over 10,000 chunks took
        9-16 ms with FAISS's default (one thread per core) against 0.4-0.5 ms with ``search_threads=1``
        (100,000 chunks: 16 ms against 9 ms). It is applied around each call only, in the calling thread
        (OpenMP keeps the setting per thread). Not the default because FAISS's multi-threaded plain search
        computes the inner products another way, so a score can differ in its last bit (1.0000001 vs 1.0)
        between the two settings; filtered searches compute them the same way under both.
        """
        if search_threads is not None and (not isinstance(search_threads, int) or search_threads < 1):
            raise ConfigError(f"search_threads must be a positive integer or None, got {search_threads!r}")
        self.search_threads = search_threads
        self._index: Any = None
        self._chunks: list[Chunk] = []
        self._ids: set[str] = set()
        self._rows_by_intent: dict[str, list[int]] = {}

    # -- building -----------------------------------------------------------------------------
    def add(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        vectors = check_vectors(chunks, vectors, None if self._index is None else self._index.d)
        dupes = [c.id for c in chunks if c.id in self._ids]
        if dupes or len({c.id for c in chunks}) != len(chunks):
            raise ConfigError(f"duplicate chunk id(s) {dupes[:3] or 'within the batch'}; chunk ids must be unique")
        if self._index is None:
            self._index = _faiss().IndexFlatIP(vectors.shape[1])
        start = len(self._chunks)
        self._index.add(vectors)
        for offset, chunk in enumerate(chunks):
            self._chunks.append(chunk)
            self._ids.add(chunk.id)
            for tag in chunk.intents:
                self._rows_by_intent.setdefault(tag, []).append(start + offset)
        self._selector.cache_clear()

    # -- search -------------------------------------------------------------------------------
    def search(self, vector: np.ndarray, k: int, *, intents: Collection[str] | None = None) -> list[ScoredChunk]:
        if self._index is None or k <= 0:
            return []
        query = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        if query.shape[1] != self._index.d:
            raise ConfigError(
                f"query vector has dimension {query.shape[1]} but the index holds {self._index.d}; "
                "query with the embedder the index was built with"
            )
        params = None
        if intents is not None:
            selector = self._selector(frozenset(intents))
            if selector is None:
                return []
            params = _faiss().SearchParameters(sel=selector[0])
        k = min(k, len(self._chunks))
        scores, rows = self._search_one(query, k, params)
        return [ScoredChunk(self._chunks[r], float(s)) for s, r in zip(scores[0], rows[0]) if r >= 0]

    def _search_one(self, query: np.ndarray, k: int, params: Any) -> tuple[np.ndarray, np.ndarray]:
        if self.search_threads is None:
            return self._index.search(query, k, params=params)
        faiss = _faiss()
        previous = faiss.omp_get_max_threads()
        if previous == self.search_threads:
            return self._index.search(query, k, params=params)
        faiss.omp_set_num_threads(self.search_threads)
        try:
            return self._index.search(query, k, params=params)
        finally:
            faiss.omp_set_num_threads(previous)

    @lru_cache(maxsize=256)  # noqa: B019 - per-store cache of selectors per intent set, cleared on add
    def _selector(self, intents: frozenset[str]) -> tuple[Any, np.ndarray] | None:
        rows = sorted({r for tag in intents for r in self._rows_by_intent.get(tag, ())})
        if not rows:
            return None
        ids = np.asarray(rows, dtype=np.int64)
        # The id array is returned too: FAISS keeps a pointer into it, so it must outlive the selector.
        return _faiss().IDSelectorBatch(len(ids), _faiss().swig_ptr(ids)), ids

    def __len__(self) -> int:
        return len(self._chunks)

    def __iter__(self) -> Iterator[Chunk]:
        return iter(self._chunks)

    # -- persistence --------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        """Write ``vectors.faiss`` and ``chunks.jsonl`` into ``directory`` atomically."""
        with atomic_directory(Path(directory)) as tmp:
            self.write_into(tmp)

    def write_into(self, directory: Path) -> None:
        """Write the store's files into an existing directory (the caller makes it atomic)."""
        if self._index is None:
            raise IndexStoreError("cannot save an empty FaissStore; add chunks first")
        _faiss().write_index(self._index, str(directory / INDEX_FILE))
        with open(directory / CHUNKS_FILE, "w", encoding="utf-8") as fh:
            for c in self._chunks:
                fh.write(
                    json.dumps({"id": c.id, "text": c.text, "metadata": dict(c.metadata)}, ensure_ascii=False) + "\n"
                )

    @classmethod
    def load(cls, directory: str | Path) -> FaissStore:
        """Read a store written by :meth:`save`; a missing or half-written directory raises IndexStoreError."""
        directory = Path(directory)
        for name in (INDEX_FILE, CHUNKS_FILE):
            if not (directory / name).is_file():
                raise IndexStoreError(
                    f"{directory} is not a tokenflow index: {name} is missing (re-run `tokenflow index`)"
                )
        try:
            index = _faiss().read_index(str(directory / INDEX_FILE))
        except RuntimeError as exc:
            raise IndexStoreError(f"{directory / INDEX_FILE} is corrupt or truncated: {exc}") from None
        chunks = []
        with open(directory / CHUNKS_FILE, encoding="utf-8") as fh:
            for line_no, line in enumerate(fh, start=1):
                try:
                    row = json.loads(line)
                    chunks.append(Chunk(row["id"], row["text"], row.get("metadata") or {}))
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise IndexStoreError(
                        f"{directory / CHUNKS_FILE}, line {line_no}: unreadable chunk ({exc})"
                    ) from None
        if index.ntotal != len(chunks):
            raise IndexStoreError(
                f"{directory} is inconsistent: {index.ntotal} vectors but {len(chunks)} chunks (rebuild the index)"
            )
        store = cls()
        vectors = index.reconstruct_n(0, index.ntotal) if index.ntotal else np.zeros((0, index.d), np.float32)
        if len(chunks):
            store.add(chunks, vectors)
        return store
