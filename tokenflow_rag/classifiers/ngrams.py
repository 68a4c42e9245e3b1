"""Character n-gram model: the hybrid's fast lexical scorer beside the fine-tuned network.

TF-IDF over character 1-4-grams within word boundaries (scikit-learn's ``char_wb``: no tokenizer, so
Chinese works unsegmented and a typo only spoils a few n-grams) and one class-balanced logistic
regression per intent. It sees every surface form of the training text, where the network
generalises from meaning; averaged, the two are better than either on text neither was trained on
(see BENCHMARKS.md, "A character n-gram model in the hybrid").

scikit-learn fits it; prediction is plain numpy over the saved vocabulary, IDF weights and
coefficients (``ngrams.json`` + ``ngrams.safetensors``, no pickle), so loading a model imports nothing
heavy and one query costs well under a millisecond.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tokenflow_rag.errors import ConfigError, ModelLoadError

VOCABULARY_FILE = "ngrams.json"
WEIGHTS_FILE = "ngrams.safetensors"
_WHITESPACE = re.compile(r"\s\s+")
# Logit given to an intent that is on every (or no) training text: the regression cannot be fitted.
_CONSTANT_LOGIT = 20.0


class CharNgramModel:
    """One-vs-rest logistic regression over TF-IDF character n-grams.

    Args:
        labels: Intent names, one column each.
        vocabulary: The n-grams, in feature order.
        idf: Inverse document frequency of each n-gram, shape ``(features,)``.
        coef: Weights, shape ``(labels, features)``.
        intercept: Biases, shape ``(labels,)``.
        ngram_range: Shortest and longest n-gram.

    >>> model = CharNgramModel.fit(["refund me", "track my parcel"], [["refund"], ["shipping"]], ["refund", "shipping"])
    >>> scores = model.raw_scores(["refund please"])[0]
    >>> bool(scores[0] > scores[1])
    True
    """

    def __init__(
        self,
        labels: Sequence[str],
        vocabulary: Sequence[str],
        idf: np.ndarray,
        coef: np.ndarray,
        intercept: np.ndarray,
        ngram_range: tuple[int, int] = (1, 4),
    ) -> None:
        self.labels = tuple(labels)
        self.ngram_range = (int(ngram_range[0]), int(ngram_range[1]))
        # Weights are kept at half precision (what is saved, half the megabytes; scores move by < 1e-3),
        # so a fitted model and the one loaded from its files score exactly alike.
        self.idf = np.asarray(idf, dtype=np.float16).astype(np.float32)
        self.coef = np.asarray(coef, dtype=np.float16).astype(np.float32)
        self.intercept = np.asarray(intercept, dtype=np.float32)
        if not 1 <= self.ngram_range[0] <= self.ngram_range[1]:
            raise ConfigError(f"ngram_range must be (low, high) with 1 <= low <= high, got {ngram_range}")
        shapes_ok = (
            self.idf.shape == (len(vocabulary),)
            and self.coef.shape == (len(self.labels), len(vocabulary))
            and self.intercept.shape == (len(self.labels),)
        )
        if not shapes_ok:
            raise ConfigError(
                f"n-gram model shapes disagree: {len(vocabulary)} n-grams, {len(self.labels)} labels, "
                f"idf {self.idf.shape}, coef {self.coef.shape}, intercept {self.intercept.shape}"
            )
        self.index = {gram: i for i, gram in enumerate(vocabulary)}

    # -- fitting ------------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        texts: Sequence[str],
        intents: Sequence[Sequence[str]],
        labels: Sequence[str],
        *,
        C: float = 10.0,
        ngram_range: tuple[int, int] = (1, 4),
        max_iter: int = 1000,
    ) -> CharNgramModel:
        """Fit on labelled texts (the settings of the ``tfidf_logreg`` baseline, see BENCHMARKS.md).

        Args:
            texts: Training texts.
            intents: The intents of each text (``[]`` for none).
            labels: The columns to learn, in order; intents outside them are ignored.
            C: Inverse L2 strength of each regression.
            ngram_range: Shortest and longest n-gram.
            max_iter: Solver iterations.
        """
        from tokenflow_rag._optional import require

        text = require("sklearn.feature_extraction.text")
        linear_model = require("sklearn.linear_model")
        if not texts or len(texts) != len(intents):
            raise ConfigError(f"need as many intent lists as texts (got {len(texts)} texts, {len(intents)} lists)")
        vectorizer = text.TfidfVectorizer(analyzer="char_wb", ngram_range=ngram_range, sublinear_tf=True)
        features = vectorizer.fit_transform(list(texts))
        vocabulary = [""] * len(vectorizer.vocabulary_)
        for gram, column in vectorizer.vocabulary_.items():
            vocabulary[column] = gram
        coef = np.zeros((len(labels), len(vocabulary)), dtype=np.float32)
        intercept = np.zeros(len(labels), dtype=np.float32)
        for j, name in enumerate(labels):
            y = np.fromiter((name in row for row in intents), dtype=np.int64, count=len(intents))
            if y.min() == y.max():
                intercept[j] = _CONSTANT_LOGIT if y[0] else -_CONSTANT_LOGIT
                continue
            regression = linear_model.LogisticRegression(C=C, class_weight="balanced", max_iter=max_iter)
            regression.fit(features, y)
            coef[j], intercept[j] = regression.coef_[0], regression.intercept_[0]
        return cls(labels, vocabulary, vectorizer.idf_, coef, intercept, ngram_range)

    # -- prediction ---------------------------------------------------------------------------
    def ngrams(self, text: str) -> list[str]:
        """The character n-grams of ``text``, exactly as scikit-learn's ``char_wb`` analyzer makes them."""
        low, high = self.ngram_range
        out: list[str] = []
        for word in _WHITESPACE.sub(" ", text.lower()).split():
            word = f" {word} "
            for n in range(low, high + 1):
                out.extend(word[i : i + n] for i in range(max(1, len(word) - n + 1)))
                if len(word) <= n:  # a short word counts once, as a whole; no longer n-grams of it
                    break
        return out

    def features(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Column indices and L2-normalised sublinear TF-IDF values of the known n-grams of ``text``."""
        counts = Counter(self.index[g] for g in self.ngrams(text) if g in self.index)
        if not counts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        columns = np.fromiter(counts, dtype=np.int64, count=len(counts))
        values = np.array([1.0 + math.log(counts[c]) for c in columns], dtype=np.float32) * self.idf[columns]
        return columns, values / np.linalg.norm(values)

    def raw_scores(self, texts: Sequence[str]) -> np.ndarray:
        """Probability of each intent (columns in :attr:`labels` order), shape ``(len(texts), labels)``."""
        logits = np.empty((len(texts), len(self.labels)), dtype=np.float64)
        for row, text in enumerate(texts):
            columns, values = self.features(text)
            logits[row] = self.coef[:, columns] @ values + self.intercept
        return 1.0 / (1.0 + np.exp(-logits))

    # -- persistence --------------------------------------------------------------------------
    def write_files(self, directory: Path) -> None:
        """Write ``ngrams.json`` and ``ngrams.safetensors`` into an existing directory."""
        from safetensors.numpy import save_file

        from tokenflow_rag._io import atomic_write_text

        vocabulary = sorted(self.index, key=self.index.__getitem__)
        info = {"labels": list(self.labels), "ngram_range": list(self.ngram_range), "vocabulary": vocabulary}
        atomic_write_text(directory / VOCABULARY_FILE, json.dumps(info, ensure_ascii=False))
        arrays: dict[str, np.ndarray] = {
            "idf": self.idf.astype(np.float16),
            "coef": self.coef.astype(np.float16),
            "intercept": self.intercept,
        }
        save_file(arrays, str(directory / WEIGHTS_FILE))

    @classmethod
    def from_directory(cls, directory: Path, labels: Sequence[str]) -> CharNgramModel | None:
        """The model saved in ``directory``; ``None`` when it has none (a model trained without one).

        Raises:
            ModelLoadError: The files are incomplete, corrupt, or for other intents than ``labels``.
        """
        vocabulary_path, weights_path = directory / VOCABULARY_FILE, directory / WEIGHTS_FILE
        if not vocabulary_path.exists() and not weights_path.exists():
            return None
        for path in (vocabulary_path, weights_path):
            if not path.exists():
                raise ModelLoadError(f"{path} is missing; the model directory is incomplete (re-run tokenflow train)")
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        try:
            info = json.loads(vocabulary_path.read_text(encoding="utf-8"))
            arrays = load_file(str(weights_path))
            model = cls(
                info["labels"],
                info["vocabulary"],
                arrays["idf"],
                arrays["coef"],
                arrays["intercept"],
                tuple(info["ngram_range"]),  # type: ignore[arg-type]
            )
        except (SafetensorError, OSError, ValueError, KeyError, TypeError, ConfigError) as exc:
            raise ModelLoadError(
                f"the n-gram model in {directory} is corrupt ({type(exc).__name__}: {exc}); re-run tokenflow train"
            ) from exc
        if model.labels != tuple(labels):
            raise ModelLoadError(
                f"{vocabulary_path} is for the intents {list(model.labels)}, the model for {list(labels)}; "
                "re-run tokenflow train"
            )
        return model

    def __repr__(self) -> str:
        return f"CharNgramModel({len(self.labels)} intents, {len(self.index)} n-grams, ngram_range={self.ngram_range})"
