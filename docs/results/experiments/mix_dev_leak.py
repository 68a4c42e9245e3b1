"""How much of the dev rows the training rows held, before and after the dev split moved ahead of Mix-style joining.

Before: Mix-style rows were joined from all source utterances, then the trainer split 15% of the joined rows off
as dev. Now (``_training_rows`` in ``tokenflow_rag/evaluation/classification.py``) the source utterances are
split first. For the MixATIS and MixSNIPS benchmark settings (3,000 rows, seed 13): the share of the dev rows'
utterances that also occur in a training row, and the share of dev rows made only of such utterances.
Rows are cut back into utterances at the joiners, which also cuts the utterances that hold " and " or ", "
themselves; such fragments ("denver") can match a training fragment by accident, which is all the "now"
figures count (no dev utterance is a training utterance by construction, see the test of ``_training_rows``).

    python docs/results/experiments/mix_dev_leak.py     # a few seconds
"""

from __future__ import annotations

import re
from pathlib import Path

from tokenflow_rag.classifiers.training_data import split_dev
from tokenflow_rag.evaluation.classification import ClassifyConfig, _training_rows
from tokenflow_rag.evaluation.datasets import MIX_JOINERS, LabeledText, load_labeled, mix_from_single

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "datasets" / "snips_atis"
_JOINER = re.compile("|".join(re.escape(j) for j in sorted(MIX_JOINERS, key=len, reverse=True)))


def utterances(text: str) -> list[str]:
    """The source utterances a Mix-style row was joined from."""
    return [part.strip() for part in _JOINER.split(text) if part.strip()]


def leak(fit: list[LabeledText], dev: list[LabeledText]) -> str:
    seen = {u for ex in fit for u in utterances(ex.text)}
    parts = [utterances(ex.text) for ex in dev]
    shared = sum(u in seen for p in parts for u in p) / sum(len(p) for p in parts)
    whole = sum(all(u in seen for u in p) for p in parts) / len(parts)
    return f"{shared:.0%} of dev utterances in a training row, {whole:.0%} of dev rows entirely"


def main() -> None:
    for name in ("ATIS", "SNIPS"):
        source = load_labeled("snips", [DATA / name / "train.txt"], split="train")
        config = ClassifyConfig("snips", test=("-",), train=("-",), max_train=3000, seed=13)
        before_fit, before_dev = split_dev(mix_from_single(source, seed=13, n=3000), 0.15, seed=13)
        now = _training_rows(config, source)
        print(f"Mix{name} before: {leak(before_fit, before_dev)}; now: {leak(now.fit, now.dev)}")


if __name__ == "__main__":
    main()
