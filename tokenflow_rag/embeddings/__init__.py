"""Embedders: pluggable through the :class:`Embedder` protocol; built-ins registered by name."""

from tokenflow_rag.embeddings.base import DEFAULT_EMBEDDER, EMBEDDERS, Embedder, get_embedder, register_embedder
from tokenflow_rag.embeddings.hashing import HashingEmbedder
from tokenflow_rag.embeddings.pretrained import MiniLMEmbedder, USEMultilingualEmbedder

__all__ = [
    "DEFAULT_EMBEDDER",
    "EMBEDDERS",
    "Embedder",
    "HashingEmbedder",
    "MiniLMEmbedder",
    "USEMultilingualEmbedder",
    "get_embedder",
    "register_embedder",
]
