"""FAISS, the embedded default store: exact inner-product search with intent filters pushed down.

Filters run inside FAISS through an ``IDSelectorBatch`` over the rows tagged with the wanted intents,
so a filtered search costs no over-fetching. With ``partition_by_intent=True`` a filtered search scans
only those rows instead, from a copy of each intent's vectors. Persistence is FAISS's own index file
plus the chunks as JSON lines (no pickle), written to a temporary directory and renamed into place.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tokenflow_rag._io import atomic_directory, check_replaceable_dir
from tokenflow_rag._optional import require
from tokenflow_rag.errors import ConfigError, IndexStoreError
from tokenflow_rag.stores.base import check_vectors, metadata_json
from tokenflow_rag.types import Chunk, ScoredChunk

INDEX_FILE = "vectors.faiss"
CHUNKS_FILE = "chunks.jsonl"


def _faiss() -> Any:
    return require("faiss", extra="faiss")


_MAX_SELECTORS = 256
"""Id selectors kept per store (one per distinct intent set searched)."""


class FaissStore:
    """Chunks in a FAISS ``IndexFlatIP``, with pushdown of intent filters.

    >>> import numpy as np
    >>> store = FaissStore()
    >>> store.add([Chunk("a", "x", {"intents": ["payment"]}), Chunk("b", "y")], np.eye(2, dtype=np.float32))
    >>> [sc.chunk.id for sc in store.search(np.array([0.0, 1.0]), 2, intents={"payment"})]
    ['a']
    """

    supports_filter = True

    def __init__(self, *, search_threads: int | None = None, partition_by_intent: bool = False) -> None:
        """``search_threads``: OpenMP threads FAISS may use for one query (None, the default: FAISS's own).

        One query gains nothing from threads on a small or busy machine, while waking them can cost more
        than the search: on a shared 2-core machine a plain single-query search over 10,000 chunks took
        9-16 ms with FAISS's default (one thread per core) against 0.4-0.5 ms with ``search_threads=1``
        (100,000 chunks: 16 ms against 9 ms). It is applied around each call only, in the calling thread
        (OpenMP keeps the setting per thread). Not the default because FAISS's multi-threaded plain search
        computes the inner products another way, so a score can differ in its last bit (1.0000001 vs 1.0)
        between the two settings; filtered searches compute them the same way under both.

        ``partition_by_intent``: answer a filtered search from a flat index of each wanted intent's rows
        (built on first use, rebuilt after :meth:`add`) instead of checking every row of the whole index
        against the filter. Same chunks and scores (chunks of exactly equal score come in the order they
        were added, which FAISS does not promise), at a cost that follows the rows searched: at 100,000
        chunks, 2.7 ms against 6.1 ms per restricted search in ``tokenflow bench --partitions``
        (BENCHMARKS.md). The price is memory: a second copy of each searched intent's vectors, up to
        (tags per chunk) x the index's own. Intent sets holding more than half the rows keep the
        filtered scan, which is then about as cheap.
        """
        if search_threads is not None and (not isinstance(search_threads, int) or search_threads < 1):
            raise ConfigError(f"search_threads must be a positive integer or None, got {search_threads!r}")
        if not isinstance(partition_by_intent, bool):
            raise ConfigError(f"partition_by_intent must be True or False, got {partition_by_intent!r}")
        self.search_threads = search_threads
        self.partition_by_intent = partition_by_intent
        self._partitions: dict[str, tuple[Any, np.ndarray]] = {}  # intent -> (index of its rows, row numbers)
        self._selectors: dict[frozenset[str], tuple[Any, np.ndarray] | None] = {}  # intent set -> id selector
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
        for chunk in chunks:  # saved as JSON lines: refuse now what save_index could not write later
            metadata_json(chunk, "FaissStore")
        if self._index is None:
            self._index = _faiss().IndexFlatIP(vectors.shape[1])
        start = len(self._chunks)
        self._index.add(vectors)
        for offset, chunk in enumerate(chunks):
            self._chunks.append(chunk)
            self._ids.add(chunk.id)
            for tag in chunk.intents:
                self._rows_by_intent.setdefault(tag, []).append(start + offset)
        self._selectors.clear()
        self._partitions.clear()

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
        k = min(k, len(self._chunks))
        if intents is not None and self._partitioned(intents):
            hits = self._search_partitions(query, k, intents)
        else:
            params = None
            if intents is not None:
                selector = self._selector(frozenset(intents))
                if selector is None:
                    return []
                params = _faiss().SearchParameters(sel=selector[0])
            scores, rows = self._search_one(self._index, query, k, params)
            hits = [(float(s), int(r)) for s, r in zip(scores[0], rows[0]) if r >= 0]
        return [ScoredChunk(self._chunks[r], s) for s, r in hits]

    def _search_one(self, index: Any, query: np.ndarray, k: int, params: Any) -> tuple[np.ndarray, np.ndarray]:
        if self.search_threads is None:
            return index.search(query, k, params=params)
        faiss = _faiss()
        previous = faiss.omp_get_max_threads()
        if previous == self.search_threads:
            return index.search(query, k, params=params)
        faiss.omp_set_num_threads(self.search_threads)
        try:
            return index.search(query, k, params=params)
        finally:
            faiss.omp_set_num_threads(previous)

    # -- partitions by intent -------------------------------------------------------------------
    def _partitioned(self, intents: Collection[str]) -> bool:
        """Whether a search over ``intents`` should read their partitions (see ``partition_by_intent``)."""
        if not self.partition_by_intent:
            return False
        rows = sum(len(self._rows_by_intent.get(tag, ())) for tag in set(intents))
        return rows <= len(self._chunks) // 2

    def _search_partitions(self, query: np.ndarray, k: int, intents: Collection[str]) -> list[tuple[float, int]]:
        """The top ``k`` (score, row) over the union of the intents' rows: each partition's own top ``k``
        holds every member of the union's top ``k`` that it contains, so merging them is exact (up to
        which of several exactly equal scores makes the cut)."""
        best: dict[int, float] = {}
        for tag in set(intents):
            if tag not in self._rows_by_intent:
                continue
            index, rows = self._partition(tag)
            scores, local = self._search_one(index, query, min(k, len(rows)), None)
            for score, i in zip(scores[0], local[0]):
                if i >= 0:
                    best[int(rows[i])] = float(score)  # a row in two partitions has the same score in both
        return sorted(((s, r) for r, s in best.items()), key=lambda hit: (-hit[0], hit[1]))[:k]

    @property
    def partition_nbytes(self) -> int:
        """Memory held by the per-intent copies of the vectors built so far (0 without partitions)."""
        return sum(index.ntotal * index.code_size for index, _ in self._partitions.values())

    def _partition(self, tag: str) -> tuple[Any, np.ndarray]:
        if tag not in self._partitions:
            rows = np.asarray(self._rows_by_intent[tag], dtype=np.int64)
            index = _faiss().IndexFlatIP(self._index.d)
            index.add(self._index.reconstruct_batch(rows))
            self._partitions[tag] = (index, rows)
        return self._partitions[tag]

    def _selector(self, intents: frozenset[str]) -> tuple[Any, np.ndarray] | None:
        """The id selector of an intent set, cached on the store (cleared on add; bounded)."""
        if intents not in self._selectors:
            if len(self._selectors) >= _MAX_SELECTORS:
                self._selectors.clear()
            rows = sorted({r for tag in intents for r in self._rows_by_intent.get(tag, ())})
            ids = np.asarray(rows, dtype=np.int64)
            # The id array is kept too: FAISS keeps a pointer into it, so it must outlive the selector.
            self._selectors[intents] = (
                (_faiss().IDSelectorBatch(len(ids), _faiss().swig_ptr(ids)), ids) if rows else None
            )
        return self._selectors[intents]

    def __len__(self) -> int:
        return len(self._chunks)

    def __iter__(self) -> Iterator[Chunk]:
        return iter(self._chunks)

    # -- persistence --------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        """Write ``vectors.faiss`` and ``chunks.jsonl`` into ``directory`` atomically."""
        with atomic_directory(check_replaceable_dir(Path(directory), INDEX_FILE, "store")) as tmp:
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
    def load(cls, directory: str | Path, **options: Any) -> FaissStore:
        """Read a store written by :meth:`save`; a missing or half-written directory raises IndexStoreError.

        ``options`` are the constructor's (``search_threads``, ``partition_by_intent``): how to search,
        not what is stored.
        """
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
        store = cls(**options)
        vectors = index.reconstruct_n(0, index.ntotal) if index.ntotal else np.zeros((0, index.d), np.float32)
        if len(chunks):
            store.add(chunks, vectors)
        return store
