"""Tagging chunks with intents: from any classifier, never overriding tags the user already set."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence

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
    min_share: float = 0.0,
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
        min_share: Drop intents whose evidence is below this share of the strongest intent's. Evidence
            is ``-log(1 - score)``: additive over independent keyword hits, so 0.34 keeps an intent with
            a third of the leading intent's keyword hits (long documents mention many topics in passing).
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
        if chunk.metadata.get(INTENTS_KEY) is None:
            todo.append(i)
            continue
        tags = taxonomy.check_names(chunk.intents, where=f"chunk {chunk.id!r}, metadata {INTENTS_KEY!r}")
        out[i] = chunk.with_metadata(**{INTENTS_KEY: list(tags), TAGGED_BY_KEY: "user"})

    source = type(classifier).__name__
    bar = _progress(len(todo), enabled=progress and len(todo) > batch_size)
    for start in range(0, len(todo), batch_size):
        rows = todo[start : start + batch_size]
        predictions = classifier.predict([chunks[i].text for i in rows])
        for i, prediction in zip(rows, predictions):
            strong = _strong_intents(prediction.scores, min_score, max_intents, min_share)
            out[i] = chunks[i].with_metadata(**{INTENTS_KEY: strong, TAGGED_BY_KEY: source})
        bar.update(len(rows))
    bar.close()
    tagged = [c for c in out if c is not None]
    logger.info("tagged %d chunks (%d kept user tags)", len(tagged), len(chunks) - len(todo))
    return tagged


def _strong_intents(scores: Mapping[str, float], min_score: float, max_intents: int, min_share: float) -> list[str]:
    """Intents passing ``min_score`` whose evidence is at least ``min_share`` of the best one's, best first."""
    evidence = {name: -math.log(max(1.0 - s, 1e-9)) for name, s in scores.items() if s >= min_score}
    strongest = max(evidence.values(), default=0.0)
    ranked = sorted(evidence.items(), key=lambda kv: (-kv[1], kv[0]))
    return [name for name, e in ranked if e >= min_share * strongest][:max_intents]


def _progress(total: int, *, enabled: bool):  # type: ignore[no-untyped-def]
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="tagging chunks", unit="chunk", disable=not enabled)
