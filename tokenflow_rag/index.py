"""Building, saving and loading an intent-tagged index (FAISS + chunks + taxonomy + manifest)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tokenflow_rag import __version__
from tokenflow_rag._io import atomic_directory, check_replaceable_dir
from tokenflow_rag.classifiers.base import IntentClassifier
from tokenflow_rag.embeddings.base import Embedder, get_embedder
from tokenflow_rag.errors import ConfigError, IndexStoreError
from tokenflow_rag.retriever import IntentRetriever
from tokenflow_rag.stores.faiss import FaissStore
from tokenflow_rag.tagging import tag_chunks
from tokenflow_rag.taxonomy import Taxonomy
from tokenflow_rag.types import Chunk

MANIFEST = "tokenflow_index.json"
TAXONOMY_FILE = "taxonomy.yaml"
FORMAT_VERSION = 1


def embed_chunks(
    embedder: Embedder, chunks: Sequence[Chunk], *, batch_size: int = 64, progress: bool = True
) -> np.ndarray:
    """Embed chunk texts in batches with a progress bar."""
    from tqdm.auto import tqdm

    parts = []
    with tqdm(
        total=len(chunks), desc="embedding chunks", unit="chunk", disable=not progress or len(chunks) <= batch_size
    ) as bar:
        for start in range(0, len(chunks), batch_size):
            batch = chunks[start : start + batch_size]
            parts.append(embedder.embed_documents([c.text for c in batch]))
            bar.update(len(batch))
    return np.vstack(parts) if parts else np.zeros((0, embedder.dim), np.float32)


def build_index(
    chunks: Sequence[Chunk],
    *,
    embedder: Embedder | str | None = None,
    classifier: IntentClassifier | None = None,
    tagger: IntentClassifier | None = None,
    tag_min_score: float = 0.5,
    progress: bool = True,
    partition_by_intent: bool = False,
    **retriever_options: Any,
) -> IntentRetriever:
    """Tag ``chunks`` (user tags win), embed them into a :class:`FaissStore`, return a retriever over it.

    Args:
        chunks: The corpus.
        embedder: Embedder name or instance (default: the multilingual default).
        classifier: Classifies queries (default: :func:`load_default_classifier`).
        tagger: Tags documents. Default: keyword rules over the classifier's taxonomy, because the
            neural model learned from short queries and long documents are outside what it saw.
        tag_min_score: Score a document needs for a tag.
        progress: Progress bars while tagging and embedding.
        partition_by_intent: Search each intent's rows from a copy of their vectors: faster restricted
            searches on large corpora for more memory (see :class:`FaissStore`).
        **retriever_options: Passed to :class:`IntentRetriever` (policy, token_budget ...).
    """
    if not chunks:
        raise ConfigError("build_index needs at least one chunk")
    if classifier is None:
        from tokenflow_rag.classifiers import load_default_classifier

        classifier = load_default_classifier()
    if tagger is None:
        from tokenflow_rag.classifiers.rules import RuleClassifier

        tagger = RuleClassifier(classifier.taxonomy)
    embedder = get_embedder(embedder)
    tagged = tag_chunks(chunks, tagger, min_score=tag_min_score, progress=progress)
    store = FaissStore(partition_by_intent=partition_by_intent)
    store.add(tagged, embed_chunks(embedder, tagged, progress=progress))
    return IntentRetriever(store, embedder, classifier, **retriever_options)


def save_index(retriever: IntentRetriever, directory: str | Path) -> Path:
    """Write the retriever's FAISS store, taxonomy and manifest to ``directory`` atomically."""
    store = retriever.store
    if not isinstance(store, FaissStore):
        raise ConfigError(f"save_index saves a FaissStore; {type(store).__name__} persists through its own backend")
    directory = check_index_dir(Path(directory))
    with atomic_directory(directory) as tmp:
        store.write_into(tmp)
        retriever.taxonomy.to_yaml(tmp / TAXONOMY_FILE)
        manifest = {
            "format": "tokenflow-index",
            "format_version": FORMAT_VERSION,
            "tokenflow_rag": __version__,
            "embedder": retriever.embedder.name,
            "dim": retriever.embedder.dim,
            "chunks": len(store),
            "taxonomy": retriever.taxonomy.name,
            "base_k": retriever.policy.base_k,
            "max_k": retriever.policy.max_k,
            "min_confidence": retriever.policy.min_confidence,
            "token_budget": retriever.token_budget,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return directory


def check_index_dir(directory: str | Path) -> Path:
    """Refuse an output path that saving an index would wipe (a file, or a directory of something else)."""
    return check_replaceable_dir(Path(directory), MANIFEST, "index")


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """The manifest of an index directory, validated."""
    directory = Path(directory)
    if not directory.is_dir():
        raise IndexStoreError(
            f"index directory {directory} does not exist; build one with `tokenflow index CORPUS --out {directory}`"
        )
    path = directory / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexStoreError(
            f"{directory} is not a complete tokenflow index ({MANIFEST} missing); rebuild it"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IndexStoreError(f"{path} is corrupt ({exc}); rebuild the index") from None
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != "tokenflow-index"
        or manifest.get("format_version") != FORMAT_VERSION
    ):
        raise IndexStoreError(f"{path} is not a tokenflow index of format version {FORMAT_VERSION}; rebuild the index")
    for key, kind in (("chunks", int), ("embedder", str), ("dim", int)):
        if not isinstance(manifest.get(key), kind) or isinstance(manifest.get(key), bool):
            raise IndexStoreError(
                f"{path}: field {key!r} is missing or not {'an integer' if kind is int else 'a string'}; "
                "rebuild the index"
            )
    return manifest


def load_index(
    directory: str | Path,
    *,
    classifier: IntentClassifier | None = None,
    embedder: Embedder | None = None,
    partition_by_intent: bool = False,
    **retriever_options: Any,
) -> IntentRetriever:
    """Load an index saved by :func:`save_index`; results are identical to the saved retriever's, given the
    same classifier (the default one unless you pass yours): its policy and token budget are saved with it.

    ``partition_by_intent``: as in :func:`build_index` (a way to search, not saved with the index).
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    store = FaissStore.load(directory, partition_by_intent=partition_by_intent)
    if len(store) != manifest["chunks"]:
        raise IndexStoreError(
            f"{directory}: manifest says {manifest['chunks']} chunks, found {len(store)}; rebuild the index"
        )
    taxonomy = Taxonomy.from_yaml(directory / TAXONOMY_FILE)
    embedder = embedder or get_embedder(manifest["embedder"])
    if embedder.dim != manifest["dim"]:
        raise IndexStoreError(
            f"{directory} was built with {manifest['embedder']} ({manifest['dim']} dims), not {embedder.name}"
        )
    if classifier is None:
        from tokenflow_rag.classifiers import load_default_classifier

        classifier = load_default_classifier(taxonomy)
    elif classifier.taxonomy.names != taxonomy.names:
        raise ConfigError(
            f"classifier taxonomy {list(classifier.taxonomy.names)} differs from the index's {list(taxonomy.names)}"
        )
    options = {"policy": None, "token_budget": manifest.get("token_budget"), **retriever_options}
    if options["policy"] is None:
        from tokenflow_rag.policy import KPolicy

        options["policy"] = KPolicy(
            base_k=manifest.get("base_k", 5),
            max_k=manifest.get("max_k", 8),
            min_confidence=manifest.get("min_confidence", 0.5),
        )
    return IntentRetriever(store, embedder, classifier, **options)
