"""LlamaIndex indexes and retrievers seen as core stores (private: only the LlamaIndex adapter imports this)."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Collection, Sequence
from typing import Any

import numpy as np

from tokenflow_rag._optional import require
from tokenflow_rag.classifiers.base import IntentClassifier
from tokenflow_rag.integrations._common import (
    Candidate,
    FrameworkStore,
    current_native_query,
    current_query,
    hidden_keys,
    tag_records,
)
from tokenflow_rag.stores.tag_encoding import FLAG, FLAG_PREFIX, FLAGS, TagEncoding, by_class_name, encoding_for
from tokenflow_rag.types import INTENTS_KEY

require("llama_index.core")
from llama_index.core.indices.vector_store.retrievers import VectorIndexRetriever  # noqa: E402
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


def combined_filters(user: MetadataFilters | None, ours: MetadataFilters | None) -> MetadataFilters | None:
    """Both filters must hold: flat when that is possible (stores like SimpleVectorStore cannot nest)."""
    if user is None or ours is None:
        return ours if user is None else user
    flat_and = user.condition in (None, FilterCondition.AND) and not any(
        isinstance(f, MetadataFilters) for f in user.filters
    )
    if flat_and and len(ours.filters) == 1:
        return MetadataFilters(filters=[*user.filters, *ours.filters], condition=FilterCondition.AND)
    return MetadataFilters(filters=[user, ours], condition=FilterCondition.AND)


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
        self.model = embed_model
        self.name = f"llamaindex:{getattr(embed_model, 'model_name', type(embed_model).__name__)}"
        self.dim = int(getattr(embed_model, "embed_dim", 0) or 0)

    def embed_query(self, text: str) -> np.ndarray:
        return np.asarray(self.model.get_query_embedding(text), dtype=np.float32)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.model.get_text_embedding_batch(list(texts)), dtype=np.float32)


def _candidates(hits: list[Any], similarity: Callable[[float], float] = float) -> list[Candidate]:
    return [
        Candidate(h.node.node_id, h.node.get_content(), h.node.metadata, similarity(float(h.score or 0.0)), h.node)
        for h in hits
    ]


def _l2_similarity(distance: float) -> float:
    """A (squared) L2 distance as a similarity in (0, 1]: higher is closer, never negative (similarity cutoffs)."""
    return 1.0 / (1.0 + max(distance, 0.0))


RETRIEVER_SETTINGS = (
    "filters",
    "node_ids",
    "doc_ids",
    "vector_store_query_mode",
    "alpha",
    "sparse_top_k",
    "hybrid_top_k",
    "embed_model",
    "vector_store_kwargs",
)
"""``VectorIndexRetriever`` settings kept on every search (``similarity_top_k`` becomes the plain fallback's k)."""


def retriever_settings(retriever: Any) -> dict[str, Any]:
    """The search settings of a ``VectorIndexRetriever``, as ``index.as_retriever`` takes them."""
    settings = {name: getattr(retriever, "_" + name, None) for name in RETRIEVER_SETTINGS}
    settings["vector_store_kwargs"] = getattr(retriever, "_kwargs", None)
    if set(settings["node_ids"] or ()) == set(retriever._index.index_struct.nodes_dict.values()):
        del settings["node_ids"]  # as_retriever's default (every node then): not a restriction, and would go stale
    return {name: value for name, value in settings.items() if value}


class IndexStore(FrameworkStore):
    """A ``VectorStoreIndex``: filters pushed down as ``MetadataFilters`` unless its vector store cannot take them.

    ``settings`` are the wrapped retriever's (:func:`retriever_settings`): its own ``filters`` are combined
    with the intent filter, never replaced by it.
    """

    def __init__(
        self,
        index: Any,
        classifier: IntentClassifier,
        *,
        tag_missing: bool = True,
        settings: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            classifier,
            encoding=encoding_for(index.vector_store),
            can_push_down=not by_class_name(NO_PUSHDOWN, index.vector_store),
            tag_missing=tag_missing,
        )
        self.index = index
        self.settings = dict(settings or {})
        self.user_filters: MetadataFilters | None = self.settings.pop("filters", None)
        # LlamaIndex's FAISS store reports L2 distances as scores; the core ranks by "higher is closer".
        faiss_index = getattr(index.vector_store, "_faiss_index", None)
        l2 = getattr(faiss_index, "metric_type", None) == 1  # 1 = faiss.METRIC_L2
        self._similarity: Callable[[float], float] = _l2_similarity if l2 else float
        nodes = list(index.docstore.docs.values())  # stores that keep text elsewhere leave it empty
        self.pretag([n.node_id for n in nodes], [n.get_content() for n in nodes], [n.metadata for n in nodes])

    def _query(self, vector: np.ndarray | None, k: int, intents: Collection[str] | None) -> list[Candidate]:
        ours = None if intents is None else intent_filters(intents, self.encoding)
        retriever = VectorIndexRetriever(
            self.index,
            similarity_top_k=k,
            filters=combined_filters(self.user_filters, ours),
            callback_manager=self.index._callback_manager,
            object_map=self.index._object_map,
            **self._settings_for_query(),
        )
        embedding = None if vector is None else vector.tolist()
        return _candidates(
            retriever.retrieve(QueryBundle(query_str=current_query(), embedding=embedding)), self._similarity
        )

    @property
    def name(self) -> str:
        return type(self.index.vector_store).__name__

    def _settings_for_query(self) -> dict[str, Any]:
        """The retriever settings of one search; without node ids of the user's, every node (as_retriever's
        default, read per query so nodes inserted later count)."""
        if "node_ids" in self.settings:
            return self.settings
        return {"node_ids": list(self.index.index_struct.nodes_dict.values()), **self.settings}

    def _count(self) -> int | None:
        count = by_class_name(COUNTS, self.index.vector_store)
        return None if count is None else count(self.index)


class RetrieverStore(FrameworkStore):
    """Any other LlamaIndex retriever: no filter, so the core over-fetches (``similarity_top_k`` when it has one)."""

    def __init__(self, retriever: Any, classifier: IntentClassifier, *, tag_missing: bool = True) -> None:
        super().__init__(classifier, encoding=encoding_for(retriever), can_push_down=False, tag_missing=tag_missing)
        self.retriever = retriever

    @property
    def name(self) -> str:
        return type(self.retriever).__name__

    def _query(self, vector: np.ndarray | None, k: int, intents: Collection[str] | None) -> list[Candidate]:
        retriever = self.retriever
        if hasattr(retriever, "similarity_top_k"):
            retriever = copy.copy(retriever)  # a per-call copy: concurrent queries ask for different k
            with contextlib.suppress(AttributeError):  # read-only: the retriever returns what it returns
                retriever.similarity_top_k = k
        bundle = current_native_query() or QueryBundle(query_str=current_query())
        return _candidates(retriever.retrieve(bundle)[:k])


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
