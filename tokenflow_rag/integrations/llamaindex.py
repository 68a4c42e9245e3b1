"""LlamaIndex adapter: a drop-in ``BaseRetriever`` over an existing index or retriever.

All decisions happen in :class:`~tokenflow_rag.retriever.IntentRetriever`; this module only implements
LlamaIndex's ``_retrieve`` / ``_aretrieve`` hooks and translates nodes.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from tokenflow_rag._optional import require
from tokenflow_rag.classifiers.base import IntentClassifier
from tokenflow_rag.embeddings.base import Embedder
from tokenflow_rag.errors import ConfigError
from tokenflow_rag.integrations._common import ACCOUNTING_KEY, FrameworkStore, NoEmbedder, retrieve
from tokenflow_rag.integrations._llamaindex_store import (
    RETRIEVER_SETTINGS,
    EmbedModelEmbedder,
    IndexStore,
    RetrieverStore,
    hide,
    retriever_settings,
    tag_nodes,
)
from tokenflow_rag.policy import POLICY_SETTINGS, KPolicy
from tokenflow_rag.retriever import IntentRetriever
from tokenflow_rag.savings import SavingsTracker
from tokenflow_rag.types import INTENTS_KEY, RetrievalResult

require("llama_index.core")
from llama_index.core.base.base_retriever import BaseRetriever  # noqa: E402
from llama_index.core.indices.vector_store.base import VectorStoreIndex  # noqa: E402
from llama_index.core.indices.vector_store.retrievers import VectorIndexRetriever  # noqa: E402
from llama_index.core.instrumentation import get_dispatcher  # noqa: E402
from llama_index.core.instrumentation.events.base import BaseEvent  # noqa: E402
from llama_index.core.schema import NodeWithScore, QueryBundle  # noqa: E402

__all__ = ["TokenFlowRetrievalEvent", "TokenFlowRetriever", "tag_nodes"]

dispatcher = get_dispatcher(__name__)


class TokenFlowRetrievalEvent(BaseEvent):
    """Instrumentation event carrying one retrieval's accounting (intents, k, tokens, baseline, fallback)."""

    query: str
    accounting: dict[str, Any]

    @classmethod
    def class_name(cls) -> str:
        return "TokenFlowRetrievalEvent"


class TokenFlowRetriever(BaseRetriever):
    """Intent-aware drop-in for a LlamaIndex retriever: fewer, intent-restricted nodes per query.

    Args:
        retriever: The retriever to restrict, or a ``VectorStoreIndex`` (same as :meth:`from_index`). A
            ``VectorIndexRetriever`` keeps its settings (``filters``, ``node_ids``, query mode ...): the intent
            filter is added to its own, and its ``similarity_top_k`` is the plain fallback's k.
        classifier: Intent classifier; the default classifier if omitted.
        k: Fixed number of nodes; wins over intent sizing.
        token_budget: Hard cap on the tokens of the returned nodes.
        tag_missing: Tag untagged nodes on the fly (cached by node id) instead of falling back to plain top-k.
        savings: Tracker the accounting of every query is added to (one per retriever if omitted).
        **options: :class:`~tokenflow_rag.policy.KPolicy` knobs (``base_k``, ``max_k``, ``min_confidence``)
            and, for a ``VectorStoreIndex``, what ``index.as_retriever()`` takes (``similarity_top_k``,
            ``filters``, ``node_ids``, ...).

    Every returned node carries ``metadata["intents"]`` and ``metadata["tokenflow"]`` (the accounting),
    both excluded from the LLM's text.

    >>> from llama_index.core import Document, VectorStoreIndex
    >>> from llama_index.core.embeddings import MockEmbedding
    >>> index = VectorStoreIndex.from_documents(
    ...     [Document(text="Refunds take 5 days."), Document(text="Couriers deliver in 2 days.")],
    ...     embed_model=MockEmbedding(embed_dim=8))
    >>> nodes = TokenFlowRetriever.from_index(index).retrieve("how long does a refund take?")
    >>> nodes[0].metadata["intents"], nodes[0].metadata["tokenflow"]["intents"]
    (['refund'], ['refund'])
    """

    def __init__(
        self,
        retriever: Any,
        classifier: IntentClassifier | None = None,
        *,
        k: int | None = None,
        token_budget: int | None = None,
        tag_missing: bool = True,
        savings: SavingsTracker | None = None,
        callback_manager: Any = None,
        **options: Any,
    ) -> None:
        policy = dict(options)
        store: FrameworkStore
        embedder: Embedder
        index_settings = {
            name: policy.pop(name) for name in ["similarity_top_k", *RETRIEVER_SETTINGS] if name in policy
        }
        unknown = sorted(set(policy) - set(POLICY_SETTINGS))
        if unknown:
            raise ConfigError(
                f"unknown option(s) {unknown}; TokenFlowRetriever takes k, token_budget, tag_missing, savings, "
                f"the KPolicy knobs {list(POLICY_SETTINGS)}, and for a VectorStoreIndex the settings of "
                f"index.as_retriever(): {['similarity_top_k', *RETRIEVER_SETTINGS]}"
            )
        if index_settings and not isinstance(retriever, VectorStoreIndex):
            raise ConfigError(
                f"{sorted(index_settings)} configure a retriever made from a VectorStoreIndex; "
                f"set them on your {type(retriever).__name__} itself"
            )
        if classifier is None:
            from tokenflow_rag.classifiers import load_default_classifier

            classifier = load_default_classifier()
        if isinstance(retriever, VectorIndexRetriever):  # its own search stays as it was (filters, node ids ...)
            index_settings = {"similarity_top_k": retriever._similarity_top_k, **retriever_settings(retriever)}
            retriever = retriever._index
        if isinstance(retriever, VectorStoreIndex):
            top_k = index_settings.pop("similarity_top_k", None)
            if top_k is not None and "base_k" not in policy:  # the user's top-k: the plain fallback's k
                policy["base_k"] = top_k
                policy.setdefault("max_k", max(KPolicy().max_k, top_k))
            store = IndexStore(retriever, classifier, tag_missing=tag_missing, settings=index_settings)
            embedder = EmbedModelEmbedder(index_settings.get("embed_model") or retriever._embed_model)
        elif isinstance(retriever, BaseRetriever):
            store, embedder = RetrieverStore(retriever, classifier, tag_missing=tag_missing), NoEmbedder()
        else:
            raise TypeError(
                f"retriever must be a LlamaIndex BaseRetriever or VectorStoreIndex, got {type(retriever).__name__}"
            )
        self.k = k
        self.savings = savings if savings is not None else SavingsTracker()
        self._store = store
        self._core = IntentRetriever(store, embedder, classifier, policy=KPolicy(**policy), token_budget=token_budget)
        super().__init__(callback_manager=callback_manager)

    @classmethod
    def from_index(cls, index: Any, classifier: IntentClassifier | None = None, **options: Any) -> TokenFlowRetriever:
        """Wrap an existing ``VectorStoreIndex`` as it is: untagged nodes are tagged, never re-indexed."""
        if not isinstance(index, VectorStoreIndex):
            raise TypeError(f"from_index needs a VectorStoreIndex, got {type(index).__name__}")
        return cls(index, classifier, **options)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        vector = self._query_vector(query_bundle)
        result = retrieve(self._core, self._store, query_bundle.query_str, self.k, vector=vector, native=query_bundle)
        self.savings.record(result.accounting)
        dispatcher.event(TokenFlowRetrievalEvent(query=query_bundle.query_str, accounting=result.accounting.to_dict()))
        return self._nodes(result)

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return await asyncio.to_thread(self._retrieve, query_bundle)

    def _query_vector(self, bundle: QueryBundle) -> np.ndarray | None:
        """The bundle's own embedding, or that of its ``custom_embedding_strs`` (HyDE) as LlamaIndex makes it."""
        if bundle.embedding is not None:
            return np.asarray(bundle.embedding, dtype=np.float32)
        embedder = self._core.embedder
        if isinstance(embedder, EmbedModelEmbedder) and bundle.embedding_strs != [bundle.query_str]:
            return np.asarray(embedder.model.get_agg_embedding_from_queries(bundle.embedding_strs), dtype=np.float32)
        return None  # the core embeds the query text

    def _nodes(self, result: RetrievalResult) -> list[NodeWithScore]:
        accounting = result.accounting.to_dict()
        out = []
        for sc in result:
            node = self._store.native[sc.chunk.id].native.model_copy()
            tags = {INTENTS_KEY: list(sc.chunk.intents)} if INTENTS_KEY in sc.chunk.metadata else {}
            node.metadata = {**node.metadata, **tags, ACCOUNTING_KEY: accounting}
            hide(node, self._store.encoding)
            out.append(NodeWithScore(node=node, score=sc.score))
        return out


from llama_index.core.base.embeddings.base import BaseEmbedding  # noqa: E402
from pydantic import PrivateAttr  # noqa: E402


class TokenFlowEmbedding(BaseEmbedding):
    """Any tokenflow embedder as a LlamaIndex embedding model; by default the offline multilingual one.

    >>> from tokenflow_rag import HashingEmbedder
    >>> len(TokenFlowEmbedding(HashingEmbedder(dim=8)).get_text_embedding("退款"))
    8
    """

    _embedder: Embedder = PrivateAttr()

    def __init__(self, embedder: Embedder | str | None = None, **kwargs: Any) -> None:
        from tokenflow_rag.embeddings import get_embedder

        resolved = get_embedder(embedder)
        super().__init__(model_name=resolved.name, **kwargs)
        self._embedder = resolved

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embedder.embed_query(query).tolist()

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embedder.embed_documents([text])[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embedder.embed_documents(texts).tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return await asyncio.to_thread(self._get_query_embedding, query)


__all__ += ["TokenFlowEmbedding"]
