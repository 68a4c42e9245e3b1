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
from tokenflow_rag.errors import ConfigError
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
        search_kwargs: Keyword arguments for every search of the store, as in ``as_retriever(search_kwargs=...)``
            (e.g. ``{"filter": ...}``: it is combined with the intent filter, both must hold). A query's own
            ``invoke(query, filter=...)`` adds to them.
        savings: Tracker the accounting of every query is added to.

    Every document carries ``metadata["intents"]`` and ``metadata["tokenflow"]`` (the accounting).

    >>> from langchain_core.embeddings import DeterministicFakeEmbedding
    >>> retriever = TokenFlowRetriever.from_texts(
    ...     ["Refunds take 5 days.", "Couriers deliver in 2 days."], DeterministicFakeEmbedding(size=16))
    >>> [d.page_content for d in retriever.invoke("how long does a refund take?", k=1)]
    ['Refunds take 5 days.']
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    vectorstore: VectorStore
    classifier: Any = None
    k: int | None = Field(default=None, ge=1)
    policy: KPolicy = Field(default_factory=KPolicy)
    token_budget: int | None = None
    tag_missing: bool = True
    search_kwargs: dict[str, Any] = Field(default_factory=dict)
    savings: SavingsTracker = Field(default_factory=SavingsTracker)
    _parts: tuple[Any, LangChainStore, IntentRetriever] = PrivateAttr()

    def model_post_init(self, context: Any, /) -> None:
        _check_search_kwargs(self.search_kwargs)
        if self.classifier is None:
            from tokenflow_rag.classifiers import load_default_classifier

            self.classifier = load_default_classifier()
        self._parts = (self._key(), *self._build(None))

    def _key(self) -> tuple[Any, ...]:
        """What the store wrapper (first item) and the core are built from."""
        store_key = (id(self.vectorstore), id(self.classifier), self.tag_missing, repr(self.search_kwargs))
        return (store_key, self.policy, self.token_budget)

    def _build(self, store: LangChainStore | None) -> tuple[LangChainStore, IntentRetriever]:
        if store is None:
            store = LangChainStore(
                self.vectorstore, self.classifier, tag_missing=self.tag_missing, search_kwargs=self.search_kwargs
            )
        core = IntentRetriever(store, NoEmbedder(), self.classifier, policy=self.policy, token_budget=self.token_budget)
        return store, core

    def _current(self) -> tuple[LangChainStore, IntentRetriever]:
        """The store wrapper and core for the fields as they are now (``model_copy(update=...)``, assignment)."""
        key = self._key()
        built, store, core = self._parts
        if built != key:  # rebuilt, never mutated: a copy shares the parts of its original
            _check_search_kwargs(self.search_kwargs)
            store, core = self._build(store if built[0] == key[0] else None)
            self._parts = (key, store, core)
        return store, core

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

    def add_documents(self, documents: Sequence[Document], **kwargs: Any) -> list[str]:
        """Tag the documents, then add them to the vector store (``kwargs`` go to its ``add_documents``).

        Documents added to the store directly arrive untagged: they are tagged when a search meets them, and
        the store's own intent filter, which cannot see them, gives way to filtering after the search.
        """
        documents = list(documents)
        metadatas = tag_records(
            [d.page_content for d in documents],
            [d.metadata for d in documents],
            self.classifier,
            encoding_for(self.vectorstore),
        )
        tagged = [Document(d.page_content, metadata=md, id=d.id) for d, md in zip(documents, metadatas)]
        return self.vectorstore.add_documents(tagged, **kwargs)

    async def aadd_documents(self, documents: Sequence[Document], **kwargs: Any) -> list[str]:
        """Async :meth:`add_documents`."""
        return await asyncio.to_thread(self.add_documents, documents, **kwargs)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None, **search: Any
    ) -> list[Document]:
        store, result = self._retrieve(query, k, search)
        run_manager.get_child().on_custom_event(
            ACCOUNTING_EVENT, result.accounting.to_dict(), run_id=run_manager.run_id
        )
        return self._documents(store, result)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, k: int | None = None, **search: Any
    ) -> list[Document]:
        store, result = await asyncio.to_thread(self._retrieve, query, k, search)
        await run_manager.get_child().on_custom_event(
            ACCOUNTING_EVENT, result.accounting.to_dict(), run_id=run_manager.run_id
        )
        return self._documents(store, result)

    def _retrieve(self, query: str, k: int | None, search: dict[str, Any]) -> tuple[LangChainStore, RetrievalResult]:
        """One query; ``search``: this call's search kwargs (``invoke(q, filter=...)``), over ``search_kwargs``."""
        search.pop("verbose", None)  # LangChain's own (callback verbosity), passed along to every retriever
        _check_search_kwargs(search)
        store, core = self._current()
        result = retrieve(core, store, query, k if k is not None else self.k, native=search)
        self.savings.record(result.accounting)
        return store, result

    @staticmethod
    def _documents(store: LangChainStore, result: RetrievalResult) -> list[Document]:
        accounting = result.accounting.to_dict()
        out = []
        for sc in result:
            doc = store.native[sc.chunk.id].native
            tags = {INTENTS_KEY: list(sc.chunk.intents)} if INTENTS_KEY in sc.chunk.metadata else {}
            out.append(
                Document(doc.page_content, metadata={**doc.metadata, **tags, ACCOUNTING_KEY: accounting}, id=doc.id)
            )
        return out


def _check_search_kwargs(search: dict[str, Any]) -> None:
    if "k" in search:
        raise ConfigError(
            f"search_kwargs k={search['k']!r} is not used: k is sized per query from its intents. Pass k= to "
            "fix it for every query, or policy=KPolicy(base_k=...) to set the plain top-k used when unsure"
        )


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
