"""Vector stores behind the :class:`VectorStore` protocol: FAISS (default) and an in-memory double."""

from tokenflow_rag.stores.base import VectorStore, matches_intents
from tokenflow_rag.stores.faiss import FaissStore
from tokenflow_rag.stores.memory import InMemoryStore

__all__ = ["FaissStore", "InMemoryStore", "VectorStore", "matches_intents"]
