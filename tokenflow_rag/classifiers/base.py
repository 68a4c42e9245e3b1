"""The classifier interface every intent classifier implements, and the registry that names them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar, runtime_checkable

from tokenflow_rag.errors import ConfigError
from tokenflow_rag.taxonomy import Taxonomy
from tokenflow_rag.types import IntentPrediction


@runtime_checkable
class IntentClassifier(Protocol):
    """Anything that maps texts to per-intent scores plugs into the retriever.

    Implementations return one :class:`IntentPrediction` per input text, in order, with a score for
    every intent of :attr:`taxonomy`. They must not raise on odd but valid strings (emoji, control
    characters, very long text): the retriever validates queries before they arrive.
    """

    @property
    def taxonomy(self) -> Taxonomy: ...

    def predict(self, texts: Sequence[str]) -> list[IntentPrediction]: ...


_C = TypeVar("_C")
CLASSIFIERS: dict[str, type] = {}
"""Registry of classifier kinds by short name ("rules", "neural", "hybrid")."""


def register_classifier(name: str) -> Callable[[type[_C]], type[_C]]:
    """Class decorator that makes a classifier constructible by name (``--mode NAME`` in the CLI)."""

    def decorate(cls: type[_C]) -> type[_C]:
        CLASSIFIERS[name] = cls
        return cls

    return decorate


def classifier_class(name: str) -> type:
    """Look a classifier kind up by name, with the known names in the error."""
    # Importing the implementations registers them; neural ones import torch lazily inside.
    import tokenflow_rag.classifiers  # noqa: F401

    try:
        return CLASSIFIERS[name]
    except KeyError:
        raise ConfigError(f"unknown classifier {name!r}; choose one of: {', '.join(sorted(CLASSIFIERS))}") from None


def select_intents(
    scores: dict[str, float], thresholds: dict[str, float] | float, *, max_intents: int | None = None
) -> tuple[str, ...]:
    """Intents whose score reaches their threshold, best first; an empty tuple means "none"."""
    passed = [
        (s, name)
        for name, s in scores.items()
        if s >= (thresholds if isinstance(thresholds, float) else thresholds.get(name, 0.5))
    ]
    passed.sort(key=lambda pair: (-pair[0], pair[1]))
    names = tuple(name for _, name in passed)
    return names[:max_intents] if max_intents else names
