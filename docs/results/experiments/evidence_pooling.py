"""Exploratory: would pooling calibrated evidence beat the shipped weighted mean of raw scores?

Not part of the library. The shipped hybrid fuses raw scores, ``w * rules + (1 - w) * mean(network, ngrams)``,
then Platt-scales and thresholds each intent. The raw parts are on different scales (a rule that fires says
0.6 whatever the intent; the network's raw sigmoid is overconfident), so a firing keyword may count for less
than it is worth. Here each part is first Platt-calibrated per intent on the dev rows, and the calibrated
parts are combined as evidence:

- **log-odds pool**: ``logit p = w * logit(p_rules) + (1 - w) * mean(logit p_network, logit p_ngrams)``,
  ``w`` from the same grid and by the same dev micro-F1 as ``--rule-weight auto``;
- **naive Bayes**: each part's log-odds above the intent's dev base rate are added (the parts treated as
  independent evidence; no weight);
- **noisy-OR**: ``1 - (1 - p_rules) * (1 - p_model)``, ``p_model`` the calibrated mean of network and n-grams.

Each pooled score then gets the library's own per-intent Platt scaling and F1-best threshold on the same
dev rows (the shipped model's: the 15% of intents_train.jsonl the network did not train on +
intents_dev.jsonl), and is scored on intents_test.jsonl and the sample_corpus queries, which nothing was
fitted on.

Rule fixed before the first run (the one every change to the shipped model has met): the pooling with the
best dev micro-F1 is the candidate; it replaces the weighted mean only if its hybrid reaches >= 0.862
micro-F1 on intents_test (shipped 0.857 + 0.005) and >= 0.874 on the sample_corpus queries. The seed set
is scored only after that decision.

    python docs/results/experiments/evidence_pooling.py     # about 30 s on 2 cores
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from char_ngram_fusion import (  # its sibling script: run from any folder, Python adds this one
    logit,
    shipped_model_scores,
)

from tokenflow_rag.classifiers.calibration import Calibration
from tokenflow_rag.classifiers.hybrid import RULE_WEIGHT_GRID, HybridClassifier, _metrics, _thresholded


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-np.clip(z, -30, 30)))


def _calibrated(cal: Calibration, raw: np.ndarray, labels: list[str]) -> np.ndarray:
    """Per-intent Platt probabilities of a raw score matrix (the thresholds are not used here)."""
    return np.array([[cal.intents[name].apply(v) for name, v in zip(labels, row)] for row in raw])


def main() -> None:
    _, labels, scores = shipped_model_scores()
    sets = list(scores)
    dev, gold = scores["dev"], scores["dev"]["gold"]

    # Each part calibrated on dev; the model part is the mean of network and n-grams, as shipped.
    parts = {
        "rules": lambda s: s["rules"],
        "network": lambda s: s["network"],
        "ngrams": lambda s: s["ngrams"],
        "model": lambda s: (s["network"] + s["ngrams"]) / 2,
    }
    cals = {name: Calibration.fit_matrix(get(dev), gold, labels) for name, get in parts.items()}
    prob = {
        k: {name: _calibrated(cals[name], get(s), labels) for name, get in parts.items()} for k, s in scores.items()
    }
    prior = logit(gold.mean(axis=0))  # dev base rate per intent

    fusions: dict[str, Callable[[str], np.ndarray]] = {}
    for w in RULE_WEIGHT_GRID:
        fusions[f"weighted mean of raw scores, w={w}"] = lambda k, w=w: HybridClassifier._fused(
            scores[k]["rules"], scores[k]["network"], scores[k]["ngrams"], w
        )
    for w in RULE_WEIGHT_GRID:
        fusions[f"log-odds pool, w={w}"] = lambda k, w=w: _sigmoid(
            w * logit(prob[k]["rules"]) + (1 - w) * (logit(prob[k]["network"]) + logit(prob[k]["ngrams"])) / 2
        )
    fusions["naive Bayes"] = lambda k: _sigmoid(
        logit(prob[k]["rules"]) + logit(prob[k]["network"]) + logit(prob[k]["ngrams"]) - 2 * prior
    )
    fusions["noisy-OR"] = lambda k: 1 - (1 - prob[k]["rules"]) * (1 - prob[k]["model"])

    print("fusion | " + " | ".join(f"{name} micro-F1 / EM" for name in sets))
    dev_f1: dict[str, float] = {}
    for label, fuse in fusions.items():
        calibration = Calibration.fit_matrix(fuse("dev"), gold, labels)
        cells = []
        for name in sets:
            m = _metrics(_thresholded(fuse(name), calibration, labels), scores[name]["gold"])
            cells.append(f"{m['micro_f1']:.3f} / {m['exact_match']:.3f}")
            if name == "dev":
                dev_f1[label] = m["micro_f1"]
        print(f"{label} | " + " | ".join(cells))
    family = {label: label.split(",")[0] for label in fusions}
    for name in ("weighted mean of raw scores", "log-odds pool"):
        best = max((lb for lb in fusions if family[lb] == name), key=lambda lb: dev_f1[lb])
        print(f"best on dev for {name}: {best}")
    pooled = [lb for lb in fusions if family[lb] != "weighted mean of raw scores"]
    print(f"candidate (best dev micro-F1 among the poolings): {max(pooled, key=lambda lb: dev_f1[lb])}")


if __name__ == "__main__":
    main()
