"""LlamaIndex indexes and retrievers seen as core stores (private: only the LlamaIndex adapter imports this)."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np

from tokenflow_rag._optional import require
from tokenflow_rag.classifiers.base import IntentClassifier
from tokenflow_rag.integrations._common import Candidate, FrameworkStore, current_query, hidden_keys, tag_records
from tokenflow_rag.stores.tag_encoding import FLAG, FLAG_PREFIX, FLAGS, TagEncoding, by_class_name, encoding_for
from tokenflow_rag.types import INTENTS_KEY

require("llama_index.core")
from llama_index.core.schema import BaseNode, QueryBundle  # noqa: E402
from llama_index.core.vector_stores.types import (  # noqa: E402
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)

NO_PUSHDOWN = {"FaissVectorStore": True}
"""Vector stores that raise on metadata filters: over-fetch and filter after the search instead."""

COUNTS = {
    "SimpleVectorStore": lambda index: len(index.vector_store.data.embedding_dict),
    "FaissVectorStore": lambda index: int(index.vector_store._faiss_index.ntotal),
    "ChromaVectorStore": lambda index: int(index.vector_store._collection.count()),
}


def intent_filters(intents: Collection[str], encoding: TagEncoding) -> MetadataFilters:
    """Match-any on the intent tag, in the form the store's encoding needs."""
    if encoding is FLAGS:  # flat metadata: OR of one equality per intent flag
        flags: list[MetadataFilter | MetadataFilters] = [
            MetadataFilter(key=FLAG_PREFIX + t, value=FLAG, operator=FilterOperator.EQ) for t in sorted(intents)
        ]
        return MetadataFilters(filters=flags, condition=FilterCondition.OR)
    return MetadataFilters(
        filters=[MetadataFilter(key=INTENTS_KEY, value=sorted(intents), operator=FilterOperator.ANY)]
    )


class EmbedModelEmbedder:
    """The index's LlamaIndex embedding model behind the core's Embedder protocol."""

    def __init__(self, embed_model: Any) -> None:
        self._model = embed_model
        self.name = f"llamaindex:{getattr(embed_model, 'model_name', type(embed_model).__name__)}"
        self.dim = int(getattr(embed_model, "embed_dim", 0) or 0)

    def embed_query(self, text: str) -> np.ndarray:
        return np.asarray(self._model.get_query_embedding(text), dtype=np.float32)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self._model.get_text_embedding_batch(list(texts)), dtype=np.float32)


def _candidates(hits: list[Any], sign: float = 1.0) -> list[Candidate]:
    return [
        Candidate(h.node.node_id, h.node.get_content(), h.node.metadata, sign * float(h.score or 0.0), h.node)
        for h in hits
    ]


class IndexStore(FrameworkStore):
    """A ``VectorStoreIndex``: filters pushed down as ``MetadataFilters`` unless its vector store cannot take them."""

    def __init__(self, index: Any, classifier: IntentClassifier, *, tag_missing: bool = True) -> None:
        super().__init__(
            classifier,
            encoding=encoding_for(index.vector_store),
            can_push_down=not by_class_name(NO_PUSHDOWN, index.vector_store),
            tag_missing=tag_missing,
        )
        self.index = index
        # LlamaIndex's FAISS store reports L2 distances as scores; the core ranks by "higher is closer".
        faiss_index = getattr(index.vector_store, "_faiss_index", None)
        self._sign = -1.0 if getattr(faiss_index, "metric_type", None) == 1 else 1.0  # 1 = faiss.METRIC_L2
        nodes = list(index.docstore.docs.values())  # stores that keep text elsewhere leave it empty
        self.pretag([n.node_id for n in nodes], [n.get_content() for n in nodes], [n.metadata for n in nodes])

    def _query(self, vector: np.ndarray | None, k: int, intents: Collection[str] | None) -> list[Candidate]:
        filters = None if intents is None else intent_filters(intents, self.encoding)
        retriever = self.index.as_retriever(similarity_top_k=k, filters=filters)
        embedding = None if vector is None else vector.tolist()
        return _candidates(retriever.retrieve(QueryBundle(query_str=current_query(), embedding=embedding)), self._sign)

    def _count(self) -> int | None:
        count = by_class_name(COUNTS, self.index.vector_store)
        return None if count is None else count(self.index)


class RetrieverStore(FrameworkStore):
    """Any other LlamaIndex retriever: no filter, so the core over-fetches (``similarity_top_k`` when it has one)."""

    def __init__(self, retriever: Any, classifier: IntentClassifier, *, tag_missing: bool = True) -> None:
        super().__init__(classifier, encoding=encoding_for(retriever), can_push_down=False, tag_missing=tag_missing)
        self.retriever = retriever

    def _query(self, vector: np.ndarray | None, k: int, intents: Collection[str] | None) -> list[Candidate]:
        retriever = self.retriever
        if hasattr(retriever, "similarity_top_k"):
            retriever = copy.copy(retriever)  # a per-call copy: concurrent queries ask for different k
            with contextlib.suppress(AttributeError):  # read-only: the retriever returns what it returns
                retriever.similarity_top_k = k
        return _candidates(retriever.retrieve(QueryBundle(query_str=current_query()))[:k])


def tag_nodes(nodes: Sequence[BaseNode], classifier: IntentClassifier, vector_store: Any = None) -> list[BaseNode]:
    """Write intent tags into the nodes' metadata (in place), in the encoding ``vector_store`` needs.

    The tags are excluded from the text the LLM sees and from the text that is embedded.
    """
    encoding = encoding_for(vector_store)
    metadatas = tag_records(
        [n.get_content() for n in nodes],
        [n.metadata for n in nodes],
        classifier,
        encoding,
        ids=[n.node_id for n in nodes],
    )
    for node, metadata in zip(nodes, metadatas):
        node.metadata = metadata
        hide(node, encoding)
    return list(nodes)


def hide(node: BaseNode, encoding: TagEncoding) -> None:
    """Keep tags and accounting out of the LLM's and the embedder's view of the node."""
    keys = hidden_keys(node.metadata, encoding)
    node.excluded_llm_metadata_keys = [*dict.fromkeys([*node.excluded_llm_metadata_keys, *keys])]
    node.excluded_embed_metadata_keys = [*dict.fromkeys([*node.excluded_embed_metadata_keys, *keys])]
