"""Experiment: weigh each keyword by how reliable it was in the training data.

The rules give every keyword the same evidence (0.6), whether it is ``退款`` (nearly always a refund) or
``通知`` (also a school's notice). Here each (intent, keyword) gets the smoothed precision it had on the
85% of ``intents_train.jsonl`` the shipped network trained on, ``(right + m * 0.6) / (fired + m)``;
keywords that never fired there keep 0.6, patterns keep 0.8. The shipped network and n-gram model are
unchanged; every fusion is calibrated (rule weight from the grid, Platt + per-intent threshold) on the shipped
model's 1,179 dev rows and scored on ``intents_test.jsonl`` and the sample_corpus queries.

    python docs/results/experiments/keyword_reliability.py     # about 20 s on 2 cores
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np

from tokenflow_rag.classifiers.calibration import Calibration
from tokenflow_rag.classifiers.hybrid import RULE_WEIGHT_GRID, HybridClassifier, _metrics, _thresholded
from tokenflow_rag.classifiers.neural import default_model_dir
from tokenflow_rag.classifiers.training_data import load_training_data, split_dev

sys.path.insert(0, str(Path(__file__).parent))
from char_ngram_fusion import DATA, component_scores  # noqa: E402


def reliabilities(hybrid: HybridClassifier, rows, prior_weight: float) -> dict[tuple[str, str], float]:
    """Smoothed precision of every (intent, keyword or pattern) that fired on ``rows``."""
    fired: Counter[tuple[str, str]] = Counter()
    right: Counter[tuple[str, str]] = Counter()
    for row in rows:
        for name, keys in hybrid.rules.scores(row.text)[1].items():
            for key in keys:
                fired[name, key] += 1
                right[name, key] += name in row.intents
    return {
        k: (right[k] + prior_weight * (0.8 if k[1].startswith("re:") else 0.6)) / (fired[k] + prior_weight)
        for k in fired
    }


def weighted_rules(hybrid: HybridClassifier, texts, weights) -> np.ndarray:
    labels = hybrid.neural.labels
    out = np.zeros((len(texts), len(labels)))
    for i, text in enumerate(texts):
        for name, keys in hybrid.rules.scores(text)[1].items():
            miss = 1.0
            for key in keys:
                miss *= 1.0 - weights.get((name, key), 0.8 if key.startswith("re:") else 0.6)
            out[i, labels.index(name)] = 1.0 - miss
    return out


def main() -> None:
    hybrid = HybridClassifier.from_pretrained(default_model_dir(), strict=True, quantize=False)  # as measured: float32
    labels = list(hybrid.neural.labels)
    train, _ = split_dev(load_training_data(DATA / "intents_train.jsonl", hybrid.taxonomy), 0.15, seed=13)
    scores = component_scores(hybrid, hybrid.ngrams.raw_scores)
    variants = {"flat 0.6 (shipped)": {}}
    for m in (2, 5, 10, 20):
        variants[f"reliability, m={m}"] = reliabilities(hybrid, train, m)
    print("rules | weight chosen on dev | " + " | ".join(f"{s} rules / hybrid micro-F1 (EM)" for s in scores))
    for label, weights in variants.items():
        rules = {s: weighted_rules(hybrid, scores[s]["texts"], weights) for s in scores}
        best = None
        for w in RULE_WEIGHT_GRID:
            fused = {s: w * rules[s] + (1 - w) * (scores[s]["network"] + scores[s]["ngrams"]) / 2 for s in scores}
            cal = Calibration.fit_matrix(fused["dev"], scores["dev"]["gold"], labels)
            dev = _metrics(_thresholded(fused["dev"], cal, labels), scores["dev"]["gold"])["micro_f1"]
            if best is None or dev > best[0] + 1e-12:
                best = (dev, w, fused, cal)
        _, w, fused, cal = best
        cells = []
        for s in scores:
            r = _metrics(rules[s] >= 0.5, scores[s]["gold"])
            h = _metrics(_thresholded(fused[s], cal, labels), scores[s]["gold"])
            cells.append(f"{r['micro_f1']:.3f} / {h['micro_f1']:.3f} ({h['exact_match']:.3f})")
        print(f"{label} | {w} | " + " | ".join(cells))
    weights = variants["reliability, m=5"]
    print("least reliable keywords (m=5):", sorted(weights.items(), key=lambda kv: kv[1])[:15])


if __name__ == "__main__":
    main()
