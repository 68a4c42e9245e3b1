"""A deterministic hashing embedder: no model, no download, zh + en; for tests and tiny setups."""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import numpy as np

from tokenflow_rag.embeddings.base import normalize_rows, register_embedder
from tokenflow_rag.errors import ConfigError

_TOKEN = re.compile(r"[a-z0-9]+|[\u3400-\u9fff]")


class HashingEmbedder:
    """Hashes words and Chinese character bigrams into a fixed-size vector (the hashing trick).

    Similar texts share features, so it retrieves by lexical overlap; it knows no synonyms.

    >>> emb = HashingEmbedder(dim=64)
    >>> round(float(emb.embed_query("refund policy") @ emb.embed_query("refund policy")), 6)
    1.0
    """

    def __init__(self, dim: int = 512) -> None:
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
            raise ConfigError(f"HashingEmbedder dim must be a positive integer, got {dim!r}")
        self.dim = dim
        self.name = f"hashing-{dim}"

    def _features(self, text: str) -> list[str]:
        tokens = _TOKEN.findall(text.lower())
        feats = list(tokens)
        cjk = [t for t in tokens if len(t) == 1 and "\u3400" <= t <= "\u9fff"]
        feats += [a + b for a, b in zip(cjk, cjk[1:])]
        return feats

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feat in self._features(text):
                h = zlib.crc32(feat.encode("utf-8"))
                out[row, h % self.dim] += 1.0 if (h >> 31) & 1 else -1.0
        return normalize_rows(out)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


@register_embedder("hashing")
def _hashing() -> HashingEmbedder:
    return HashingEmbedder()
