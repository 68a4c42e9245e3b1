"""Tagging chunks with intents: from any classifier, never overriding tags the user already set."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from tokenflow_rag.classifiers.base import IntentClassifier
from tokenflow_rag.errors import ConfigError
from tokenflow_rag.types import INTENTS_KEY, Chunk

logger = logging.getLogger(__name__)

TAGGED_BY_KEY = "intents_source"
"""Metadata key recording where a chunk's tags came from: "user" or the classifier's class name."""


def tag_chunks(
    chunks: Sequence[Chunk],
    classifier: IntentClassifier,
    *,
    min_score: float = 0.5,
    max_intents: int = 3,
    batch_size: int = 64,
    progress: bool = True,
) -> list[Chunk]:
    """Return the chunks with ``metadata["intents"]`` set.

    Chunks that already carry an ``intents`` list keep it (the user's tags win); the others get the
    classifier's intents scoring at least ``min_score``, at most ``max_intents`` of them, best first.
    A chunk about nothing in the taxonomy gets an empty list: it stays reachable through the plain
    fallback and through top-up.

    Args:
        chunks: Chunks to tag.
        classifier: Any intent classifier (rules, neural, hybrid or your own).
        min_score: Score a document needs for a tag.
        max_intents: Most tags per chunk.
        batch_size: Texts per classifier call.
        progress: Show a progress bar (tqdm) on long corpora.
    """
    if not 0.0 <= min_score <= 1.0:
        raise ConfigError(f"min_score must be in [0, 1], got {min_score!r}")
    if max_intents < 1:
        raise ConfigError(f"max_intents must be >= 1, got {max_intents!r}")
    taxonomy = classifier.taxonomy
    out: list[Chunk | None] = [None] * len(chunks)
    todo: list[int] = []
    for i, chunk in enumerate(chunks):
        user_tags = chunk.metadata.get(INTENTS_KEY)
        if user_tags is None:
            todo.append(i)
            continue
        if isinstance(user_tags, str):
            user_tags = [t.strip() for t in user_tags.split(",") if t.strip()]
        tags = taxonomy.check_names(user_tags, where=f"chunk {chunk.id!r}, metadata {INTENTS_KEY!r}")
        out[i] = chunk.with_metadata(**{INTENTS_KEY: list(tags), TAGGED_BY_KEY: "user"})

    source = type(classifier).__name__
    bar = _progress(len(todo), enabled=progress and len(todo) > batch_size)
    for start in range(0, len(todo), batch_size):
        rows = todo[start : start + batch_size]
        predictions = classifier.predict([chunks[i].text for i in rows])
        for i, prediction in zip(rows, predictions):
            ranked = sorted(prediction.scores.items(), key=lambda kv: (-kv[1], kv[0]))
            tags = [name for name, score in ranked if score >= min_score][:max_intents]
            out[i] = chunks[i].with_metadata(**{INTENTS_KEY: tags, TAGGED_BY_KEY: source})
        bar.update(len(rows))
    bar.close()
    tagged = [c for c in out if c is not None]
    logger.info("tagged %d chunks (%d kept user tags)", len(tagged), len(chunks) - len(todo))
    return tagged


def _progress(total: int, *, enabled: bool):  # type: ignore[no-untyped-def]
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="tagging chunks", unit="chunk", disable=not enabled)
