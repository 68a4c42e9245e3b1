"""Chinese keyword matching on characters vs jieba words: ``python -m tokenflow_rag.evaluation.segmenters``.

Scores the rule classifier of the default taxonomy with both segmenters on the repository's own labelled
data (the intent training set and sample_corpus queries) and prints micro-F1 / exact match per language.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

from tokenflow_rag.classifiers.rules import RuleClassifier
from tokenflow_rag.evaluation.metrics import multilabel_report

_CJK = re.compile(r"[\u4e00-\u9fff]")


def compare(rows: list[tuple[str, tuple[str, ...]]]) -> dict[str, dict[str, float]]:
    """Micro-F1, exact match and ms/query of both segmenters, on the Chinese rows of ``rows``."""
    zh = [(t, g) for t, g in rows if _CJK.search(t)]
    out = {}
    for segmenter in ("chars", "jieba"):
        clf = RuleClassifier(segmenter=segmenter)  # type: ignore[arg-type]
        clf.predict(["预热"])  # load jieba's dictionary before timing
        start = time.perf_counter()
        pred = [p.intents for p in clf.predict([t for t, _ in zh])]
        ms = 1000 * (time.perf_counter() - start) / max(len(zh), 1)
        report = multilabel_report([g for _, g in zh], pred)
        out[segmenter] = {
            "n": len(zh),
            "micro_f1": round(report["micro_f1"], 4),
            "exact_match": round(report["exact_match"], 4),
            "ms_per_query": round(ms, 3),
        }
    return out


def main() -> int:
    root = Path(__file__).resolve().parents[2]
    train = [
        json.loads(line)
        for line in (root / "tokenflow_rag/data/intents_train.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    queries = [
        json.loads(line) for line in (root / "sample_corpus/queries.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    result = {
        "intents_train.jsonl": compare([(r["text"], tuple(r["intents"])) for r in train]),
        "sample_corpus/queries.jsonl": compare([(r["query"], tuple(r["intents"])) for r in queries]),
    }
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
