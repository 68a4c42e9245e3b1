"""Baseline multi-label intent classifiers a user could pick instead of tokenflow's own.

Both are one-vs-rest logistic regressions that differ only in their features: TF-IDF character
n-grams (no tokenizer, so Chinese works unsegmented) or frozen sentence embeddings (a SetFit-style
head without the contrastive fine-tuning). An intent is predicted when its probability reaches
``threshold``; when none does, the prediction is ``()``, "no intent". scikit-learn is imported only
when a baseline is fitted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from tokenflow_rag._optional import require
from tokenflow_rag.errors import ConfigError
from tokenflow_rag.taxonomy import NONE_INTENT

__all__ = ["EmbeddingLogRegBaseline", "TfidfLogRegBaseline"]

Embed = Callable[[list[str]], np.ndarray]
_Head = TypeVar("_Head", bound="_OneVsRestHead")


def _sklearn(submodule: str) -> Any:
    return require(f"sklearn.{submodule}")


class _OneVsRestHead:
    """Shared fit/predict logic; subclasses turn texts into a feature matrix."""

    threshold: float
    C: float
    class_weight: str | None
    max_iter: int

    def _fit_features(self, texts: list[str]) -> Any:
        raise NotImplementedError

    def _features(self, texts: list[str]) -> Any:
        raise NotImplementedError

    def fit(self: _Head, texts: Sequence[str], labels: Sequence[Sequence[str]]) -> _Head:
        """Learn one binary classifier per intent.

        Args:
            texts: Training texts.
            labels: The intents of each text; ``()`` or ``("none",)`` for no intent.

        Returns:
            self, fitted.

        Raises:
            ConfigError: Mismatched lengths, no texts, a bare string where a list was expected, or a
                threshold outside (0, 1).
        """
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"threshold must be in (0, 1), got {self.threshold}")
        texts = _texts(texts)
        if len(texts) != len(labels):
            raise ConfigError(f"texts has {len(texts)} items but labels has {len(labels)}")
        if not texts:
            raise ConfigError("texts is empty; fit needs at least one example")
        label_sets = []
        for i, intents in enumerate(labels):
            if isinstance(intents, str):
                raise ConfigError(f"labels[{i}] is the string {intents!r}; pass a list, e.g. [{intents!r}]")
            label_sets.append({name for name in intents if name.lower() != NONE_INTENT})
        self.classes_ = tuple(sorted(set().union(*label_sets)))
        features = self._fit_features(texts)
        linear_model = _sklearn("linear_model")
        self.estimators_: list[Any] = []
        for name in self.classes_:
            y = np.fromiter((name in s for s in label_sets), dtype=np.int64, count=len(label_sets))
            if y.min() == y.max():
                # scikit-learn refuses a single class; an intent on every (or no) example is a constant.
                self.estimators_.append(float(y[0]))
                continue
            model = linear_model.LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=self.max_iter)
            self.estimators_.append(model.fit(features, y))
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probability of each intent in :attr:`classes_`, shape ``(len(texts), len(classes_))``."""
        if not hasattr(self, "classes_"):
            raise ConfigError(f"this {type(self).__name__} is not fitted yet; call fit(texts, labels) first")
        texts = _texts(texts)
        proba = np.zeros((len(texts), len(self.classes_)), dtype=np.float64)
        if not texts or not self.classes_:
            return proba
        features = self._features(texts)
        for j, model in enumerate(self.estimators_):
            proba[:, j] = model if isinstance(model, float) else model.predict_proba(features)[:, 1]
        return proba

    def predict(self, texts: Sequence[str]) -> list[tuple[str, ...]]:
        """The intents whose probability reaches ``threshold``, sorted by name; ``()`` means none."""
        proba = self.predict_proba(texts)
        return [tuple(c for c, p in zip(self.classes_, row) if p >= self.threshold) for row in proba]


class TfidfLogRegBaseline(_OneVsRestHead):
    """TF-IDF character n-grams (``char_wb``, 1-4) and one logistic regression per intent.

    Args:
        threshold: Probability an intent needs to be predicted.
        C: Inverse regularisation strength of each logistic regression.
        class_weight: ``"balanced"`` reweights each intent's rare positives so that 0.5 stays a sensible
            threshold; ``None`` for scikit-learn's unweighted default.
        ngram_range: Character n-gram lengths.
        max_iter: Solver iterations.

    The defaults (``C=10``, balanced) scored best among C in {1, 10, 100} x {balanced, None} on the
    CLINC150 val split and NLU++ folds 10-14 (trained on train / folds 0-9); no test split was used.

    >>> clf = TfidfLogRegBaseline().fit(["refund me", "track parcel"], [["refund"], ["shipping"]])  # doctest: +SKIP
    >>> clf.predict(["refund please"])  # doctest: +SKIP
    [('refund',)]
    """

    def __init__(
        self,
        *,
        threshold: float = 0.5,
        C: float = 10.0,
        class_weight: str | None = "balanced",
        ngram_range: tuple[int, int] = (1, 4),
        max_iter: int = 1000,
    ) -> None:
        self.threshold = threshold
        self.C = C
        self.class_weight = class_weight
        self.ngram_range = ngram_range
        self.max_iter = max_iter

    def _fit_features(self, texts: list[str]) -> Any:
        text = _sklearn("feature_extraction.text")
        # sublinear tf keeps a repeated character (Chinese particles, "!!!") from dominating a short query.
        self.vectorizer_ = text.TfidfVectorizer(analyzer="char_wb", ngram_range=self.ngram_range, sublinear_tf=True)
        return self.vectorizer_.fit_transform(texts)

    def _features(self, texts: list[str]) -> Any:
        return self.vectorizer_.transform(texts)


class EmbeddingLogRegBaseline(_OneVsRestHead):
    """Frozen sentence embeddings and one logistic regression per intent (a SetFit-style head).

    Args:
        embed: Maps a list of texts to a ``(len(texts), dim)`` array, e.g. an embedder's ``embed_documents``.
        threshold: Probability an intent needs to be predicted.
        C: Inverse regularisation strength of each logistic regression.
        class_weight: ``"balanced"`` (default) or ``None``, as for :class:`TfidfLogRegBaseline`.
        max_iter: Solver iterations.

    The defaults (``C=100``, balanced) scored best among C in {1, 10, 100} x {balanced, None} with
    MiniLM embeddings on NLU++ folds 10-14 (trained on folds 0-9). SetFit's own head keeps
    scikit-learn's ``C=1``, unweighted, which on unit-length embeddings predicts "none" far too often.

    >>> clf = EmbeddingLogRegBaseline(my_embedder.embed).fit(texts, labels)  # doctest: +SKIP
    """

    def __init__(
        self,
        embed: Embed,
        *,
        threshold: float = 0.5,
        C: float = 100.0,
        class_weight: str | None = "balanced",
        max_iter: int = 1000,
    ) -> None:
        self.embed = embed
        self.threshold = threshold
        self.C = C
        self.class_weight = class_weight
        self.max_iter = max_iter

    def _fit_features(self, texts: list[str]) -> Any:
        return self._features(texts)

    def _features(self, texts: list[str]) -> Any:
        vectors = np.asarray(self.embed(texts), dtype=np.float64)
        if vectors.ndim != 2 or vectors.shape[0] != len(texts):
            raise ConfigError(
                f"embed returned an array of shape {vectors.shape} for {len(texts)} texts; expected (len(texts), dim)"
            )
        return vectors


def _texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise ConfigError(f"texts must be a list of strings, got the string {texts!r:.40}; wrap it in a list")
    return list(texts)
