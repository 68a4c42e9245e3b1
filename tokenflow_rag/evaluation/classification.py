"""The intent-classification benchmark: train (or load) a classifier, score it and two baselines on a test set.

One run (:func:`run_classify`) reads a test file of any registered format, gets tokenflow's classifier
in one of three ways, and scores every method on the same examples with
:func:`~tokenflow_rag.evaluation.metrics.multilabel_report`:

* ``train`` given: the taxonomy comes from the training labels, with keywords mined from the training
  texts (:mod:`~tokenflow_rag.classifiers.keyword_mining`), and the neural and hybrid classifiers are
  trained on the same rows. SNIPS-format training files are single-intent, so Mix-style multi-intent
  rows are built from them first (:func:`~tokenflow_rag.evaluation.datasets.mix_from_single`), as the
  MixATIS/MixSNIPS train files are not available. The hybrid's dev rows (early stopping, thresholds,
  rule weight) are split off by text before mixing and before mining keywords, so nothing it learns
  from holds a dev utterance.
* ``model`` given: a saved classifier is scored as it is.
* neither: the shipped default classifier, scored at the test file's label set (children mapped to
  the parent the test file uses, e.g. ``refund`` -> ``payment``).

Beside tokenflow's ``rules``, ``neural`` and ``hybrid``, two baselines a user might pick instead are
trained on the same rows: TF-IDF character n-grams + logistic regression, and frozen sentence
embeddings + logistic regression (SetFit-style head). Each method reports its training time and the
median latency of one single-text query after warm-up.

:func:`cross_validate` runs the same over k groups of fold files (NLU++) and pools the predictions.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tokenflow_rag.errors import ConfigError, DataFormatError
from tokenflow_rag.evaluation.datasets import LABELED_FORMATS, LabeledText, load_labeled, mix_from_single
from tokenflow_rag.evaluation.metrics import multilabel_report

__all__ = ["BASELINES", "MODES", "ClassifyConfig", "cross_validate", "format_classify", "run_classify"]

logger = logging.getLogger(__name__)

MODES: tuple[str, ...] = ("rules", "neural", "hybrid")
"""tokenflow's own classifiers, cheapest first."""

RECALIBRATED = "hybrid_recalibrated"
"""The mode ``calibrate_folds`` adds: the hybrid recalibrated on the other folds of the test file."""

BASELINES: tuple[str, ...] = ("tfidf_logreg", "embedding_logreg")
"""What a user might pick instead, trained on the same rows."""

DEFAULT_MIX_SIZE = 20_000
_CJK = re.compile(r"[\u3400-\u9fff]")
_PREDICT_BATCH = 256
_MIX_RATIO = 3
_WARMUP_QUERIES = 3

Labels = tuple[str, ...]


@dataclass(frozen=True)
class ClassifyConfig:
    """One classification benchmark run.

    Args:
        fmt: A key of :data:`~tokenflow_rag.evaluation.datasets.LABELED_FORMATS` (``jsonl``, ``snips`` ...).
        test: Test files (for ``clinc``: their ``test``/``val`` and ``oos_*`` lists).
        train: Training files (for ``clinc``: their ``train`` and ``oos_train`` lists); empty = no training.
            For :func:`cross_validate`, the fold files.
        model: A saved classifier directory to score instead of training one.
        domains: A ``{domain: [intent, ...]}`` JSON file; labels are replaced by their domain.
        mode: The tokenflow mode whose metrics go to the top level of the result.
        holdout: Carve the test set out of ``train`` instead (share of examples, by dialogue for CrossWOZ).
        mix: Build Mix-style multi-intent training rows; ``None`` = only for the ``snips`` format.
        mix_size: Most Mix-style rows to build (at most 3x the source rows, the published ratio).
        max_train: Cap on training rows (a seeded subsample); every method trains on the same rows.
        epochs: Training epochs of the neural model (``None``: the trainer's default).
        batch_size: Training batch size (``None``: the trainer's default).
        learning_rate: Peak learning rate of the LoRA adapters and head (``None``: the trainer's default).
        backbone: Backbone of the neural model (``None``: the packaged all-MiniLM-L6-v2).
        seed: Seed of subsampling, mixing and training.
        baselines: Also train and score the two baselines.
        embedder: Embedder of the embedding baseline (``None``: ``minilm`` for English,
            ``use-multilingual`` when the training texts are mostly Chinese).
        timing_queries: Test texts timed one by one per method.
        threads: torch CPU threads (``None``: torch's default). On a machine other processes share,
            1 thread is often several times faster than 2: threads that wait for a core spin.
        progress: Progress bars on stderr.
        name: Dataset name for the report (default: the first test file's name).

    >>> ClassifyConfig("snips", test=("dev.txt",), train=("train.txt",)).wants_mix
    True
    """

    fmt: str
    test: tuple[str, ...] = ()
    train: tuple[str, ...] = ()
    model: str | None = None
    domains: str | None = None
    mode: str = "hybrid"
    holdout: float | None = None
    mix: bool | None = None
    mix_size: int = DEFAULT_MIX_SIZE
    max_train: int | None = None
    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    backbone: str | None = None
    seed: int = 13
    baselines: bool = True
    embedder: str | None = None
    timing_queries: int = 50
    threads: int | None = None
    progress: bool = False
    name: str | None = None
    calibrate_folds: int | None = None

    def __post_init__(self) -> None:
        if self.fmt not in LABELED_FORMATS:
            raise ConfigError(f"unknown format {self.fmt!r}; known formats: {', '.join(sorted(LABELED_FORMATS))}")
        for key in ("test", "train"):
            value = getattr(self, key)
            if isinstance(value, str | Path):
                raise ConfigError(
                    f"{key} must be a list of paths, got the single path {str(value)!r}; wrap it in a list"
                )
            object.__setattr__(self, key, tuple(str(p) for p in value))
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.holdout is not None:
            if not 0.0 < self.holdout < 1.0:
                raise ConfigError(f"holdout must be in (0, 1), e.g. 0.2; got {self.holdout!r}")
            if not self.train:
                raise ConfigError("holdout carves the test set out of the training files; pass train files")
            if self.test:
                raise ConfigError("pass either test files or holdout, not both")
        if self.learning_rate is not None and not 0.0 < self.learning_rate < 1.0:
            raise ConfigError(f"learning_rate must be in (0, 1), e.g. 2e-3; got {self.learning_rate!r}")
        if self.model is not None and self.holdout is not None:
            raise ConfigError("holdout needs training; it cannot be combined with a saved model")
        for key in ("mix_size", "timing_queries"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < (1 if key == "mix_size" else 0):
                raise ConfigError(
                    f"{key} must be a {'positive' if key == 'mix_size' else 'non-negative'} integer, got {value!r}"
                )
        if self.calibrate_folds is not None:
            if self.source == "train":
                raise ConfigError(
                    "calibrate_folds recalibrates a trained model (--model, or the shipped one); it cannot be "
                    "combined with training files"
                )
            if not isinstance(self.calibrate_folds, int) or isinstance(self.calibrate_folds, bool):
                raise ConfigError(f"calibrate_folds must be an integer >= 2, got {self.calibrate_folds!r}")
            if self.calibrate_folds < 2:
                raise ConfigError(f"calibrate_folds must be >= 2 (e.g. 5), got {self.calibrate_folds}")
        for key in ("max_train", "epochs", "threads", "batch_size"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ConfigError(f"{key} must be a positive integer or None, got {value!r}")

    @property
    def wants_mix(self) -> bool:
        """Whether Mix-style rows are built from the training files."""
        return self.fmt == "snips" if self.mix is None else self.mix

    @property
    def source(self) -> str:
        """Where tokenflow's classifier comes from: ``train``, ``model`` or ``default``."""
        return "model" if self.model else "train" if self.train else "default"


@dataclass
class _Method:
    """One scored method: how to predict (raw labels out) and what training it cost."""

    predict: Callable[[list[str]], list[Labels]]
    predict_one: Callable[[str], object]
    seconds_train: float | None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Run:
    result: dict[str, Any]
    gold: list[Labels]
    predictions: dict[str, list[Labels]]


# -- public entry points ------------------------------------------------------------------------


def run_classify(config: ClassifyConfig) -> dict[str, Any]:
    """Score tokenflow's modes and the baselines on one test set; see the module docstring.

    Returns:
        ``{"dataset", "format", "setup": {...}, "modes": {method: metrics}, ...}`` plus the metrics of
        ``config.mode`` at the top level (``n``, ``micro_f1``, ``macro_f1``, ``exact_match``, ``accuracy``,
        ``per_intent``, ``none_precision``, ``none_recall``, ``seconds_train``, ``ms_per_query_p50`` ...).
        A method that could not run has ``{"skipped": reason}`` instead of metrics.

    Raises:
        DataFormatError: A file is malformed (the message names it and the format it was read as).
        ConfigError: Inconsistent options, or a test set the classifier shares no label with.
        ModelLoadError: ``config.model`` is not a loadable classifier directory.
    """
    return _run(config).result


def cross_validate(config: ClassifyConfig, k: int = 5) -> dict[str, Any]:
    """k-fold cross-validation over fold files: ``config.train`` lists the folds, grouped round-robin.

    Each group is the test set once while the other groups train; every example is predicted exactly
    once, and the metrics are computed on the pooled predictions. ``folds`` holds each split's
    micro-F1 and sizes, ``micro_f1_mean``/``micro_f1_std`` their spread per method.

    Raises:
        ConfigError: Fewer fold files than ``k``, test files or a model given, or ``k`` < 2.
    """
    if not isinstance(k, int) or k < 2:
        raise ConfigError(f"k must be an integer >= 2, got {k!r}")
    if config.model or config.holdout or config.test:
        raise ConfigError("cross-validation splits the train folds itself; do not pass test files, a model or holdout")
    folds = list(config.train)
    if len(folds) < k:
        raise ConfigError(f"{k}-fold cross-validation needs at least {k} fold files, got {len(folds)}")
    groups = [folds[g::k] for g in range(k)]
    gold: list[Labels] = []
    pooled: dict[str, list[Labels]] = {}
    splits = []
    runs: list[dict[str, Any]] = []
    for g, test_files in enumerate(groups):
        train_files = [f for h, group in enumerate(groups) if h != g for f in group]
        logger.info("fold group %d/%d: test %s", g + 1, k, test_files)
        run = _run(replace(config, train=tuple(train_files), test=tuple(test_files), holdout=None))
        gold.extend(run.gold)
        for method, preds in run.predictions.items():
            pooled.setdefault(method, []).extend(preds)
        runs.append(run.result)
        splits.append({"test": test_files, "n_train": run.result["n_train"], "n_test": run.result["n_test"]})
    first = runs[0]
    modes: dict[str, Any] = {}
    for method in first["modes"]:
        per_run = [r["modes"][method] for r in runs]
        if any("skipped" in m for m in per_run):
            modes[method] = next(m for m in per_run if "skipped" in m)
            continue
        metrics = _metrics(gold, pooled[method])
        fold_f1 = [m["micro_f1"] for m in per_run]
        metrics.update(
            micro_f1_folds=fold_f1,
            micro_f1_mean=statistics.fmean(fold_f1),
            micro_f1_std=statistics.pstdev(fold_f1),
            seconds_train=_sum_or_none([m["seconds_train"] for m in per_run]),
            ms_per_query_p50=_median_or_none([m["ms_per_query_p50"] for m in per_run]),
            ms_per_query_p95=_median_or_none([m["ms_per_query_p95"] for m in per_run]),
            n_train=round(statistics.fmean(m["n_train"] for m in per_run)),
        )
        modes[method] = metrics
    result = {
        "dataset": config.name or Path(folds[0]).parent.name,
        "format": config.fmt,
        "cv_folds": k,
        "splits": splits,
        "n_train": round(statistics.fmean(s["n_train"] for s in splits)),
        "n_test": len(gold),
        "setup": {**first["setup"], "train": folds, "test": "each fold group in turn"},
        "modes": modes,
    }
    return _with_top_level(result, config.mode)


# -- one run ------------------------------------------------------------------------------------


def _run(config: ClassifyConfig) -> _Run:
    if not config.test and config.holdout is None:
        raise ConfigError("no test files; pass test files (or holdout with train files)")
    if config.threads:
        _set_threads(config.threads)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tokenflow-holdout-") as tmp:
        train_source, test = _load_splits(config, Path(tmp))
    if not test:
        raise ConfigError(f"the test set is empty ({', '.join(config.test) or 'holdout'}); nothing to score")
    training = _training_rows(config, train_source)
    train_rows = training.rows
    gold = [ex.intents for ex in test]
    texts = [ex.text for ex in test]

    methods: dict[str, _Method | str] = {}
    setup: dict[str, Any] = {
        "source": config.source,
        "train": list(config.train),
        "test": list(config.test) if config.test else f"holdout {config.holdout} of train",
        "domains": config.domains,
        "seed": config.seed,
        "mix": config.wants_mix and bool(config.train),
        "max_train": config.max_train,
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "learning_rate": config.learning_rate,
        "backbone": config.backbone,
        "threads": config.threads,
    }
    if config.source == "train":
        methods.update(_trained_tokenflow(config, training, test, setup))
    else:
        methods.update(_pretrained_tokenflow(config, test, setup))
    if config.baselines:
        methods.update(_baselines(config, train_rows, test, setup))
    else:
        methods.update({name: "baselines turned off (--no-baselines)" for name in BASELINES})

    modes: dict[str, Any] = {}
    predictions: dict[str, list[Labels]] = {}
    for name, method in methods.items():
        if isinstance(method, str):
            modes[name] = {"skipped": method}
            continue
        logger.info("scoring %s on %d texts", name, len(texts))
        preds = method.predict(texts)
        predictions[name] = preds
        metrics = _metrics(gold, preds)
        p50, p95 = _latency_ms(method.predict_one, texts, config.timing_queries)
        metrics.update(
            seconds_train=None if method.seconds_train is None else round(method.seconds_train, 2),
            ms_per_query_p50=p50,
            ms_per_query_p95=p95,
            n_train=method.info.pop("n_train", len(train_rows) if config.source == "train" else None),
            **method.info,
        )
        modes[name] = metrics
    result = {
        "dataset": config.name or _default_name(config),
        "format": config.fmt,
        "n_train": len(train_rows),
        "n_test": len(test),
        "setup": setup,
        "modes": modes,
        "seconds_total": round(time.perf_counter() - started, 1),
    }
    return _Run(_with_top_level(result, config.mode), gold, predictions)


def _with_top_level(result: dict[str, Any], mode: str) -> dict[str, Any]:
    """Copy the requested mode's metrics to the top level (``jq .micro_f1``), falling back to what ran."""
    modes = result["modes"]
    chosen = next((m for m in (mode, *reversed(MODES)) if m in modes and "skipped" not in modes[m]), None)
    if chosen is None:
        reasons = ", ".join(f"{m}: {modes[m].get('skipped')}" for m in MODES if m in modes)
        raise ConfigError(f"no tokenflow mode could run ({reasons})")
    if chosen != mode:
        logger.warning(
            "mode %r could not run (%s); top-level metrics are %r", mode, modes.get(mode, {}).get("skipped"), chosen
        )
    return {**result, "mode": chosen, **modes[chosen]}


def _metrics(gold: Sequence[Labels], pred: Sequence[Labels]) -> dict[str, Any]:
    report: dict[str, Any] = dict(multilabel_report(gold, pred))
    report["accuracy"] = report["exact_match"]  # CLINC's "accuracy": the whole label set right
    return report


# -- data ---------------------------------------------------------------------------------------


def _load(config: ClassifyConfig, paths: Sequence[str], split: str) -> list[LabeledText]:
    try:
        return load_labeled(config.fmt, paths, split=split, domains=config.domains)  # type: ignore[arg-type]
    except DataFormatError as exc:
        raise DataFormatError(f"{exc} (read as --format {config.fmt}; check that the format matches the file)") from exc


def _load_splits(config: ClassifyConfig, tmp: Path) -> tuple[list[LabeledText], list[LabeledText]]:
    if config.holdout is None:
        train = _load(config, config.train, "train") if config.train else []
        return train, _load(config, config.test, "test")
    if config.fmt == "crosswoz":
        train_files, test_files = _split_dialogues(config.train, config.holdout, config.seed, tmp)
        return _load(config, train_files, "train"), _load(config, test_files, "test")
    rows = _load(config, config.train, "train")
    # By text, not by row: a text that occurs twice lands on one side, never in training and in the test set.
    in_test = [_bucket(row.text, config.seed) < config.holdout for row in rows]
    return [r for r, t in zip(rows, in_test) if not t], [r for r, t in zip(rows, in_test) if t]


def _bucket(key: str, seed: int) -> float:
    """A stable number in [0, 1) per key and seed (same split on every machine and Python version)."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _split_dialogues(paths: Sequence[str], holdout: float, seed: int, tmp: Path) -> tuple[list[str], list[str]]:
    """Write the dialogues of CrossWOZ files into a train and a test file, whole dialogues each."""
    from tokenflow_rag.evaluation.datasets import read_crosswoz_dialogues

    parts: dict[str, dict[str, Any]] = {"train": {}, "test": {}}
    for path in paths:
        for dialogue_id, messages in read_crosswoz_dialogues(Path(path)).items():
            part = "test" if _bucket(dialogue_id, seed) < holdout else "train"
            parts[part][f"{Path(path).name}:{dialogue_id}"] = {"messages": messages}
    out = []
    for part, dialogues in parts.items():
        if not dialogues:
            raise ConfigError(f"holdout {holdout} left the {part} split without dialogues; change holdout or add data")
        target = tmp / f"{part}.json"
        target.write_text(json.dumps(dialogues, ensure_ascii=False), encoding="utf-8")
        out.append([str(target)])
    return out[0], out[1]


@dataclass(frozen=True)
class _TrainingRows:
    """What a trained benchmark learns from.

    tokenflow's hybrid is calibrated on ``dev`` (thresholds, rule weight, early stopping), so no part of it
    may have seen a dev text: the network and the n-gram model train on ``fit``, the keywords are mined
    from ``keyword_source``, and neither holds a dev utterance. Mix-style rows are joined from source
    utterances drawn with replacement, so the source is split before mixing; a dev split of the mixed
    rows would share most of its utterances with the training rows and make every part look near perfect.
    """

    fit: list[LabeledText]
    dev: list[LabeledText]
    keyword_source: list[LabeledText]

    @property
    def rows(self) -> list[LabeledText]:
        """Every training row (what the baselines, which need no dev data, learn from)."""
        return self.fit + self.dev


def _training_rows(config: ClassifyConfig, source: list[LabeledText]) -> _TrainingRows:
    from tokenflow_rag.classifiers.trainer import TrainingArguments

    if not source:
        return _TrainingRows([], [], [])
    fraction = TrainingArguments.dev_fraction
    if config.wants_mix:
        # The released MixATIS/MixSNIPS train sets are about 3x their single-intent sources.
        n = min(config.mix_size, _MIX_RATIO * len(source), config.max_train or config.mix_size)
        fit_source, dev_source = _split(source, fraction, config.seed)
        n_dev = max(1, round(fraction * n))
        return _TrainingRows(
            mix_from_single(fit_source, seed=config.seed, n=max(1, n - n_dev)),
            _mixed_if_possible(dev_source, config.seed, n_dev),
            fit_source,
        )
    rows = source
    if config.max_train and len(source) > config.max_train:
        rows = [source[i] for i in sorted(random.Random(config.seed).sample(range(len(source)), config.max_train))]
    fit, dev = _split(rows, fraction, config.seed)
    dev_texts = {ex.text for ex in dev}
    return _TrainingRows(fit, dev, [ex for ex in source if ex.text not in dev_texts])


def _split(rows: list[LabeledText], fraction: float, seed: int) -> tuple[list[LabeledText], list[LabeledText]]:
    """The trainer's dev split (stratified by label set) over distinct texts, so no text lands on both sides;
    too few rows to split leave dev empty (the trainer says so if it runs)."""
    from tokenflow_rag.classifiers.training_data import split_dev

    distinct = list({ex.text: ex for ex in reversed(rows)}.values())[::-1]  # first row of each text, in order
    try:
        dev_texts = {ex.text for ex in split_dev(distinct, fraction, seed=seed)[1]}
    except ConfigError:
        return list(rows), []
    return [ex for ex in rows if ex.text not in dev_texts], [ex for ex in rows if ex.text in dev_texts]


def _mixed_if_possible(source: list[LabeledText], seed: int, n: int) -> list[LabeledText]:
    """Mix-style rows from ``source``, or ``source`` itself when it has too few intents to join (or none)."""
    try:
        return mix_from_single(source, seed=seed, n=n)
    except ConfigError:
        return list(source)


def _default_name(config: ClassifyConfig) -> str:
    path = Path((config.test or config.train)[0])
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


def _is_chinese(texts: Sequence[str]) -> bool:
    sample = "".join(texts[:2000])
    return bool(sample) and len(_CJK.findall(sample)) / len(sample) > 0.2


# -- tokenflow's classifiers --------------------------------------------------------------------


def train_tokenflow(
    taxonomy: Any, examples: Sequence[LabeledText], dev: Sequence[LabeledText], config: ClassifyConfig, *, chinese: bool
) -> Any:
    """Train the hybrid classifier (neural + rules) on ``examples``, calibrated on ``dev``.

    The one call into the trainer, so the benchmark measures what ``tokenflow train`` builds; only
    the knobs ``config`` sets differ from the trainer's defaults. Texts without Chinese skip the
    Chinese vocabulary extension (it only costs time there).
    """
    from tokenflow_rag.classifiers.neural import NeuralConfig
    from tokenflow_rag.classifiers.trainer import IntentTrainer, TrainingArguments

    knobs: dict[str, Any] = {
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "learning_rate": config.learning_rate,
    }
    args = TrainingArguments(
        seed=config.seed, progress=config.progress, **{k: v for k, v in knobs.items() if v is not None}
    )
    neural: dict[str, Any] = {} if chinese else {"cjk_vocab": 0}
    if config.backbone:
        neural["backbone"] = config.backbone
    return IntentTrainer(taxonomy, config=NeuralConfig(**neural), args=args).train(examples, dev=dev)


def _trained_tokenflow(
    config: ClassifyConfig, training: _TrainingRows, test: list[LabeledText], setup: dict[str, Any]
) -> dict[str, _Method | str]:
    from tokenflow_rag.classifiers.keyword_mining import LabelMap, mine_taxonomy
    from tokenflow_rag.classifiers.rules import RuleClassifier

    if not any(ex.intents for ex in training.rows):
        raise ConfigError(f"the training files {', '.join(config.train)} hold no example with an intent")
    label_map = LabelMap.from_labels(
        {i for ex in [*training.rows, *training.keyword_source, *test] for i in ex.intents}
    )
    start = time.perf_counter()
    # Keywords come from the unmixed source: joined utterances only add noise to the counts.
    taxonomy = mine_taxonomy(training.keyword_source, name=config.name or "benchmark", label_map=label_map)
    mined_seconds = time.perf_counter() - start
    rules = RuleClassifier(taxonomy)
    setup["keywords_per_intent"] = round(statistics.fmean(len(i.all_keywords) for i in taxonomy), 1)
    setup["intents_without_keywords"] = sum(1 for i in taxonomy if not i.all_keywords)
    methods: dict[str, _Method | str] = {
        "rules": _tokenflow_method(rules, label_map, None, mined_seconds, progress=config.progress)
    }
    if config.mode == "rules":
        methods.update(neural="not run (--mode rules)", hybrid="not run (--mode rules)")
        return methods
    chinese = _is_chinese([ex.text for ex in training.rows])
    start = time.perf_counter()
    safe = label_map.examples_to_safe
    hybrid = train_tokenflow(taxonomy, safe(training.fit), safe(training.dev), config, chinese=chinese)
    seconds = time.perf_counter() - start + mined_seconds
    metadata = getattr(hybrid.neural, "metadata", {}) or {}
    setup["neural_training"] = {
        k: metadata[k] for k in ("train_examples", "dev_examples", "epochs_run", "best_epoch") if k in metadata
    }
    setup["neural_training"]["chinese_vocabulary"] = chinese
    # Dev micro-F1 per epoch, on the dev rows: what settings may be chosen on.
    setup["neural_training"]["dev_micro_f1"] = [
        round(h.get("dev_micro_f1", 0.0), 4) for h in metadata.get("history", [])
    ]
    methods.update(
        _hybrid_methods(hybrid, label_map, None, seconds, rules_seconds=mined_seconds, progress=config.progress)
    )
    return methods


def _pretrained_tokenflow(
    config: ClassifyConfig, test: list[LabeledText], setup: dict[str, Any]
) -> dict[str, _Method | str]:
    from tokenflow_rag.classifiers.keyword_mining import LabelMap

    if config.model:
        from tokenflow_rag.classifiers.hybrid import HybridClassifier

        classifier: Any = HybridClassifier.from_pretrained(config.model, strict=True)
        setup["model"] = config.model
    else:
        from tokenflow_rag.classifiers import load_default_classifier

        classifier = load_default_classifier()
        setup["model"] = "shipped default classifier"
    taxonomy = classifier.taxonomy
    test_labels = sorted({i for ex in test for i in ex.intents})
    label_map = LabelMap.from_labels(test_labels)
    label_set = set(label_map.to_safe(test_labels))
    reachable = {taxonomy.root_of(n) for n in taxonomy.names} | set(taxonomy.names)
    if not label_set & reachable:
        raise ConfigError(
            f"the test labels ({', '.join(test_labels[:8])}) share nothing with the classifier's intents "
            f"({', '.join(taxonomy.names[:8])}); pass --train to train a classifier for this label set"
        )
    setup["label_set"] = test_labels
    setup["mapping"] = "predictions mapped to the test label set: child -> its parent, intents outside dropped"
    if config.source == "default":
        setup["overlap_with_shipped_training_data"] = _shipped_overlap(test)
    scope = _LabelScope(label_set, taxonomy)
    neural = getattr(classifier, "neural", None)
    if neural is None:  # a RuleClassifier, or a hybrid that lost its model
        reason = getattr(classifier, "degraded_reason", None) or "no trained model is available"
        rules = getattr(classifier, "rules", classifier)
        return {
            "rules": _tokenflow_method(rules, label_map, scope, None, progress=config.progress),
            "neural": f"not available: {reason}",
            "hybrid": f"not available: {reason}",
        }
    training = getattr(neural, "metadata", {}) or {}
    setup["neural_training"] = {
        k: training[k] for k in ("train_examples", "dev_examples", "epochs_run", "train_seconds") if k in training
    }
    methods = _hybrid_methods(classifier, label_map, scope, None, rules_seconds=None, progress=config.progress)
    for name in ("neural", "hybrid"):
        methods[name].info["n_train"] = training.get("train_examples")  # type: ignore[union-attr]
    if config.calibrate_folds:
        methods[RECALIBRATED] = _recalibrated_method(classifier, test, label_map, scope, config)
    return methods


def _recalibrated_method(
    hybrid: Any, test: list[LabeledText], label_map: Any, scope: _LabelScope, config: ClassifyConfig
) -> _Method:
    """The hybrid recalibrated on the other folds of the test rows, fold by fold
    (:meth:`~tokenflow_rag.classifiers.hybrid.HybridClassifier.crossfit_predict`)."""
    k = config.calibrate_folds or 0
    if len(test) < k:
        raise ConfigError(f"calibrate_folds={k} needs at least {k} test rows, got {len(test)}")
    names = set(hybrid.taxonomy.names)
    # The calibration rows in the model's own intents: a test label is the intent of that name, if any.
    rows = [LabeledText(ex.text, tuple(n for n in label_map.to_safe(ex.intents) if n in names)) for ex in test]
    weights: list[float] = []

    def predict(texts: list[str]) -> list[Labels]:
        if texts != [ex.text for ex in test]:
            raise ConfigError("the recalibrated hybrid predicts the test rows it was set up with, in order")
        intents, weights[:] = hybrid.crossfit_predict(rows, k, seed=config.seed)
        return [label_map.to_raw(scope.apply(p)) for p in intents]

    info = {"calibrate_folds": k, "rule_weights_chosen": weights}
    return _Method(predict, lambda text: hybrid.predict([text]), None, info)


def _shipped_overlap(test: list[LabeledText]) -> int:
    """How many test texts also appear in the data the shipped model was trained or calibrated on (should be 0)."""
    from tokenflow_rag._resources import package_data

    paths = [package_data(name) for name in ("intents_train.jsonl", "intents_dev.jsonl")]
    try:
        shipped = {ex.text.strip().lower() for ex in load_labeled("jsonl", paths)}
    except (OSError, DataFormatError):
        return -1
    return sum(1 for ex in test if ex.text.strip().lower() in shipped)


@dataclass(frozen=True)
class _LabelScope:
    """Maps a classifier's intents onto a test label set: keep, replace by the parent, or drop."""

    labels: set[str]
    taxonomy: Any

    def apply(self, intents: Sequence[str]) -> tuple[str, ...]:
        out = set()
        for name in intents:
            if name in self.labels:
                out.add(name)
            elif name in self.taxonomy and self.taxonomy.root_of(name) in self.labels:
                out.add(self.taxonomy.root_of(name))
        return tuple(sorted(out))


def _tokenflow_method(
    classifier: Any, label_map: Any, scope: _LabelScope | None, seconds: float | None, *, progress: bool
) -> _Method:
    def convert(intents: Sequence[str]) -> Labels:
        return label_map.to_raw(scope.apply(intents) if scope else intents)

    def predict(texts: list[str]) -> list[Labels]:
        return [convert(p.intents) for p in _batched(classifier.predict, texts, "rules", progress)]

    return _Method(predict, lambda text: classifier.predict([text]), seconds)


def _hybrid_methods(
    hybrid: Any,
    label_map: Any,
    scope: _LabelScope | None,
    seconds: float | None,
    *,
    rules_seconds: float | None,
    progress: bool,
) -> dict[str, _Method | str]:
    """rules, neural and hybrid from one trained hybrid, with one neural pass over the test texts."""
    from tokenflow_rag.classifiers.base import select_intents

    def convert(intents: Sequence[str]) -> Labels:
        return label_map.to_raw(scope.apply(intents) if scope else intents)

    cache: dict[str, list[Any]] = {}

    def hybrid_predictions(texts: list[str]) -> list[Any]:
        key = hashlib.sha256("\n".join(texts).encode()).hexdigest()
        if key not in cache:
            cache.clear()
            cache[key] = _batched(hybrid.predict, texts, "hybrid + neural", progress)
        return cache[key]

    def neural_predict(texts: list[str]) -> list[Labels]:
        # The hybrid keeps the raw neural scores; the neural classifier's own calibration turns them
        # into exactly what NeuralClassifier.predict returns, without a second pass of the model.
        calibration = hybrid.neural.calibration
        out = []
        for pred in hybrid_predictions(texts):
            scores = calibration.apply(dict(pred.components["neural"]))
            out.append(convert(select_intents(scores, calibration.thresholds)))
        return out

    return {
        "rules": _tokenflow_method(hybrid.rules, label_map, scope, rules_seconds, progress=progress),
        "neural": _Method(neural_predict, lambda text: hybrid.neural.predict([text]), seconds),
        "hybrid": _Method(
            lambda texts: [convert(p.intents) for p in hybrid_predictions(texts)],
            lambda text: hybrid.predict([text]),
            seconds,
        ),
    }


# -- baselines ----------------------------------------------------------------------------------


def _baselines(
    config: ClassifyConfig, rows: list[LabeledText], test: list[LabeledText], setup: dict[str, Any]
) -> dict[str, _Method | str]:
    scope: _LabelScope | None = None
    if not rows and config.source == "default":
        # The shipped model's own training data: the baselines learn from what it learned from.
        from tokenflow_rag.classifiers.neural import default_training_data
        from tokenflow_rag.taxonomy import default_taxonomy

        rows = load_labeled("jsonl", [default_training_data()])
        scope = _LabelScope({i for ex in test for i in ex.intents}, default_taxonomy())
        setup["baselines_trained_on"] = "tokenflow_rag/data/intents_train.jsonl (the shipped model's training data)"
    if not rows:
        return {name: "no training data (pass --train to fit the baselines)" for name in BASELINES}
    if not any(ex.intents for ex in rows):
        return {name: "the training data holds no intent" for name in BASELINES}
    from tokenflow_rag.evaluation.baselines import EmbeddingLogRegBaseline, TfidfLogRegBaseline

    embedder_name = config.embedder or ("use-multilingual" if _is_chinese([ex.text for ex in rows]) else "minilm")
    setup["embedder"] = embedder_name
    models: dict[str, Callable[[], Any]] = {
        "tfidf_logreg": TfidfLogRegBaseline,
        "embedding_logreg": lambda: EmbeddingLogRegBaseline(_embedder(embedder_name).embed_documents),
    }
    return {name: _fit_baseline(name, make, rows, scope, config.progress) for name, make in models.items()}


def _fit_baseline(
    name: str, make: Callable[[], Any], rows: list[LabeledText], scope: _LabelScope | None, progress: bool
) -> _Method:
    logger.info("fitting baseline %s on %d rows", name, len(rows))
    start = time.perf_counter()
    model = make().fit([ex.text for ex in rows], [ex.intents for ex in rows])
    seconds = time.perf_counter() - start

    def predict(texts: list[str]) -> list[Labels]:
        return [scope.apply(p) if scope else tuple(p) for p in _batched(model.predict, texts, name, progress)]

    return _Method(predict, lambda text: model.predict([text]), seconds, {"n_train": len(rows)})


# -- helpers ------------------------------------------------------------------------------------


def _set_threads(n: int) -> None:
    """Limit torch and the BLAS / OpenMP pools (scikit-learn's solvers) to ``n`` threads."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # comes with scikit-learn; without it there is no BLAS pool of ours to limit
        pass
    else:
        threadpool_limits(n)
    try:
        import torch
    except ImportError:  # nothing to set: no torch, no neural model or embedding baseline either
        return
    torch.set_num_threads(n)


def _embedder(name: str) -> Any:
    from tokenflow_rag.embeddings import get_embedder

    try:
        from tokenflow_rag.classifiers.backbone import quiet_transformers
    except ImportError:  # pragma: no cover - backbone needs nothing optional at import time
        return get_embedder(name)
    with quiet_transformers():  # loading bars of the embedding model are noise in a benchmark log
        return get_embedder(name)


def _batched(predict: Callable[[list[str]], list[Any]], texts: list[str], desc: str, progress: bool) -> list[Any]:
    from tqdm.auto import tqdm

    out: list[Any] = []
    with tqdm(total=len(texts), desc=desc, unit="text", disable=not progress, leave=False) as bar:
        for start in range(0, len(texts), _PREDICT_BATCH):
            out.extend(predict(texts[start : start + _PREDICT_BATCH]))
            bar.update(min(_PREDICT_BATCH, len(texts) - start))
    return out


def _latency_ms(
    predict_one: Callable[[str], object], texts: Sequence[str], n: int
) -> tuple[float | None, float | None]:
    """Median and 95th percentile of single-text prediction time, after a few warm-up queries."""
    if n <= 0 or not texts:
        return None, None
    step = max(1, len(texts) // n)
    sample = list(texts[::step])[:n]
    for text in sample[:_WARMUP_QUERIES]:
        predict_one(text)
    times = []
    for text in sample:
        start = time.perf_counter()
        predict_one(text)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return round(statistics.median(times), 2), round(times[min(len(times) - 1, int(0.95 * len(times)))], 2)


def _median_or_none(values: Sequence[float | None]) -> float | None:
    return None if any(v is None for v in values) else statistics.median(v for v in values if v is not None)


def _sum_or_none(values: Sequence[float | None]) -> float | None:
    return None if any(v is None for v in values) else round(sum(v for v in values if v is not None), 2)


# -- text output --------------------------------------------------------------------------------


def format_classify(result: dict[str, Any]) -> str:
    """A plain-text table of every method's scores."""
    header = f"{'method':<20}{'micro-F1':>9}{'macro-F1':>9}{'exact':>8}{'none P':>8}{'none R':>8}{'train s':>9}{'ms/q p50':>10}"
    lines = [
        f"{result['dataset']} ({result['format']}): {result['n_test']} test examples, {result['n_train']} training rows"
        + (f", {result['cv_folds']}-fold cross-validation" if "cv_folds" in result else ""),
        "",
        header,
        "-" * len(header),
    ]
    for name, m in result["modes"].items():
        if "skipped" in m:
            lines.append(f"{name:<20}skipped: {m['skipped']}")
            continue
        train = "-" if m.get("seconds_train") is None else f"{m['seconds_train']:.1f}"
        latency = "-" if m.get("ms_per_query_p50") is None else f"{m['ms_per_query_p50']:.1f}"
        lines.append(
            f"{name:<20}{m['micro_f1']:>9.3f}{m['macro_f1']:>9.3f}{m['exact_match']:>8.3f}"
            f"{m['none_precision']:>8.3f}{m['none_recall']:>8.3f}{train:>9}{latency:>10}"
        )
    lines.append("")
    lines.append(f"top-level metrics: {result['mode']}")
    return "\n".join(lines)
