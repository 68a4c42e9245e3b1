"""The experiment behind the hybrid's n-gram model (``tokenflow_rag/classifiers/ngrams.py``).

Run on the network-only model that was shipped before the n-gram part existed; the shipped network is
unchanged (training is deterministic), so it still reproduces. Scores the rules and network beside a TF-IDF character
n-gram logistic regression (the ``tfidf_logreg`` baseline) trained on the same 85% of
``intents_train.jsonl`` the network trained on. Every fusion is calibrated (Platt + per-intent
threshold) on the shipped model's dev rows (the other 15% + ``intents_dev.jsonl``) and scored on
``intents_test.jsonl`` and the sample_corpus queries, which nothing was fitted on.

    python docs/results/experiments/char_ngram_fusion.py     # about 20 s on 2 cores
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tokenflow_rag.classifiers.calibration import Calibration
from tokenflow_rag.classifiers.hybrid import HybridClassifier, _metrics, _thresholded
from tokenflow_rag.classifiers.neural import default_model_dir
from tokenflow_rag.classifiers.training_data import load_training_data, split_dev
from tokenflow_rag.evaluation.baselines import TfidfLogRegBaseline
from tokenflow_rag.evaluation.datasets import load_labeled

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "tokenflow_rag" / "data"


def component_scores(
    hybrid: HybridClassifier, ngram_scores: Callable[[list[str]], np.ndarray]
) -> dict[str, dict[str, Any]]:
    """Rule, network and n-gram scores, the gold matrix and the texts of the dev rows, intents_test and the
    sample queries.

    The dev rows are the shipped model's: the 15% of intents_train.jsonl the network did not train on and
    intents_dev.jsonl. Columns in the network's label order.
    """
    labels = list(hybrid.neural.labels)
    _, held_out = split_dev(load_training_data(DATA / "intents_train.jsonl", hybrid.taxonomy), 0.15, seed=13)
    sets = {
        "dev": held_out + load_training_data(DATA / "intents_dev.jsonl", hybrid.taxonomy),
        "intents_test": load_training_data(DATA / "intents_test.jsonl", hybrid.taxonomy),
        "sample_queries": load_labeled("jsonl", [ROOT / "sample_corpus" / "queries.jsonl"]),
    }
    scores = {}
    for name, rows in sets.items():
        texts = [x.text for x in rows]
        scores[name] = {
            "rules": np.array([[hybrid.rules.scores(t)[0][n] for n in labels] for t in texts]),
            "network": hybrid.neural.raw_scores(texts).astype(np.float64),
            "ngrams": ngram_scores(texts),
            "gold": np.array([[n in x.intents for n in labels] for x in rows], dtype=int),
            "texts": texts,
        }
    return scores


def shipped_model_scores() -> tuple[HybridClassifier, list[str], dict[str, dict[str, Any]]]:
    """The shipped hybrid (float32, as measured), its label order and :func:`component_scores` with its own
    n-gram part."""
    hybrid = HybridClassifier.from_pretrained(default_model_dir(), strict=True, quantize=False)
    assert hybrid.ngrams is not None, "the shipped model has an n-gram part"
    return hybrid, list(hybrid.neural.labels), component_scores(hybrid, hybrid.ngrams.raw_scores)


def logit(p: np.ndarray) -> np.ndarray:
    """Log-odds, clipped away from 0 and 1 as the library's calibration does."""
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def main() -> None:
    hybrid = HybridClassifier.from_pretrained(default_model_dir(), strict=True, quantize=False)  # as measured: float32
    labels = list(hybrid.neural.labels)
    train, _ = split_dev(load_training_data(DATA / "intents_train.jsonl", hybrid.taxonomy), 0.15, seed=13)
    ngrams = TfidfLogRegBaseline().fit([x.text for x in train], [x.intents for x in train])
    columns = [ngrams.classes_.index(name) for name in labels]
    scores = component_scores(hybrid, lambda texts: np.asarray(ngrams.predict_proba(texts))[:, columns])
    sets = list(scores)
    fusions: dict[str, Callable[[dict], np.ndarray]] = {
        "rules": lambda s: s["rules"],
        "network": lambda s: s["network"],
        "ngrams": lambda s: s["ngrams"],
        "0.6 rules + 0.4 network (shipped before)": lambda s: 0.6 * s["rules"] + 0.4 * s["network"],
        "0.6 rules + 0.4 ngrams": lambda s: 0.6 * s["rules"] + 0.4 * s["ngrams"],
        **{
            f"{w} rules + {1 - w:.1f} mean(network, ngrams)": (
                lambda s, w=w: w * s["rules"] + (1 - w) * (s["network"] + s["ngrams"]) / 2
            )
            for w in (0.2, 0.3, 0.4, 0.5, 0.6)
        },
    }
    print("fusion | " + " | ".join(f"{name} micro-F1 / EM" for name in sets))
    for label, fuse in fusions.items():
        calibration = Calibration.fit_matrix(fuse(scores["dev"]), scores["dev"]["gold"], labels)
        cells = []
        for name in sets:
            m = _metrics(_thresholded(fuse(scores[name]), calibration, labels), scores[name]["gold"])
            cells.append(f"{m['micro_f1']:.3f} / {m['exact_match']:.3f}")
        print(f"{label} | " + " | ".join(cells))


if __name__ == "__main__":
    main()
