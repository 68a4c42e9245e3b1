"""An on-disk cache of embeddings, so re-running a benchmark does not re-embed thousands of documents.

Vectors are cached per text: each is keyed by a SHA-256 of its text, under a folder per embedder
(name and dimension). A call embeds only the texts not seen before and stores them as a new shard,
``shard-<id>.npy`` plus ``shard-<id>.json`` (the text keys of its rows). Another split, ``--limit``
or history setting over the same dataset reuses whatever it shares with earlier runs, and a changed
dataset file can never be served stale vectors. Both files are written to temporary names and
renamed into place, the ``.json`` last: an interrupted run leaves no shard that looks complete.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tokenflow_rag.embeddings.base import Embedder

logger = logging.getLogger(__name__)

__all__ = ["EmbeddingCache", "default_cache_dir"]


def default_cache_dir() -> Path:
    """``$TOKENFLOW_CACHE_DIR``, else ``$XDG_CACHE_HOME/tokenflow_rag``, else ``~/.cache/tokenflow_rag``."""
    if os.environ.get("TOKENFLOW_CACHE_DIR"):
        return Path(os.environ["TOKENFLOW_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tokenflow_rag"


def text_key(text: str) -> str:
    """The cache key of one text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class EmbeddingCache:
    """Embed each text once per embedder; later calls load the saved vectors.

    Args:
        directory: Where the shards live (created on first write); None disables caching.

    >>> from tokenflow_rag.embeddings import HashingEmbedder
    >>> cache = EmbeddingCache(None)
    >>> cache.embed(HashingEmbedder(dim=8), ["a", "b"], progress=False).shape
    (2, 8)
    """

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory) if directory is not None else None

    def folder(self, embedder: Embedder) -> Path | None:
        """The folder of ``embedder``'s shards (None when caching is off)."""
        if self.directory is None:
            return None
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in embedder.name)
        return self.directory / f"{safe}-{embedder.dim}"

    def embed(
        self,
        embedder: Embedder,
        texts: Sequence[str],
        *,
        batch_size: int = 64,
        progress: bool = True,
        desc: str = "embedding",
    ) -> np.ndarray:
        """Vectors of ``texts`` (one row each, in order), embedding only those not cached yet."""
        folder = self.folder(embedder)
        if folder is None:
            return _embed(embedder, texts, batch_size=batch_size, progress=progress, desc=desc)
        keys = [text_key(t) for t in texts]
        index = _read_index(folder)
        todo = list(dict.fromkeys(k for k in keys if k not in index))
        if todo:
            first_text: dict[str, str] = {}
            for key, text in zip(keys, texts):
                first_text.setdefault(key, text)
            fresh = _embed(embedder, [first_text[k] for k in todo], batch_size=batch_size, progress=progress, desc=desc)
            shard = _write_shard(folder, todo, fresh)
            index.update({k: (shard, row) for row, k in enumerate(todo)})
        logger.info("%s: %d of %d texts from the cache in %s", embedder.name, len(keys) - len(todo), len(keys), folder)
        try:
            return _gather(folder, index, keys, embedder.dim)
        except _DamagedShard as exc:  # drop it and embed its texts again
            logger.warning("dropping damaged embedding cache shard %s (%s)", exc.path, exc.__cause__)
            for suffix in (".json", ".npy"):
                exc.path.with_suffix(suffix).unlink(missing_ok=True)
            return self.embed(embedder, texts, batch_size=batch_size, progress=progress, desc=desc)


def _embed(embedder: Embedder, texts: Sequence[str], *, batch_size: int, progress: bool, desc: str) -> np.ndarray:
    from tqdm.auto import tqdm

    parts = []
    with tqdm(total=len(texts), desc=desc, unit="text", disable=not progress or len(texts) <= batch_size) as bar:
        for start in range(0, len(texts), batch_size):
            batch = list(texts[start : start + batch_size])
            parts.append(np.asarray(embedder.embed_documents(batch), dtype=np.float32))
            bar.update(len(batch))
    return np.vstack(parts) if parts else np.zeros((0, embedder.dim), np.float32)


def _read_index(folder: Path) -> dict[str, tuple[str, int]]:
    """text key -> (shard name, row) over every complete shard of the folder."""
    index: dict[str, tuple[str, int]] = {}
    for meta in sorted(folder.glob("shard-*.json")):
        try:
            keys = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:  # a damaged shard is ignored; its texts are embedded again
            logger.warning("ignoring unreadable embedding cache shard %s (%s)", meta, exc)
            continue
        index.update({k: (meta.stem, row) for row, k in enumerate(keys)})
    return index


def _gather(folder: Path, index: dict[str, tuple[str, int]], keys: Sequence[str], dim: int) -> np.ndarray:
    out = np.zeros((len(keys), dim), dtype=np.float32)
    by_shard: dict[str, list[tuple[int, int]]] = {}
    for i, key in enumerate(keys):
        shard, row = index[key]
        by_shard.setdefault(shard, []).append((i, row))
    for shard, pairs in by_shard.items():
        dest, rows = zip(*pairs)
        try:
            vectors = np.load(folder / f"{shard}.npy", mmap_mode="r", allow_pickle=False)
            if vectors.ndim != 2 or vectors.shape[1] != dim:
                raise ValueError(f"shape {vectors.shape}, expected (*, {dim})")
            out[list(dest)] = vectors[list(rows)]
        except (OSError, ValueError, IndexError) as exc:
            raise _DamagedShard(folder / f"{shard}.npy") from exc
    return out


class _DamagedShard(Exception):
    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path


def _write_shard(folder: Path, keys: Sequence[str], vectors: np.ndarray) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    name = f"shard-{hashlib.sha256(''.join(keys).encode()).hexdigest()[:16]}"
    _atomic_write(folder / f"{name}.npy", lambda fh: np.save(fh, vectors, allow_pickle=False))
    _atomic_write(folder / f"{name}.json", lambda fh: fh.write(json.dumps(list(keys)).encode("utf-8")))
    return name


def _atomic_write(path: Path, write) -> None:  # type: ignore[no-untyped-def]
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
