"""LangChain vector stores seen as core stores (private: only the LangChain adapter imports this)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection
from typing import Any

import numpy as np
from langchain_core.vectorstores import VectorStore

from tokenflow_rag.classifiers.base import IntentClassifier
from tokenflow_rag.integrations._common import Candidate, FrameworkStore, current_native_query, current_query
from tokenflow_rag.stores.tag_encoding import LIST, by_class_name, chroma_where, encoding_for, milvus_expr


def _in_memory_filter(intents: Collection[str], search: dict[str, Any]) -> dict[str, Any]:
    wanted = set(intents)

    def ours(doc: Any) -> bool:
        return any(t in wanted for t in LIST.decode(doc.metadata) or ())

    theirs = search.get("filter")
    return {**search, "filter": ours if theirs is None else lambda doc: theirs(doc) and ours(doc)}


def _chroma_filter(intents: Collection[str], search: dict[str, Any]) -> dict[str, Any]:
    theirs = search.get("filter")
    ours = chroma_where(intents)
    return {**search, "filter": ours if not theirs else {"$and": [theirs, ours]}}


def _milvus_filter(intents: Collection[str], search: dict[str, Any]) -> dict[str, Any]:
    theirs = search.get("expr")
    ours = milvus_expr(intents)
    return {**search, "expr": ours if not theirs else f"({theirs}) and ({ours})"}


PUSHDOWN: dict[str, Callable[[Collection[str], dict[str, Any]], dict[str, Any]]] = {
    "Chroma": _chroma_filter,
    "Milvus": _milvus_filter,
    "InMemoryVectorStore": _in_memory_filter,
}
"""Per store class name (subclasses included): the keyword arguments of ``similarity_search_with_score`` that
add the intent filter to the user's search kwargs (their own filter is kept: both must hold). A store not
listed is searched with the user's kwargs alone, and the core filters over-fetched candidates."""

INDEX_DEFAULTS: dict[str, dict[str, Any]] = {
    # Milvus infers a fixed schema from the first metadata, which cannot hold the tag list: keep metadata dynamic.
    "Milvus": {"enable_dynamic_field": True},
}
"""Store constructor defaults used when ``from_texts`` builds the store (the caller's arguments win)."""

COUNTS: dict[str, Callable[[Any], int]] = {
    "Chroma": lambda vs: int(vs._collection.count()),
    "InMemoryVectorStore": lambda vs: len(vs.store),
    "Milvus": lambda vs: int(vs.client.query(vs.collection_name, filter="", output_fields=["count(*)"])[0]["count(*)"]),
}


class LangChainStore(FrameworkStore):
    """Any LangChain ``VectorStore``: searched by the query text, the filter passed where the store takes it.

    ``search_kwargs`` go to every search (a ``filter`` of the user's is combined with the intent filter);
    a query's own kwargs (``invoke(q, filter=...)``) come through :func:`current_native_query`.
    """

    def __init__(
        self,
        vectorstore: Any,
        classifier: IntentClassifier,
        *,
        tag_missing: bool = True,
        search_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self._filter = by_class_name(PUSHDOWN, vectorstore)
        super().__init__(
            classifier,
            encoding=encoding_for(vectorstore),
            can_push_down=self._filter is not None,
            tag_missing=tag_missing,
        )
        self.vectorstore = vectorstore
        self.search_kwargs = dict(search_kwargs or {})
        # similarity_search_with_score is optional in LangChain; without it, rank order stands in for scores.
        self._with_scores = (
            type(vectorstore).similarity_search_with_score is not VectorStore.similarity_search_with_score
        )
        try:
            self._relevance: Callable[[float], float] = vectorstore._select_relevance_score_fn()
        except (NotImplementedError, ValueError):
            self._relevance = float  # stores without one (in-memory) already return a similarity

    def _query(self, vector: np.ndarray | None, k: int, intents: Collection[str] | None) -> list[Candidate]:
        kwargs = {**self.search_kwargs, **(current_native_query() or {})}
        if intents is not None and self._filter is not None:
            kwargs = self._filter(intents, kwargs)
        if self._with_scores:
            pairs = self.vectorstore.similarity_search_with_score(current_query(), k=k, **kwargs)
            scored = [(doc, self._relevance(s)) for doc, s in pairs]
        else:
            self.warn_once(
                "scores",
                "%s has no similarity_search_with_score: ranking by similarity_search's order, scores are 1/rank",
                type(self.vectorstore).__name__,
            )
            docs = self.vectorstore.similarity_search(current_query(), k=k, **kwargs)
            scored = [(doc, 1.0 / (1 + rank)) for rank, doc in enumerate(docs)]
        return [Candidate(_doc_id(doc), doc.page_content, doc.metadata, score, doc) for doc, score in scored]

    @property
    def name(self) -> str:
        return type(self.vectorstore).__name__

    def _count(self) -> int | None:
        count = by_class_name(COUNTS, self.vectorstore)
        try:
            return None if count is None else count(self.vectorstore)
        except Exception:  # a count is an optimisation, never a reason to fail
            return None


def _doc_id(doc: Any) -> str:
    """The document's id, or a stable digest of its content and metadata for stores that return none."""
    if doc.id:
        return str(doc.id)
    content = json.dumps([doc.page_content, doc.metadata], sort_keys=True, ensure_ascii=False, default=str)
    return "sha1:" + hashlib.sha1(content.encode("utf-8")).hexdigest()
