"""The vector store interface the retriever core talks to, and the shared tag-filter helpers."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from tokenflow_rag.errors import ConfigError
from tokenflow_rag.types import Chunk, ScoredChunk


@runtime_checkable
class VectorStore(Protocol):
    """A similarity index over chunks.

    ``search`` with ``intents`` returns only chunks tagged with at least one of them. A store that can
    do this natively sets ``supports_filter = True`` (pushdown); otherwise the retriever over-fetches
    unfiltered results and filters them itself.
    """

    supports_filter: bool

    def add(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None: ...

    def search(self, vector: np.ndarray, k: int, *, intents: Collection[str] | None = None) -> list[ScoredChunk]: ...

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[Chunk]: ...


def matches_intents(chunk: Chunk, intents: Collection[str]) -> bool:
    """True when the chunk carries at least one of ``intents``."""
    return any(tag in intents for tag in chunk.intents)


def check_vectors(chunks: Sequence[Chunk], vectors: np.ndarray, dim: int | None) -> np.ndarray:
    """Validate a batch to add: one float vector per chunk, of the store's dimension."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(chunks):
        raise ConfigError(f"expected {len(chunks)} vectors as a 2-D array, got shape {vectors.shape}")
    if dim is not None and vectors.shape[1] != dim:
        raise ConfigError(
            f"vectors have dimension {vectors.shape[1]} but the store holds dimension {dim}; "
            "use the same embedder for indexing and querying"
        )
    return np.ascontiguousarray(vectors)


def metadata_json(chunk: Chunk, store: str) -> str:
    """The chunk's metadata as JSON, or a clear error naming the chunk (at ``add``, not at save time)."""
    try:
        return json.dumps(dict(chunk.metadata), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"chunk {chunk.id!r}: metadata must be JSON-serialisable for {store} ({exc}); "
            "store dates, sets and numpy values as strings, lists or plain numbers"
        ) from None
