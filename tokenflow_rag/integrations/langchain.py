"""LangChain adapter: a ``BaseRetriever`` (hence a Runnable) over any LangChain ``VectorStore``.

All decisions happen in :class:`~tokenflow_rag.retriever.IntentRetriever`; this module only implements
LangChain's ``_get_relevant_documents`` / ``_aget_relevant_documents`` hooks and translates documents.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

from tokenflow_rag._optional import require
from tokenflow_rag.classifiers.base import IntentClassifier
from tokenflow_rag.integrations._common import ACCOUNTING_KEY, NoEmbedder, retrieve, tag_records
from tokenflow_rag.integrations._langchain_store import INDEX_DEFAULTS, LangChainStore
from tokenflow_rag.policy import KPolicy
from tokenflow_rag.retriever import IntentRetriever
from tokenflow_rag.savings import SavingsTracker
from tokenflow_rag.stores.tag_encoding import by_class_name, encoding_for
from tokenflow_rag.types import INTENTS_KEY, RetrievalResult

require("langchain_core")
from langchain_core.callbacks import (  # noqa: E402
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document  # noqa: E402
from langchain_core.embeddings import Embeddings  # noqa: E402
from langchain_core.retrievers import BaseRetriever  # noqa: E402
from langchain_core.vectorstores import InMemoryVectorStore, VectorStore  # noqa: E402
from pydantic import ConfigDict, Field, PrivateAttr  # noqa: E402

__all__ = ["ACCOUNTING_EVENT", "TokenFlowRetriever"]

ACCOUNTING_EVENT = "tokenflow_accounting"
"""Name of the custom callback event carrying each retrieval's accounting (``on_custom_event``, astream_events)."""


class TokenFlowRetriever(BaseRetriever):
    """Intent-aware retriever over a LangChain vector store: fewer, intent-restricted documents per query.

    Args:
        vectorstore: Any LangChain ``VectorStore``; its documents need not be tagged.
        classifier: Intent classifier; the default classifier if omitted.
        k: Fixed number of documents; wins over intent sizing (so does ``invoke(q, k=3)``).
        policy: How k follows from the prediction (``KPolicy(base_k=5, max_k=8, ...)``).
        token_budget: Hard cap on the tokens of the returned documents.
        tag_missing: Tag untagged documents on the fly (cached by id) instead of falling back to plain top-k.
        savings: Tracker the accounting of every query is added to.

    Every document carries ``metadata["intents"]`` and ``metadata["tokenflow"]`` (the accounting).

    >>> from langchain_core.embeddings import DeterministicFakeEmbedding
    >>> retriever = TokenFlowRetriever.from_texts(
    ...     ["Refunds take 5 days.", "Couriers deliver in 2 days."], DeterministicFakeEmbedding(size=16))
    >>> [d.page_content for d in retriever.invoke("how long does a refund take?", k=1)]
    ['Refunds take 5 days.']
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    vectorstore: VectorStore
    classifier: Any = None
    k: int | None = Field(default=None, ge=1)
    policy: KPolicy = Field(default_factory=KPolicy)
    token_budget: int | None = None
    tag_missing: bool = True
    savings: SavingsTracker = Field(default_factory=SavingsTracker)
    _store: LangChainStore = PrivateAttr()
    _core: IntentRetriever = PrivateAttr()

    def model_post_init(self, context: Any, /) -> None:
        if self.classifier is None:
            from tokenflow_rag.classifiers import load_default_classifier

            self.classifier = load_default_classifier()
        self._store = LangChainStore(self.vectorstore, self.classifier, tag_missing=self.tag_missing)
        self._core = IntentRetriever(
            self._store, NoEmbedder(), self.classifier, policy=self.policy, token_budget=self.token_budget
        )

    @classmethod
    def from_texts(
        cls,
        texts: Iterable[str],
        embedding: Embeddings,
        metadatas: Sequence[dict[str, Any]] | None = None,
        *,
        ids: Sequence[str] | None = None,
        vectorstore_cls: type[VectorStore] = InMemoryVectorStore,
        store_kwargs: dict[str, Any] | None = None,
        classifier: IntentClassifier | None = None,
        **kwargs: Any,
    ) -> TokenFlowRetriever:
        """Tag the texts while indexing them into ``vectorstore_cls.from_texts(...)``, so filters push down."""
        if classifier is None:
            from tokenflow_rag.classifiers import load_default_classifier

            classifier = load_default_classifier()
        texts = list(texts)
        tagged = tag_records(texts, metadatas, classifier, encoding_for(vectorstore_cls), ids=ids)
        options = {**(by_class_name(INDEX_DEFAULTS, vectorstore_cls) or {}), **(store_kwargs or {})}
        if ids is not None:
            options["ids"] = list(ids)
        store = vectorstore_cls.from_texts(texts, embedding, metadatas=tagged, **options)
        return cls(vectorstore=store, classifier=classifier, **kwargs)

    @classmethod
    def from_documents(cls, documents: Sequence[Document], embedding: Embeddings, **kwargs: Any) -> TokenFlowRetriever:
        """Like :meth:`from_texts` for ``Document`` objects (their ids are kept when all have one)."""
        ids = [d.id for d in documents if d.id]
        return cls.from_texts(
            [d.page_content for d in documents],
            embedding,
            [dict(d.metadata) for d in documents],
            ids=ids if len(ids) == len(documents) else None,
            **kwargs,
        )

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None
    ) -> list[Document]:
        result = retrieve(self._core, self._store, query, k if k is not None else self.k)
        self.savings.record(result.accounting)
        run_manager.get_child().on_custom_event(
            ACCOUNTING_EVENT, result.accounting.to_dict(), run_id=run_manager.run_id
        )
        return self._documents(result)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, k: int | None = None
    ) -> list[Document]:
        result = await asyncio.to_thread(retrieve, self._core, self._store, query, k if k is not None else self.k)
        self.savings.record(result.accounting)
        await run_manager.get_child().on_custom_event(
            ACCOUNTING_EVENT, result.accounting.to_dict(), run_id=run_manager.run_id
        )
        return self._documents(result)

    def _documents(self, result: RetrievalResult) -> list[Document]:
        accounting = result.accounting.to_dict()
        out = []
        for sc in result:
            doc = self._store.native[sc.chunk.id].native
            tags = {INTENTS_KEY: list(sc.chunk.intents)} if INTENTS_KEY in sc.chunk.metadata else {}
            out.append(
                Document(doc.page_content, metadata={**doc.metadata, **tags, ACCOUNTING_KEY: accounting}, id=doc.id)
            )
        return out


class TokenFlowEmbeddings(Embeddings):
    """Any tokenflow embedder as LangChain ``Embeddings``; by default the offline multilingual one.

    >>> from tokenflow_rag import HashingEmbedder
    >>> len(TokenFlowEmbeddings(HashingEmbedder(dim=8)).embed_query("退款"))
    8
    """

    def __init__(self, embedder: Any = None) -> None:
        from tokenflow_rag.embeddings import get_embedder

        self.embedder = get_embedder(embedder)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embedder.embed_documents(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embedder.embed_query(text).tolist()


__all__ += ["TokenFlowEmbeddings"]
