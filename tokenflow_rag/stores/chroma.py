"""Chroma, embedded and persistent: intent filters pushed down as a ``where`` clause.

Tags use the ``flags`` encoding of :mod:`tokenflow_rag.stores.tag_encoding` (one boolean key per intent,
matched with ``$or``), the same one the LangChain and LlamaIndex adapters write, so one collection serves
all three. The chunk's full metadata travels as JSON next to it, so nothing is lost to Chroma's
scalar-only metadata.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tokenflow_rag._optional import require
from tokenflow_rag.errors import ConfigError
from tokenflow_rag.stores.base import check_vectors, metadata_json
from tokenflow_rag.stores.tag_encoding import FLAG_PREFIX, FLAGS, chroma_where
from tokenflow_rag.types import INTENTS_KEY, Chunk, ScoredChunk

METADATA_KEY = "tokenflow_metadata"
"""Chroma metadata key holding the chunk's own metadata as JSON."""

_PAGE = 1000


class ChromaStore:
    """Chunks in a Chroma collection (inner product), with pushdown of intent filters.

    Args:
        path: Directory of a persistent Chroma database (created if missing); None keeps it in memory.
        collection: Collection name (3-512 characters of ``[a-zA-Z0-9._-]``).
        client: An existing ``chromadb`` client (e.g. ``chromadb.HttpClient``) instead of ``path``.

    >>> import numpy as np, tempfile
    >>> store = ChromaStore(tempfile.mkdtemp())
    >>> store.add([Chunk("a", "x", {"intents": ["payment"]}), Chunk("b", "y")], np.eye(2, dtype=np.float32))
    >>> [sc.chunk.id for sc in store.search(np.array([0.0, 1.0]), 2, intents={"payment"})]
    ['a']
    """

    supports_filter = True

    def __init__(self, path: str | Path | None = None, collection: str = "tokenflow", *, client: Any = None) -> None:
        chromadb = require("chromadb", extra="stores")
        if client is None:
            # Default settings: Chroma refuses a second client on the same path with different settings,
            # and users (or LangChain's Chroma) open the same directory with the defaults.
            client = chromadb.PersistentClient(path=str(path)) if path is not None else chromadb.EphemeralClient()
        self.path = None if path is None else Path(path)
        self._client = client
        try:
            self._collection = client.get_or_create_collection(
                collection, configuration={"hnsw": {"space": "ip"}}, embedding_function=None
            )
        except (ValueError, chromadb.errors.InvalidArgumentError) as exc:
            raise ConfigError(f"collection={collection!r} is not a valid Chroma collection: {exc}") from None
        self._dim: int | None = None

    # -- building -----------------------------------------------------------------------------
    def add(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        vectors = check_vectors(chunks, vectors, self._stored_dim())
        ids = [c.id for c in chunks]
        if len(set(ids)) != len(ids):
            raise ConfigError("duplicate chunk id(s) within the batch; chunk ids must be unique")
        dupes = self._collection.get(ids=ids, include=[])["ids"] if ids else []
        if dupes:
            raise ConfigError(f"duplicate chunk id(s) {dupes[:3]}; chunk ids must be unique")
        step = self._client.get_max_batch_size()
        for start in range(0, len(chunks), step):
            batch = chunks[start : start + step]
            self._collection.add(
                ids=[c.id for c in batch],
                embeddings=vectors[start : start + step],
                documents=[c.text for c in batch],
                metadatas=[_to_chroma(c) for c in batch],
            )
        if len(chunks):
            self._dim = vectors.shape[1]

    # -- search -------------------------------------------------------------------------------
    def search(self, vector: np.ndarray, k: int, *, intents: Collection[str] | None = None) -> list[ScoredChunk]:
        if k <= 0 or (intents is not None and not intents):
            return []
        total = self._collection.count()
        if total == 0:
            return []
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        dim = self._stored_dim()
        if dim is not None and query.shape[0] != dim:
            raise ConfigError(
                f"query vector has dimension {query.shape[0]} but the collection holds {dim}; "
                "query with the embedder the store was built with"
            )
        result = self._collection.query(
            query_embeddings=[query],
            n_results=min(k, total),
            where=None if intents is None else chroma_where(intents),
            include=["documents", "metadatas", "distances"],
        )
        rows = zip(result["ids"][0], result["documents"][0], result["metadatas"][0], result["distances"][0])
        # Chroma's "ip" distance is 1 - inner product.
        return [ScoredChunk(_from_chroma(i, doc, md), 1.0 - float(d)) for i, doc, md, d in rows]

    def __len__(self) -> int:
        return int(self._collection.count())

    def __iter__(self) -> Iterator[Chunk]:
        offset = 0
        while True:
            page = self._collection.get(limit=_PAGE, offset=offset, include=["documents", "metadatas"])
            for i, doc, md in zip(page["ids"], page["documents"], page["metadatas"]):
                yield _from_chroma(i, doc, md)
            if len(page["ids"]) < _PAGE:
                return
            offset += _PAGE

    def _stored_dim(self) -> int | None:
        if self._dim is None and self._collection.count():
            peek = self._collection.get(limit=1, include=["embeddings"])
            self._dim = len(peek["embeddings"][0])
        return self._dim


def _to_chroma(chunk: Chunk) -> dict[str, Any]:
    """Chroma metadata: scalar user keys (filterable), the tags as flags, the full metadata as JSON."""
    out: dict[str, Any] = {
        k: v for k, v in chunk.metadata.items() if isinstance(v, (str, int, float, bool)) and k != INTENTS_KEY
    }
    if INTENTS_KEY in chunk.metadata:
        out.update(FLAGS.encode(chunk.intents))
    out[METADATA_KEY] = metadata_json(chunk, "ChromaStore")
    return out


def _from_chroma(chunk_id: str, text: str | None, metadata: dict[str, Any] | None) -> Chunk:
    metadata = metadata or {}
    if METADATA_KEY in metadata:
        return Chunk(chunk_id, text or "", json.loads(metadata[METADATA_KEY]))
    # Written by another client (e.g. LangChain's Chroma): rebuild the tags from the flags.
    tags = FLAGS.decode(metadata)
    plain = {k: v for k, v in metadata.items() if k != INTENTS_KEY and not k.startswith(FLAG_PREFIX)}
    return Chunk(chunk_id, text or "", plain if tags is None else {**plain, INTENTS_KEY: list(tags)})
