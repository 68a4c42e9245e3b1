"""Experiment: calibrate the shipped hybrid on rows from more writers.

How far to trust the rules and where each threshold sits depend on who wrote the text (BENCHMARKS.md,
"Recalibrating on your own traffic"): the shipped calibration saw two sources, the 15% of
``intents_train.jsonl`` the network did not train on and ``intents_dev.jsonl`` (one writer, paraphrases
and keyword hard negatives on purpose). ``extra_train_rows.jsonl`` holds 1,385 rows by three more writers
who read none of the other data; as training rows they did not help. Here they join the calibration
rows instead: the shipped network and n-gram model are unchanged, and the thresholds and the rule weight
(the grid, as ``--rule-weight auto``) are fitted on all of them, then scored on ``intents_test.jsonl`` and
the sample_corpus queries, which nothing is fitted on.

Decision rule, fixed before the first run (the one used for every change to the shipped model): go on
only if the hybrid reaches micro-F1 >= 0.862 on intents_test (shipped 0.857 + 0.005) and >= 0.874 on the
sample_corpus queries (shipped 0.884 - 0.01). Going on means retraining with the one documented command
given the extra rows as a dev file (early stopping then sees them too) and applying the same rule to that
model; the seed set is scored only after deciding.

    python docs/results/experiments/multiwriter_calibration.py     # about 1 minute on 2 cores
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from tokenflow_rag.classifiers.hybrid import HybridClassifier, _metrics
from tokenflow_rag.classifiers.neural import default_model_dir
from tokenflow_rag.classifiers.training_data import load_training_data, split_dev
from tokenflow_rag.evaluation.datasets import load_labeled

sys.path.insert(0, str(Path(__file__).parent))
from char_ngram_fusion import DATA, ROOT  # noqa: E402

EXTRA = Path(__file__).parent / "extra_train_rows.jsonl"


def score(hybrid: HybridClassifier, rows) -> str:
    labels = hybrid.neural.labels
    predicted = hybrid.predict([r.text for r in rows])
    pred = np.array([[n in p.intents for n in labels] for p in predicted])
    gold = np.array([[n in r.intents for n in labels] for r in rows])
    m = _metrics(pred, gold)
    return f"{m['micro_f1']:.3f} / {m['exact_match']:.3f}"


def main() -> None:
    hybrid = HybridClassifier.from_pretrained(default_model_dir(), strict=True, quantize=False)
    taxonomy = hybrid.taxonomy
    trained, held_out = split_dev(load_training_data(DATA / "intents_train.jsonl", taxonomy), 0.15, seed=13)
    shipped_dev = held_out + load_training_data(DATA / "intents_dev.jsonl", taxonomy)
    tests = {
        "intents_test": load_training_data(DATA / "intents_test.jsonl", taxonomy),
        "sample_corpus queries": load_labeled("jsonl", [ROOT / "sample_corpus" / "queries.jsonl"]),
    }
    # Rows whose text the network trained on, or that a test file holds, would mislead: leave them out.
    taken = {r.text for r in trained} | {r.text for rows in tests.values() for r in rows}
    extra_all = load_training_data(EXTRA, taxonomy)
    extra = [r for r in extra_all if r.text not in taken]
    print(f"extra rows: {len(extra_all)}, {len(extra_all) - len(extra)} left out (text trained on or tested)")

    def report(name: str) -> None:
        cells = ", ".join(f"{k} {score(hybrid, rows)}" for k, rows in tests.items())
        print(f"{name}: rule weight {hybrid.config.rule_weight:g}; {cells}  (micro-F1 / exact match)")

    report(f"shipped calibration ({len(shipped_dev)} dev rows)")
    for name, dev in (
        (f"recalibrated on the shipped dev rows ({len(shipped_dev)}), as trained", shipped_dev),
        (f"recalibrated on shipped dev + extra writers ({len(shipped_dev) + len(extra)})", shipped_dev + extra),
    ):
        fit = hybrid.calibrate(dev, choose_weights=True)
        grid = ", ".join(f"{w}: {f:.3f}" for w, f in fit["rule_weight"]["dev_micro_f1"].items())
        print(f"  dev micro-F1 by rule weight: {grid}")
        report(name)


if __name__ == "__main__":
    main()
