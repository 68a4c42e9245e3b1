"""tokenflow_rag: intent-aware retrieval that sends fewer prompt tokens without losing the answer.

The public API is flat and lazy: ``import tokenflow_rag`` loads none of torch, faiss, llama_index
or langchain; each is imported on first use of the part that needs it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tokenflow_rag._version import __version__

_EXPORTS = {
    # value objects and errors
    "Chunk": "tokenflow_rag.types",
    "IntentPrediction": "tokenflow_rag.types",
    "ScoredChunk": "tokenflow_rag.types",
    "Accounting": "tokenflow_rag.types",
    "RetrievalResult": "tokenflow_rag.types",
    "TokenFlowError": "tokenflow_rag.errors",
    # taxonomy
    "Intent": "tokenflow_rag.taxonomy",
    "Taxonomy": "tokenflow_rag.taxonomy",
    "load_taxonomy": "tokenflow_rag.taxonomy",
    "default_taxonomy": "tokenflow_rag.taxonomy",
    # classifiers
    "IntentClassifier": "tokenflow_rag.classifiers",
    "RuleClassifier": "tokenflow_rag.classifiers",
    "load_default_classifier": "tokenflow_rag.classifiers",
    "load_classifier": "tokenflow_rag.classifiers",
    # tagging, policy, tokens
    "tag_chunks": "tokenflow_rag.tagging",
    "KPolicy": "tokenflow_rag.policy",
    "TokenCounter": "tokenflow_rag.tokens",
    "get_token_counter": "tokenflow_rag.tokens",
    # embeddings and stores
    "Embedder": "tokenflow_rag.embeddings",
    "HashingEmbedder": "tokenflow_rag.embeddings",
    "get_embedder": "tokenflow_rag.embeddings",
    "VectorStore": "tokenflow_rag.stores",
    "FaissStore": "tokenflow_rag.stores",
    "InMemoryStore": "tokenflow_rag.stores",
    "ChromaStore": "tokenflow_rag.stores.chroma",
    "MilvusStore": "tokenflow_rag.stores.milvus",
    "SavingsTracker": "tokenflow_rag.savings",
    # retriever and index
    "IntentRetriever": "tokenflow_rag.retriever",
    "load_corpus": "tokenflow_rag.corpus",
    "build_index": "tokenflow_rag.index",
    "save_index": "tokenflow_rag.index",
    "load_index": "tokenflow_rag.index",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tokenflow_rag' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # cache: later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # let type checkers and IDEs see the real objects
    from tokenflow_rag.classifiers import IntentClassifier, RuleClassifier, load_classifier, load_default_classifier
    from tokenflow_rag.corpus import load_corpus
    from tokenflow_rag.embeddings import Embedder, HashingEmbedder, get_embedder
    from tokenflow_rag.errors import TokenFlowError
    from tokenflow_rag.index import build_index, load_index, save_index
    from tokenflow_rag.policy import KPolicy
    from tokenflow_rag.retriever import IntentRetriever
    from tokenflow_rag.savings import SavingsTracker
    from tokenflow_rag.stores import FaissStore, InMemoryStore, VectorStore
    from tokenflow_rag.stores.chroma import ChromaStore
    from tokenflow_rag.stores.milvus import MilvusStore
    from tokenflow_rag.tagging import tag_chunks
    from tokenflow_rag.taxonomy import Intent, Taxonomy, default_taxonomy, load_taxonomy
    from tokenflow_rag.tokens import TokenCounter, get_token_counter
    from tokenflow_rag.types import Accounting, Chunk, IntentPrediction, RetrievalResult, ScoredChunk
