"""Exploratory: would a learned per-intent fusion (stacking) beat the shipped weighted mean?

Not part of the library. The shipped hybrid fuses ``w * rules + (1 - w) * mean(network, ngrams)`` with one
weight for every intent, then Platt-scales and thresholds each intent on the dev rows. Stacking instead fits,
per intent, a logistic regression on ``[rule score, logit(network), logit(ngrams)]`` on the same dev rows
(the shipped model's: the 15% of intents_train.jsonl the network did not train on + intents_dev.jsonl),
so each intent learns how far to trust each part, then picks its F1-best threshold there. Both are scored
on intents_test.jsonl and the sample_corpus queries, which nothing was fitted on. The seed set is not
scored: this decides nothing yet.

    python docs/results/experiments/stacked_fusion.py     # about 20 s on 2 cores
"""

from __future__ import annotations

import numpy as np
from char_ngram_fusion import (  # its sibling script: run from any folder, Python adds this one
    logit,
    shipped_model_scores,
)
from sklearn.linear_model import LogisticRegression

from tokenflow_rag.classifiers.calibration import Calibration, best_threshold
from tokenflow_rag.classifiers.hybrid import _metrics, _thresholded


def _features(s: dict[str, np.ndarray], j: int, interactions: bool) -> np.ndarray:
    cols = [s["rules"][:, j], logit(s["network"][:, j]), logit(s["ngrams"][:, j])]
    if interactions:
        cols.append(s["rules"][:, j] * logit(s["network"][:, j]))
    return np.stack(cols, axis=1)


def main() -> None:
    hybrid, labels, scores = shipped_model_scores()
    sets = list(scores)
    print("fusion | " + " | ".join(f"{name} micro-F1 / EM" for name in sets))

    w = hybrid.config.rule_weight
    fused = {k: w * s["rules"] + (1 - w) * (s["network"] + s["ngrams"]) / 2 for k, s in scores.items()}
    calibration = Calibration.fit_matrix(fused["dev"], scores["dev"]["gold"], labels)
    cells = [_metrics(_thresholded(fused[k], calibration, labels), scores[k]["gold"]) for k in sets]
    print(f"shipped: {w} rules + {1 - w:.1f} mean | " + " | ".join(_cell(m) for m in cells))

    for C in (0.1, 1.0, 10.0):
        for interactions in (False, True):
            predicted = {k: np.zeros_like(s["gold"], dtype=bool) for k, s in scores.items()}
            for j in range(len(labels)):
                dev_y = scores["dev"]["gold"][:, j]
                model = LogisticRegression(C=C, max_iter=1000).fit(_features(scores["dev"], j, interactions), dev_y)
                threshold = best_threshold(model.predict_proba(_features(scores["dev"], j, interactions))[:, 1], dev_y)
                for k, s in scores.items():
                    predicted[k][:, j] = model.predict_proba(_features(s, j, interactions))[:, 1] >= threshold
            cells = [_metrics(predicted[k], scores[k]["gold"]) for k in sets]
            name = f"stacked, C={C}" + (", + rules x logit(network)" if interactions else "")
            print(f"{name} | " + " | ".join(_cell(m) for m in cells))


def _cell(m: dict[str, float]) -> str:
    return f"{m['micro_f1']:.3f} / {m['exact_match']:.3f}"


if __name__ == "__main__":
    main()
