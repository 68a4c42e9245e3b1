"""The embedder interface and the registry of embedded embedders by name."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from tokenflow_rag.errors import ConfigError


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors (cosine similarity = inner product)."""

    name: str
    dim: int

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


EMBEDDERS: dict[str, Callable[[], Embedder]] = {}
"""Factories of the embedders shipped with tokenflow_rag, by name."""

DEFAULT_EMBEDDER = "use-multilingual"
"""Chosen by measurement on sample_corpus (zh + en): see BENCHMARKS.md."""


def register_embedder(name: str) -> Callable[[Callable[[], Embedder]], Callable[[], Embedder]]:
    """Decorator registering a zero-argument embedder factory under ``name``."""

    def decorate(factory: Callable[[], Embedder]) -> Callable[[], Embedder]:
        EMBEDDERS[name] = factory
        return factory

    return decorate


def get_embedder(name: str | Embedder | None = None) -> Embedder:
    """An embedder by registered name (``None`` = the default); an Embedder instance passes through."""
    if name is not None and not isinstance(name, str):
        if isinstance(name, Embedder):
            return name
        raise ConfigError(f"embedder must be a name or an Embedder, got {type(name).__name__}")
    key = check_embedder_name(name)
    if key.startswith("hashing-"):  # the hashing embedder's name records its size
        from tokenflow_rag.embeddings.hashing import HashingEmbedder

        return HashingEmbedder(dim=int(key[8:]))
    return EMBEDDERS[key]()


def check_embedder_name(name: str | None) -> str:
    """The registered name ``name`` stands for (``None``: the default), or a ConfigError listing the names;
    cheap, so a command can check it before a long run instead of failing at its end."""
    import tokenflow_rag.embeddings  # noqa: F401  (registers the built-ins)

    key = name or DEFAULT_EMBEDDER
    if key in EMBEDDERS or (key.startswith("hashing-") and key[8:].isdigit()):
        return key
    raise ConfigError(f"unknown embedder {key!r}; choose one of: {', '.join(sorted(EMBEDDERS))}")


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise rows as float32; zero rows stay zero."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors[None, :]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
