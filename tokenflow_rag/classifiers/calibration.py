"""Per-intent calibration: turn raw scores into probabilities and pick each intent's threshold.

For every intent, on held-out dev data:

1. **Platt scaling**: ``p = sigmoid(a * logit(score) + b)``, fitted by regularised logistic regression
   with Platt's smoothed targets, so a score of 0.8 means "right about 80% of the time on dev" and the
   retriever's confidence check has a meaning. It is monotone, so it never changes the ranking.
2. **Threshold**: the value in ``[low, high]`` that maximises the intent's F1 on dev (ties go to the one
   closest to 0.5), instead of one global guess for every intent.

An intent with too few dev positives keeps the identity mapping and a 0.5 threshold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from tokenflow_rag.errors import ConfigError

_EPS = 1e-6
MIN_POSITIVES = 3
"""Fewer dev positives than this: the intent is left uncalibrated (identity, threshold 0.5)."""


@dataclass(frozen=True)
class IntentCalibration:
    """Platt parameters and decision threshold of one intent.

    >>> cal = IntentCalibration(a=1.0, b=0.0, threshold=0.4)
    >>> round(cal.apply(0.7), 3), cal.apply(0.7) >= cal.threshold
    (0.7, True)
    """

    a: float = 1.0
    b: float = 0.0
    threshold: float = 0.5

    def __post_init__(self) -> None:
        if not all(math.isfinite(v) for v in (self.a, self.b, self.threshold)):
            raise ConfigError(
                f"calibration values must be finite, got a={self.a}, b={self.b}, threshold={self.threshold}"
            )
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"threshold must be in (0, 1), got {self.threshold}")

    def apply(self, score: float) -> float:
        """The calibrated probability of a raw score in [0, 1]."""
        s = min(max(score, _EPS), 1.0 - _EPS)
        z = self.a * math.log(s / (1.0 - s)) + self.b
        return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


@dataclass(frozen=True)
class Calibration:
    """Calibration of every intent of one scorer (the neural model alone, or the hybrid).

    >>> cal = Calibration.fit({"pay": [0.9, 0.8, 0.7, 0.2, 0.1, 0.3]}, {"pay": [1, 1, 1, 0, 0, 0]})
    >>> probs = cal.apply({"pay": 0.85})
    >>> probs["pay"] > cal.intents["pay"].threshold
    True
    """

    intents: Mapping[str, IntentCalibration] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "intents", MappingProxyType(dict(self.intents)))

    def apply(self, scores: Mapping[str, float]) -> dict[str, float]:
        """Calibrated probabilities; intents without calibration pass through unchanged."""
        return {k: self.intents[k].apply(v) if k in self.intents else float(v) for k, v in scores.items()}

    @property
    def thresholds(self) -> dict[str, float]:
        """Decision threshold per intent."""
        return {k: c.threshold for k, c in self.intents.items()}

    @classmethod
    def fit(
        cls,
        scores: Mapping[str, Sequence[float]],
        gold: Mapping[str, Sequence[int]],
        *,
        low: float = 0.2,
        high: float = 0.8,
        regularization: float = 1e-2,
    ) -> Calibration:
        """Fit Platt scaling and the F1-best threshold per intent on dev data.

        Args:
            scores: Raw dev scores per intent, each a sequence aligned over the dev examples.
            gold: 1 where the intent is in the example's gold labels, else 0, aligned the same way.
            low: Lowest threshold allowed (keeps one noisy dev example from admitting everything).
            high: Highest threshold allowed.
            regularization: L2 penalty on ``(a - 1, b)``: pulls sparse intents toward the identity.
        """
        if not 0.0 < low < high < 1.0:
            raise ConfigError(f"need 0 < low < high < 1, got low={low}, high={high}")
        out = {}
        for name, raw in scores.items():
            x = np.asarray(raw, dtype=np.float64)
            y = np.asarray(gold[name], dtype=np.float64)
            if x.shape != y.shape:
                raise ConfigError(f"intent {name!r}: {x.size} scores but {y.size} gold labels")
            if y.sum() < MIN_POSITIVES or (1 - y).sum() < MIN_POSITIVES:
                out[name] = IntentCalibration()
                continue
            a, b = _platt(x, y, regularization)
            probs = np.array([IntentCalibration(a, b, 0.5).apply(v) for v in x])
            out[name] = IntentCalibration(a, b, best_threshold(probs, y, low=low, high=high))
        return cls(out)

    @classmethod
    def fit_matrix(cls, scores: np.ndarray, gold: np.ndarray, labels: Sequence[str]) -> Calibration:
        """:meth:`fit` from an ``(examples, intents)`` score matrix and a 0/1 matrix, columns in ``labels`` order."""
        return cls.fit(
            {name: scores[:, i].tolist() for i, name in enumerate(labels)},
            {name: gold[:, i].astype(int).tolist() for i, name in enumerate(labels)},
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {k: {"a": c.a, "b": c.b, "threshold": c.threshold} for k, c in self.intents.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        """Inverse of :meth:`to_dict`."""
        return cls({k: IntentCalibration(float(v["a"]), float(v["b"]), float(v["threshold"])) for k, v in data.items()})


def _platt(x: np.ndarray, y: np.ndarray, regularization: float) -> tuple[float, float]:
    """Newton's method with a backtracking line search for ``sigmoid(a * logit(x) + b)``.

    Plain Newton steps overshoot on saturated scores (logits near +-14, what a confident network
    gives) and can land on absurd slopes; halving the step until the penalised loss drops keeps every
    iterate better than the last.
    """
    feature = np.log(np.clip(x, _EPS, 1 - _EPS) / (1 - np.clip(x, _EPS, 1 - _EPS)))
    pos, neg = y.sum(), (1 - y).sum()
    # Platt (1999): targets (N+ + 1)/(N+ + 2) and 1/(N- + 2) instead of 1 and 0, against overfitting.
    target = np.where(y > 0, (pos + 1) / (pos + 2), 1 / (neg + 2))
    design = np.stack([feature, np.ones_like(feature)], axis=1)
    prior = np.array([1.0, 0.0])

    def loss(theta: np.ndarray) -> float:
        z = design @ theta
        return float(np.mean(np.logaddexp(0.0, z) - target * z) + 0.5 * regularization * np.sum((theta - prior) ** 2))

    theta = prior.copy()
    current = loss(theta)
    for _ in range(100):
        p = 1 / (1 + np.exp(-np.clip(design @ theta, -30, 30)))
        grad = design.T @ (p - target) / len(x) + regularization * (theta - prior)
        hess = (design * (p * (1 - p))[:, None]).T @ design / len(x) + regularization * np.eye(2)
        step = np.linalg.solve(hess, grad)
        size = 1.0
        while size > 1e-10:
            candidate = theta - size * step
            value = loss(candidate)
            if value <= current - 1e-4 * size * float(grad @ step):
                break
            size *= 0.5
        else:
            break  # no step lowers the loss: at the optimum up to rounding
        theta, current = candidate, value
        if np.abs(size * step).max() < 1e-9:
            break
    return float(theta[0]), float(theta[1])


def best_threshold(probs: np.ndarray, gold: np.ndarray, *, low: float = 0.2, high: float = 0.8) -> float:
    """The threshold on a 0.05 grid in ``[low, high]`` with the best F1 (ties: closest to 0.5)."""
    grid = np.round(np.arange(low, high + 1e-9, 0.05), 4)
    best, best_key = 0.5, (-1.0, 0.0)
    for t in grid:
        pred = probs >= t
        tp = float((pred & (gold > 0)).sum())
        denom = float(pred.sum() + (gold > 0).sum())
        f1 = 2 * tp / denom if denom else 0.0
        key = (round(f1, 9), -abs(t - 0.5))
        if key > best_key:
            best, best_key = float(t), key
    return best
