"""LangChain vector stores seen as core stores (private: only the LangChain adapter imports this)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection
from typing import Any

import numpy as np

from tokenflow_rag.classifiers.base import IntentClassifier
from tokenflow_rag.integrations._common import Candidate, FrameworkStore, current_query
from tokenflow_rag.stores.tag_encoding import LIST, by_class_name, chroma_where, encoding_for, milvus_expr


def _in_memory_filter(intents: Collection[str]) -> dict[str, Any]:
    wanted = set(intents)
    return {"filter": lambda doc: any(t in wanted for t in LIST.decode(doc.metadata) or ())}


PUSHDOWN: dict[str, Callable[[Collection[str]], dict[str, Any]]] = {
    "Chroma": lambda intents: {"filter": chroma_where(intents)},
    "Milvus": lambda intents: {"expr": milvus_expr(intents)},
    "InMemoryVectorStore": _in_memory_filter,
}
"""Keyword arguments of ``similarity_search_with_score`` that filter on the intent tag, by store class name
(subclasses included). A store not listed is searched unfiltered and the core filters over-fetched candidates."""

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
    """Any LangChain ``VectorStore``: searched by the query text, the filter passed where the store takes it."""

    def __init__(self, vectorstore: Any, classifier: IntentClassifier, *, tag_missing: bool = True) -> None:
        self._filter = by_class_name(PUSHDOWN, vectorstore)
        super().__init__(
            classifier,
            encoding=encoding_for(vectorstore),
            can_push_down=self._filter is not None,
            tag_missing=tag_missing,
        )
        self.vectorstore = vectorstore
        try:
            self._relevance: Callable[[float], float] = vectorstore._select_relevance_score_fn()
        except (NotImplementedError, ValueError):
            self._relevance = float  # stores without one (in-memory) already return a similarity

    def _query(self, vector: np.ndarray | None, k: int, intents: Collection[str] | None) -> list[Candidate]:
        kwargs = {} if intents is None or self._filter is None else self._filter(intents)
        pairs = self.vectorstore.similarity_search_with_score(current_query(), k=k, **kwargs)
        return [Candidate(_doc_id(doc), doc.page_content, doc.metadata, self._relevance(s), doc) for doc, s in pairs]

    def _count(self) -> int | None:
        count = by_class_name(COUNTS, self.vectorstore)
        try:
            return None if count is None else count(self.vectorstore)
        except Exception:  # a count is an optimisation, never a reason to fail
            return None


def _doc_id(doc: Any) -> str:
    """The document's id, or a stable digest of its content for stores that return none."""
    return doc.id or "sha1:" + hashlib.sha1(doc.page_content.encode("utf-8")).hexdigest()
