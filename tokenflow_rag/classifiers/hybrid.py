"""Hybrid intent classifier: keyword rules for stability, the neural model for generalisation.

Per intent, the scores are fused linearly, ``fused = 0.3 * rules + 0.7 * model`` (weights in
:class:`HybridConfig`), where ``model`` is the fine-tuned network's score, averaged with the character
n-gram model's (:mod:`.ngrams`) when the model directory has one (``tokenflow train`` fits both). The
fused score is then calibrated on dev data (Platt scaling and an F1-best threshold per intent,
see :mod:`.calibration`). So ``IntentPrediction.scores`` are probabilities, ``confidence`` is the
weakest chosen intent's probability, and "none" is predicted only when no intent passes its threshold.

A hybrid never crashes a query because of its model: when the model directory is missing, corrupt or
for another taxonomy, it warns once and carries on with the rules alone. When inference fails, the texts
of that call are classified by the rules (one warning); after ``MAX_FAILURES_IN_A_ROW`` failures in a row
the model is switched off, while a one-off failure leaves it serving the next call.
"""

from __future__ import annotations

import json
import logging
import random
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tokenflow_rag.classifiers.base import register_classifier, select_intents
from tokenflow_rag.classifiers.calibration import MIN_POSITIVES, Calibration
from tokenflow_rag.classifiers.ngrams import CharNgramModel
from tokenflow_rag.classifiers.rules import RuleClassifier
from tokenflow_rag.errors import ConfigError, ModelLoadError, TokenFlowError
from tokenflow_rag.evaluation.datasets import LabeledText
from tokenflow_rag.taxonomy import Taxonomy, default_taxonomy, load_taxonomy
from tokenflow_rag.types import IntentPrediction

logger = logging.getLogger(__name__)

# What loading a model can raise besides our own errors: torch and safetensors report broken files
# as RuntimeError / ValueError, a missing torch as ImportError.
_LOAD_ERRORS = (TokenFlowError, OSError, RuntimeError, ValueError, ImportError)


@dataclass(frozen=True)
class HybridConfig:
    """Fusion weights of the hybrid classifier (they must sum to 1): rules, and the model (the network,
    or the mean of the network and the n-gram model).

    >>> HybridConfig().neural_weight, HybridConfig(rule_weight=0.5, neural_weight=0.5).rule_weight
    (0.7, 0.5)
    """

    rule_weight: float = 0.3
    neural_weight: float = 0.7

    def __post_init__(self) -> None:
        for name in ("rule_weight", "neural_weight"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name} must be a number in [0, 1], got {value!r}")
        if abs(self.rule_weight + self.neural_weight - 1.0) > 1e-6:
            raise ConfigError(
                f"rule_weight + neural_weight must be 1, got {self.rule_weight} + {self.neural_weight}; "
                f"e.g. rule_weight={self.rule_weight}, neural_weight={1 - self.rule_weight:.2f}"
            )

    @classmethod
    def from_rule_weight(cls, rule_weight: float) -> HybridConfig:
        """The weights for ``rule_weight``, the model getting the rest."""
        return cls(rule_weight, round(1.0 - rule_weight, 10))  # rounded: 1 - 0.7 is 0.30000000000000004


MAX_FAILURES_IN_A_ROW = 3
"""Consecutive failed model inferences after which a hybrid stops trying its model and serves by the rules."""

RULE_WEIGHT_GRID = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
"""Rule weights tried by :meth:`HybridClassifier.calibrate` when it chooses the fusion weights on dev."""


@register_classifier("hybrid")
class HybridClassifier:
    """Rules and a neural model fused per intent, with calibrated per-intent thresholds.

    Args:
        neural: A trained :class:`~tokenflow_rag.classifiers.neural.NeuralClassifier`; ``None`` runs the
            rules alone (what a failed load degrades to).
        rules: The rule classifier (default: one over the neural model's taxonomy).
        config: Fusion weights.
        calibration: Per-intent calibration of the fused score (default: identity, threshold 0.5).
        ngrams: A character n-gram model over the same intents, averaged with the network (optional).

    >>> clf = load_default_hybrid()  # doctest: +SKIP
    >>> p = clf.predict(["退款多久到账? I also never got the SMS"])[0]  # doctest: +SKIP
    >>> sorted(p.intents), sorted(p.components)  # doctest: +SKIP
    (['notification', 'refund'], ['neural', 'ngrams', 'rules'])
    """

    def __init__(
        self,
        neural: Any = None,
        rules: RuleClassifier | None = None,
        config: HybridConfig | None = None,
        calibration: Calibration | None = None,
        ngrams: CharNgramModel | None = None,
    ) -> None:
        if neural is None and rules is None:
            raise ConfigError("a hybrid classifier needs a neural model, rules, or both")
        self.neural = neural
        self.rules = rules or RuleClassifier(neural.taxonomy)
        if neural is not None and set(neural.taxonomy.names) != set(self.rules.taxonomy.names):
            raise ConfigError(
                f"rules and neural model disagree on the intents: {sorted(self.rules.taxonomy.names)} vs "
                f"{sorted(neural.taxonomy.names)}; build both from the same taxonomy"
            )
        if ngrams is not None and (neural is None or ngrams.labels != tuple(neural.labels)):
            raise ConfigError(
                f"the n-gram model's intents {list(ngrams.labels)} must be the neural model's, in its order"
            )
        self.ngrams = ngrams
        self.config = config or HybridConfig()
        self.calibration = calibration or Calibration()
        self.degraded_reason: str | None = None if neural is not None else "no neural model"
        self._failures_in_a_row = 0
        self._warned_inference = False

    @property
    def taxonomy(self) -> Taxonomy:
        return self.rules.taxonomy

    @property
    def is_degraded(self) -> bool:
        """True when predictions come from the rules alone."""
        return self.neural is None

    @property
    def component_weights(self) -> dict[str, float]:
        """The weight of each component's raw score in the fused score."""
        if self.neural is None:
            return {"rules": 1.0}
        return _part_weights(self.config.rule_weight, with_ngrams=self.ngrams is not None)

    # -- prediction ---------------------------------------------------------------------------
    def predict(self, texts: Sequence[str]) -> list[IntentPrediction]:
        """Classify each text; ``components`` holds the raw score of each part (rules, neural, ngrams)."""
        texts = list(texts)
        model = self.neural  # one reference throughout: another thread may degrade the hybrid meanwhile
        if model is None:
            return self.rules.predict(texts)
        try:
            neural, ngrams = self._model_parts(model, texts)
        except Exception as exc:  # noqa: BLE001 - any model failure must leave the query served by the rules
            self._inference_failed(f"neural inference failed ({type(exc).__name__}: {exc})")
            return self.rules.predict(texts)
        self._failures_in_a_row = 0
        rules, rule_rows = self._rule_parts(model.labels, texts)
        fused = self._fused(rules, neural, ngrams, self.config.rule_weight)
        model_rows = {"neural": neural} if ngrams is None else {"neural": neural, "ngrams": ngrams}
        names = self.taxonomy.names
        column = {name: model.labels.index(name) for name in names}
        thresholds = self.calibration.thresholds
        out = []
        for i, (rule_scores, rule_evidence) in enumerate(rule_rows):
            components = {"rules": {n: rule_scores[n] for n in names}}
            for part, rows in model_rows.items():
                components[part] = {n: float(rows[i, column[n]]) for n in names}
            scores = self.calibration.apply({n: float(fused[i, column[n]]) for n in names})
            evidence: dict[str, tuple[str, ...]] = {}
            for name in names:
                parts = rule_evidence.get(name, ()) + tuple(p for p in model_rows if components[p][name] >= 0.5)
                if parts:
                    evidence[name] = parts
            out.append(
                IntentPrediction(
                    scores=scores,
                    intents=select_intents(scores, thresholds),
                    evidence=evidence,
                    components=components,
                )
            )
        return out

    @staticmethod
    def _fused(rules: np.ndarray, neural: np.ndarray, ngrams: np.ndarray | None, rule_weight: float) -> np.ndarray:
        """The uncalibrated fused scores: rules, and the network averaged with the n-gram model if any."""
        weights = _part_weights(rule_weight, with_ngrams=ngrams is not None)
        fused = weights["rules"] * rules + weights["neural"] * neural
        return fused if ngrams is None else fused + weights["ngrams"] * ngrams

    def _model_parts(self, model: Any, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray | None]:
        """Raw network and n-gram scores (``None`` without an n-gram model), columns in label order."""
        neural = model.raw_scores(texts).astype(np.float64)
        return neural, (self.ngrams.raw_scores(texts) if self.ngrams is not None else None)

    def _rule_parts(
        self, labels: Sequence[str], texts: Sequence[str]
    ) -> tuple[np.ndarray, list[tuple[dict[str, float], Any]]]:
        """Rule scores (columns in ``labels`` order) and each text's ``(scores, evidence)`` from the rules."""
        rows = [self.rules.scores(t) for t in texts]
        matrix = np.array([[row[n] for n in labels] for row, _ in rows], dtype=np.float64)
        return matrix.reshape(len(texts), len(labels)), rows

    def _degrade(self, reason: str) -> None:
        warnings.warn(f"{reason}; classifying with keyword rules only from now on", stacklevel=3)
        logger.warning("hybrid classifier degraded to rules: %s", reason)
        self.neural = None
        self.degraded_reason = reason

    def _inference_failed(self, reason: str) -> None:
        """Serve these texts by the rules; a model that keeps failing is switched off, a one-off blip is not."""
        self._failures_in_a_row += 1
        if not self._warned_inference:
            self._warned_inference = True
            warnings.warn(f"{reason}; classifying these texts with keyword rules only", stacklevel=4)
        if self._failures_in_a_row >= MAX_FAILURES_IN_A_ROW and self.neural is not None:
            self.neural = None
            self.degraded_reason = reason
        logger.warning(
            "%s; served by the rules (%d failure(s) in a row%s)",
            reason,
            self._failures_in_a_row,
            ", model switched off" if self.neural is None else "",
        )

    # -- calibration --------------------------------------------------------------------------
    def calibrate(self, dev: Sequence[LabeledText], *, choose_weights: bool = False) -> dict[str, Any]:
        """Fit the neural and hybrid calibrations on labelled dev data; return dev metrics.

        Args:
            dev: Labelled texts the model was not trained on.
            choose_weights: Also choose the fusion weights: each rule weight of :data:`RULE_WEIGHT_GRID`
                is calibrated in turn and the one with the best dev micro-F1 is kept (ties: the one
                closest to the configured weight). How much to trust the rules depends on how far new
                text is from the training text, which only dev data written apart from the training
                data can tell; with a dev split of the training data the network looks better than it is.

        The metrics are measured on the same dev data the thresholds were chosen on, so they are
        slightly optimistic; report a separate test set for anything that matters.
        """
        return self._fit(*self._dev_scores(dev), choose_weights=choose_weights)

    def _fit(
        self,
        rules: np.ndarray,
        neural: np.ndarray,
        ngrams: np.ndarray | None,
        gold: np.ndarray,
        *,
        choose_weights: bool,
    ) -> dict[str, Any]:
        """:meth:`calibrate` on dev scores already computed (one neural pass serves both calibrations)."""
        labels = self.neural.labels
        self.neural.calibration = Calibration.fit_matrix(neural, gold, labels)
        configured = self.config.rule_weight
        candidates = sorted({configured, *RULE_WEIGHT_GRID}) if choose_weights else [configured]
        by_weight: dict[float, tuple[dict[str, float], Calibration]] = {}
        for weight in candidates:
            fused = self._fused(rules, neural, ngrams, weight)
            calibration = Calibration.fit_matrix(fused, gold, labels)
            by_weight[weight] = (_metrics(_thresholded(fused, calibration, labels), gold), calibration)
        best = max(by_weight, key=lambda w: (by_weight[w][0]["micro_f1"], -abs(w - configured)))
        self.config = HybridConfig.from_rule_weight(best)
        self.calibration = by_weight[best][1]
        report: dict[str, Any] = {
            "rules": _metrics(rules >= self.rules.threshold, gold),
            "neural_at_0.5": _metrics(neural >= 0.5, gold),
            "neural": _metrics(_thresholded(neural, self.neural.calibration, labels), gold),
            "hybrid": by_weight[best][0],
        }
        if ngrams is not None:
            report["ngrams_at_0.5"] = _metrics(ngrams >= 0.5, gold)
        if choose_weights:
            report["rule_weight"] = {
                "chosen": best,
                "dev_micro_f1": {str(w): m["micro_f1"] for w, (m, _) in by_weight.items()},
            }
        return report

    def recalibrate(
        self, dev: Sequence[LabeledText], *, rule_weight: float | None = None, choose_weights: bool = False
    ) -> dict[str, Any]:
        """Calibrate a trained hybrid again on new labelled data, such as a sample of your own traffic.

        How far to trust the rules and where each threshold belongs depend on the text the classifier
        will see; a few hundred labelled rows of it move both there without retraining (seconds, not
        minutes). Unlike :meth:`calibrate`, an intent with fewer than
        :data:`~tokenflow_rag.classifiers.calibration.MIN_POSITIVES` positive (or negative) rows in
        ``dev`` keeps its previous calibration instead of falling back to the identity, as long as the
        fusion weights stay the same (with new weights the old numbers no longer apply).

        Args:
            dev: Labelled texts the model was not trained on.
            rule_weight: New weight of the rules in the fused score (default: keep the current one).
            choose_weights: Choose the weight on ``dev`` as :meth:`calibrate` does (``rule_weight``, when
                given, breaks ties).

        Returns:
            :meth:`calibrate`'s report plus ``"before"`` (the hybrid's dev metrics with the old
            calibration), ``"kept_previous"`` and ``"uncalibrated"`` (intents too rare in ``dev``).
        """
        return self._recalibrate(*self._dev_scores(dev), rule_weight=rule_weight, choose_weights=choose_weights)

    def _recalibrate(
        self,
        rules: np.ndarray,
        neural: np.ndarray,
        ngrams: np.ndarray | None,
        gold: np.ndarray,
        *,
        rule_weight: float | None = None,
        choose_weights: bool = False,
    ) -> dict[str, Any]:
        """:meth:`recalibrate` on dev scores already computed."""
        labels = self.neural.labels
        old_weight, old_hybrid, old_neural = self.config.rule_weight, self.calibration, self.neural.calibration
        before = _metrics(_thresholded(self._fused(rules, neural, ngrams, old_weight), old_hybrid, labels), gold)
        if rule_weight is not None:
            self.config = HybridConfig.from_rule_weight(rule_weight)
        report = self._fit(rules, neural, ngrams, gold, choose_weights=choose_weights)
        positives = gold.sum(axis=0)
        sparse = [n for j, n in enumerate(labels) if min(positives[j], len(gold) - positives[j]) < MIN_POSITIVES]
        same_weights = self.config.rule_weight == old_weight
        kept = [n for n in sparse if same_weights and n in old_hybrid.intents]
        self.neural.calibration = _with_previous(self.neural.calibration, old_neural, sparse)
        self.calibration = _with_previous(self.calibration, old_hybrid, kept)
        report.update(before=before, kept_previous=kept, uncalibrated=[n for n in sparse if n not in kept])
        return report

    def crossfit_predict(
        self, dev: Sequence[LabeledText], folds: int, *, seed: int = 13
    ) -> tuple[list[tuple[str, ...]], list[float]]:
        """What :meth:`recalibrate` on labelled rows of some text would buy, without scoring a row with a
        calibration that saw it: the rows are cut into ``folds`` seeded folds, and each fold is predicted
        after recalibrating (thresholds and rule weight, ``choose_weights=True``) on the other folds. The
        model's own calibration is restored afterwards; the model scores each row once.

        Returns:
            The intents of each row (best first, as :meth:`predict` gives them) and the rule weight
            chosen for each fold.
        """
        if not isinstance(folds, int) or isinstance(folds, bool) or not 2 <= folds <= len(dev):
            raise ConfigError(f"folds must be an integer from 2 to the number of rows ({len(dev)}), got {folds!r}")
        rules, neural, ngrams, gold = self._dev_scores(dev)
        order = list(range(len(dev)))
        random.Random(seed).shuffle(order)
        parts = [order[i::folds] for i in range(folds)]

        def rows(matrix: np.ndarray | None, index: list[int]) -> np.ndarray | None:
            return None if matrix is None else matrix[index]

        saved = (self.config, self.calibration, self.neural.calibration)
        intents: list[tuple[str, ...]] = [()] * len(dev)
        weights: list[float] = []
        try:
            for i, held in enumerate(parts):
                rest = [j for f, part in enumerate(parts) if f != i for j in part]
                self._recalibrate(rules[rest], neural[rest], rows(ngrams, rest), gold[rest], choose_weights=True)
                weights.append(self.config.rule_weight)
                fused = self._fused(rules[held], neural[held], rows(ngrams, held), self.config.rule_weight)
                for j, row in zip(held, fused):
                    scores = self.calibration.apply(dict(zip(self.neural.labels, row.tolist())))
                    intents[j] = select_intents(scores, self.calibration.thresholds)
        finally:
            self.config, self.calibration, self.neural.calibration = saved
        return intents, weights

    def _dev_scores(self, dev: Sequence[LabeledText]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
        """Rule, raw neural and n-gram scores (``None`` without an n-gram model) and the 0/1 gold matrix
        of labelled texts, columns in label order."""
        if self.neural is None:
            raise ConfigError("cannot calibrate a hybrid without a neural model")
        if not dev:
            raise ConfigError("calibration needs labelled dev data; got no examples")
        labels = self.neural.labels
        gold = np.zeros((len(dev), len(labels)), dtype=np.int64)
        for row, ex in enumerate(dev):
            for name in ex.intents:
                gold[row, labels.index(name)] = 1
        texts = [ex.text for ex in dev]
        neural, ngrams = self._model_parts(self.neural, texts)
        return self._rule_parts(labels, texts)[0], neural, ngrams, gold

    # -- persistence --------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path) -> None:
        """Write the neural model, the n-gram model and both calibrations to ``directory`` (atomically)."""
        from tokenflow_rag._io import atomic_directory
        from tokenflow_rag.classifiers.neural import check_output_dir

        if self.neural is None:
            raise ConfigError("this hybrid has no neural model to save (it runs on rules only)")
        target = check_output_dir(Path(directory))
        calibration = {
            "neural": self.neural.calibration.to_dict(),
            "hybrid": {
                "rule_weight": self.config.rule_weight,
                "neural_weight": self.config.neural_weight,
                "intents": self.calibration.to_dict(),
            },
        }
        with atomic_directory(target) as tmp:
            self.neural.write_files(tmp, calibration)
            if self.ngrams is not None:
                self.ngrams.write_files(tmp)

    @classmethod
    def from_pretrained(
        cls,
        directory: str | Path,
        taxonomy: Taxonomy | str | None = None,
        *,
        strict: bool = False,
        device: str | None = "auto",
        quantize: bool = False,
    ) -> HybridClassifier:
        """Load a trained model directory; without ``strict``, a broken one degrades to rules with a warning.

        Args:
            directory: Written by :meth:`save_pretrained` or ``tokenflow train``.
            taxonomy: Rules and intent names to use; must define the model's intents (default: the
                taxonomy saved with the model).
            strict: Raise :class:`~tokenflow_rag.errors.ModelLoadError` instead of degrading.
            device: ``"auto"`` or a torch device string.
            quantize: Serve the network with int8 linear layers on CPU (faster per query, scores move;
                see :class:`~tokenflow_rag.classifiers.neural.NeuralClassifier`).
        """
        from tokenflow_rag.classifiers.neural import NeuralClassifier

        try:
            neural = NeuralClassifier.from_pretrained(directory, taxonomy, device=device, quantize=quantize)
            ngrams = CharNgramModel.from_directory(Path(directory), neural.labels)
            config, calibration = _read_hybrid_section(Path(directory))
        except _LOAD_ERRORS as exc:
            if strict:
                if isinstance(exc, ModelLoadError):
                    raise
                raise ModelLoadError(f"cannot load the model in {directory}: {exc}") from exc
            tax = load_taxonomy(taxonomy) if taxonomy is not None else _saved_taxonomy(Path(directory))
            hybrid = cls(None, RuleClassifier(tax))
            hybrid._degrade(f"cannot load the neural model ({exc})")
            return hybrid
        return cls(neural, RuleClassifier(neural.taxonomy), config, calibration, ngrams)


def _part_weights(rule_weight: float, *, with_ngrams: bool) -> dict[str, float]:
    """The fusion rule: the rules get ``rule_weight``, the model the rest, shared evenly by the network and
    the n-gram model when there is one."""
    model = 1.0 - rule_weight
    if not with_ngrams:
        return {"rules": rule_weight, "neural": model}
    return {"rules": rule_weight, "neural": model / 2, "ngrams": model / 2}


def _read_hybrid_section(directory: Path) -> tuple[HybridConfig, Calibration]:
    from tokenflow_rag.classifiers.neural import CALIBRATION_FILE

    path = directory / CALIBRATION_FILE
    try:
        section = json.loads(path.read_text(encoding="utf-8")).get("hybrid")
    except FileNotFoundError:
        return HybridConfig(), Calibration()
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as exc:
        raise ModelLoadError(f"{path} is corrupt ({exc}); re-run tokenflow train") from exc
    if section is None:
        return HybridConfig(), Calibration()
    try:
        config = HybridConfig(float(section["rule_weight"]), float(section["neural_weight"]))
        return config, Calibration.from_dict(section["intents"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"{path}: section 'hybrid' is corrupt ({exc}); re-run tokenflow train") from exc


def _saved_taxonomy(directory: Path) -> Taxonomy:
    """The taxonomy stored with a model, if that much of it is readable; else the default one."""
    try:
        return Taxonomy.from_dict(
            json.loads((directory / "tokenflow_model.json").read_text(encoding="utf-8"))["taxonomy"]
        )
    except Exception:  # noqa: BLE001 - any damage here means: fall back to the default taxonomy
        return default_taxonomy()


def _with_previous(new: Calibration, old: Calibration, names: Sequence[str]) -> Calibration:
    """``new`` with the intents in ``names`` taken from ``old`` (where it has them)."""
    return Calibration({**new.intents, **{n: old.intents[n] for n in names if n in old.intents}})


def _thresholded(raw: np.ndarray, calibration: Calibration, labels: Sequence[str]) -> np.ndarray:
    out = np.zeros(raw.shape, dtype=bool)
    for j, name in enumerate(labels):
        cal = calibration.intents.get(name)
        for i in range(raw.shape[0]):
            out[i, j] = (cal.apply(raw[i, j]) if cal else raw[i, j]) >= (cal.threshold if cal else 0.5)
    return out


def _metrics(pred: np.ndarray, gold: np.ndarray) -> dict[str, float]:
    gold = gold > 0
    tp = float((pred & gold).sum())
    denom = float(pred.sum() + gold.sum())
    return {
        "micro_f1": round(2 * tp / denom if denom else 1.0, 4),
        "exact_match": round(float((pred == gold).all(axis=1).mean()), 4),
    }


def load_classifier(directory: str | Path, taxonomy: Taxonomy | str | None = None) -> HybridClassifier:
    """The hybrid classifier of a trained model directory (rules only, with a warning, if it is broken)."""
    return HybridClassifier.from_pretrained(directory, taxonomy)


def load_default_hybrid(
    taxonomy: Taxonomy | str | None = None, *, quantize: bool = False
) -> HybridClassifier | RuleClassifier:
    """The best classifier available offline for ``taxonomy`` (default: the business taxonomy).

    The hybrid with the model shipped in ``tokenflow_rag/data/models/default`` when the taxonomy has the
    default intents; otherwise, or when torch is missing or the model cannot be loaded (with one
    warning), the :class:`RuleClassifier`. ``quantize``: serve the network with int8 linear layers (see
    :meth:`HybridClassifier.from_pretrained`).
    """
    from tokenflow_rag.classifiers.neural import default_model_dir

    tax = default_taxonomy() if taxonomy is None else load_taxonomy(taxonomy)
    if set(tax.names) != set(default_taxonomy().names):
        logger.info("no shipped model for taxonomy %r; using keyword rules", tax.name)
        return RuleClassifier(tax)
    try:
        return HybridClassifier.from_pretrained(default_model_dir(), tax, strict=True, quantize=quantize)
    except _LOAD_ERRORS as exc:
        warnings.warn(
            f"the shipped intent model cannot be used ({exc}); classifying with keyword rules only", stacklevel=2
        )
        return RuleClassifier(tax)
