"""Milvus: Milvus Lite in-process from a local file, or a Milvus cluster through the same client code.

Intent tags live in an ``ARRAY<VARCHAR>`` field and the filter is pushed down as
``ARRAY_CONTAINS_ANY(intents, [...])``, evaluated by Milvus during the vector search. Point ``uri`` at
``http://host:19530`` (and pass ``token``) to move the same collection layout to a cluster.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tokenflow_rag._optional import require
from tokenflow_rag.errors import ConfigError
from tokenflow_rag.stores.base import check_vectors, metadata_json
from tokenflow_rag.stores.tag_encoding import milvus_expr
from tokenflow_rag.types import INTENTS_KEY, Chunk, ScoredChunk

MAX_TEXT_CHARS = 65535
MAX_TAGS = 64
_FIELDS = ["text", INTENTS_KEY, "metadata"]


class MilvusStore:
    """Chunks in a Milvus collection (inner product, strong consistency), with pushdown of intent filters.

    Args:
        uri: A local ``*.db`` file (Milvus Lite, started in-process) or a server URI.
        collection: Collection name (letters, digits and underscores); created on the first ``add``.
        token: Credentials for a server (``"user:password"`` or an API key).
        client: An existing ``pymilvus.MilvusClient`` instead of ``uri``.

    >>> import numpy as np, tempfile, os
    >>> store = MilvusStore(os.path.join(tempfile.mkdtemp(), "milvus.db"))
    >>> store.add([Chunk("a", "x", {"intents": ["payment"]}), Chunk("b", "y")], np.eye(2, dtype=np.float32))
    >>> [sc.chunk.id for sc in store.search(np.array([0.0, 1.0]), 2, intents={"payment"})]
    ['a']
    >>> store.close()
    """

    supports_filter = True

    def __init__(
        self, uri: str | Path = "./milvus.db", collection: str = "tokenflow", *, token: str = "", client: Any = None
    ) -> None:
        pymilvus = require("pymilvus", extra="stores")
        self.uri = str(uri)
        self.collection = collection
        self._client = client if client is not None else pymilvus.MilvusClient(uri=self.uri, token=token)
        self._dim: int | None = None
        if self._client.has_collection(collection):
            fields = self._client.describe_collection(collection)["fields"]
            self._dim = next(int(f["params"]["dim"]) for f in fields if f["name"] == "vector")

    def close(self) -> None:
        """Release the client (stops the Milvus Lite process when it was the last user)."""
        self._client.close()

    # -- building -----------------------------------------------------------------------------
    def add(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        vectors = check_vectors(chunks, vectors, self._dim)
        ids = [c.id for c in chunks]
        if len(set(ids)) != len(ids):
            raise ConfigError("duplicate chunk id(s) within the batch; chunk ids must be unique")
        if not chunks:
            return
        if self._dim is None:
            self._create(vectors.shape[1])
        # Milvus accepts duplicate primary keys, so uniqueness is checked here.
        dupes = [row["id"] for row in self._client.get(self.collection, ids=ids, output_fields=["id"])]
        if dupes:
            raise ConfigError(f"duplicate chunk id(s) {dupes[:3]}; chunk ids must be unique")
        rows = []
        for chunk, vector in zip(chunks, vectors):
            if len(chunk.text) > MAX_TEXT_CHARS:
                raise ConfigError(
                    f"chunk {chunk.id!r} has {len(chunk.text)} characters; MilvusStore keeps at most {MAX_TEXT_CHARS}"
                )
            if len(chunk.intents) > MAX_TAGS:
                raise ConfigError(
                    f"chunk {chunk.id!r} has {len(chunk.intents)} intent tags; at most {MAX_TAGS} are stored"
                )
            metadata_json(chunk, "MilvusStore")  # refused here, not silently str()-ed by the client
            rows.append(
                {
                    "id": chunk.id,
                    "vector": vector.tolist(),
                    "text": chunk.text,
                    INTENTS_KEY: list(chunk.intents),
                    "metadata": dict(chunk.metadata),
                }
            )
        self._client.insert(self.collection, rows)

    def _create(self, dim: int) -> None:
        DataType = require("pymilvus", extra="stores").DataType  # noqa: N806
        schema = self._client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, max_length=512, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        schema.add_field("text", DataType.VARCHAR, max_length=MAX_TEXT_CHARS)
        schema.add_field(
            INTENTS_KEY, DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=MAX_TAGS, max_length=128
        )
        schema.add_field("metadata", DataType.JSON)
        index = self._client.prepare_index_params()
        index.add_index("vector", index_type="AUTOINDEX", metric_type="IP")
        self._client.create_collection(self.collection, schema=schema, index_params=index, consistency_level="Strong")
        self._dim = dim

    # -- search -------------------------------------------------------------------------------
    def search(self, vector: np.ndarray, k: int, *, intents: Collection[str] | None = None) -> list[ScoredChunk]:
        if self._dim is None or k <= 0 or (intents is not None and not intents):
            return []
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        if query.shape[0] != self._dim:
            raise ConfigError(
                f"query vector has dimension {query.shape[0]} but the collection holds {self._dim}; "
                "query with the embedder the store was built with"
            )
        hits = self._client.search(
            self.collection,
            data=[query.tolist()],
            limit=k,
            filter="" if intents is None else milvus_expr(intents),
            output_fields=_FIELDS,
            search_params={"metric_type": "IP"},
        )[0]
        return [ScoredChunk(_chunk(h["id"], h["entity"]), float(h["distance"])) for h in hits]

    def __len__(self) -> int:
        if self._dim is None:
            return 0
        rows = self._client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def __iter__(self) -> Iterator[Chunk]:
        if self._dim is None:
            return
        it = self._client.query_iterator(self.collection, batch_size=1000, filter="", output_fields=_FIELDS)
        try:
            while page := it.next():
                yield from (_chunk(row["id"], row) for row in page)
        finally:
            it.close()


def _chunk(chunk_id: str, row: dict[str, Any]) -> Chunk:
    metadata = row.get("metadata") or {}
    return Chunk(chunk_id, row.get("text") or "", metadata)
