"""The experiment behind ``quantize=True`` (int8 linear layers for the network, ``neural.py``, ``_int8``).

The shipped network is loaded in float32 and dynamically quantized to int8 two ways (one scale per weight
tensor, torch's default; one per output channel, what ``quantize=True`` serves). For each, the hybrid's
micro-F1 and exact match on the shipped model's 1,179 dev rows, intents_test.jsonl and the sample_corpus
queries with the shipped calibration (``--refit``: one fitted on each variant's own dev scores), how far the
network's scores move, and the one-query latency of ``HybridClassifier.predict`` on one thread, float32 and
int8 interleaved in one run (200 intents_test queries after 5 warm-up queries, three rounds; compare ratios).

int8 texts run one per forward pass, as served; the "batches of 64" rows score them batched, as the first
measurement that decided the question did. The last line shows why they differ: batched, int8 activations
share one scale per batch, and a text's intents change with the texts beside it.

    python docs/results/experiments/int8_network.py [--refit]     # about 2 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from tokenflow_rag.classifiers.calibration import Calibration
from tokenflow_rag.classifiers.hybrid import HybridClassifier, _metrics, _thresholded
from tokenflow_rag.classifiers.neural import default_model_dir

sys.path.insert(0, str(Path(__file__).parent))
from char_ngram_fusion import component_scores  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refit", action="store_true", help="calibrate each variant on its own dev scores")
    args = parser.parse_args()
    hybrid = HybridClassifier.from_pretrained(default_model_dir(), strict=True, quantize=False)
    labels, weight = list(hybrid.neural.labels), hybrid.config.rule_weight
    scores = component_scores(hybrid, hybrid.ngrams.raw_scores)
    quantization = torch.ao.quantization
    networks = {"float32": hybrid.neural._model}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's pointer to torchao
        for name, qconfig in (
            ("int8 per tensor", quantization.default_dynamic_qconfig),
            ("int8 per channel (quantize=True)", quantization.per_channel_dynamic_qconfig),
        ):
            networks[name] = quantization.quantize_dynamic(
                copy.deepcopy(hybrid.neural._model), {torch.nn.Linear: qconfig}, dtype=torch.qint8
            )

    def use(name: str, *, one_per_pass: bool = True) -> None:
        hybrid.neural._model = networks[name]
        hybrid.neural.quantized = name != "float32" and one_per_pass

    print(f"rule weight {weight}; calibration: {'fitted on each variant' if args.refit else 'shipped'}")
    print("network | " + " | ".join(f"{s} micro-F1 / EM (network score change: largest, rows > 0.1)" for s in scores))
    rows = [(name, True) for name in networks] + [(name, False) for name in networks if name != "float32"]
    for name, one_per_pass in rows:
        use(name, one_per_pass=one_per_pass)
        fused = {}
        for s, d in scores.items():
            network = hybrid.neural.raw_scores(d["texts"]).astype(np.float64)
            change = np.abs(network - d["network"]).max(axis=1)
            fused[s] = (hybrid._fused(d["rules"], network, d["ngrams"], weight), change)
        cal = Calibration.fit_matrix(fused["dev"][0], scores["dev"]["gold"], labels) if args.refit else None
        cells = []
        for s, (f, change) in fused.items():
            m = _metrics(_thresholded(f, cal or hybrid.calibration, labels), scores[s]["gold"])
            cells.append(
                f"{m['micro_f1']:.4f} / {m['exact_match']:.4f} ({change.max():.2f}, {(change > 0.1).mean():.1%})"
            )
        print(f"{name}{'' if one_per_pass or name == 'float32' else ', batches of 64'} | " + " | ".join(cells))

    queries = scores["intents_test"]["texts"][:200]
    torch.set_num_threads(1)
    p50: dict[str, list[float]] = {name: [] for name in networks}
    for _round in range(3):
        for name in networks:
            use(name)
            for query in queries[:5]:
                hybrid.predict([query])
            times = []
            for query in queries:
                start = time.perf_counter()
                hybrid.predict([query])
                times.append(time.perf_counter() - start)
            p50[name].append(float(np.median(times)) * 1000)
    for name, values in p50.items():
        ratios = ", ".join(f"{v / f:.2f}" for v, f in zip(values, p50["float32"]))
        print(f"{name}: one-query p50 {', '.join(f'{v:.1f}' for v in values)} ms; ratio to float32 {ratios}")

    texts = scores["intents_test"]["texts"]
    use("int8 per channel (quantize=True)", one_per_pass=False)
    batched = [p.intents for p in hybrid.predict(texts)]
    alone = [hybrid.predict([t])[0].intents for t in texts]
    changed = sum(a != b for a, b in zip(batched, alone))
    print(f"int8 per channel, batches of 64 vs one text per pass: {changed} of {len(texts)} intents_test texts differ")


if __name__ == "__main__":
    main()
