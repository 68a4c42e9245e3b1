"""Speed on this machine, as ratios measured in one run: what tokenflow adds on top of the store it wraps.

Per corpus size (synthetic: random unit vectors, random tags over the default taxonomy, random text
for token counts, so embedding cost does not drown the rest):

* ``classify_ms_p50`` / ``p95``: one query through the default classifier
  (:func:`tokenflow_rag.classifiers.load_default_classifier`);
* ``retrieve_ms_p50`` and ``plain_search_ms_p50``: :meth:`IntentRetriever.retrieve` (classification,
  k sizing, restricted search, top-up, token accounting) against ``store.search(vector, k)`` at the
  same k; ``retrieve_over_plain`` is the ratio of their total wall times (query vectors precomputed
  for both, so the embedding, which both pay, is left out);
* the same ratio without baseline-token tracking (``track_baseline=False``), to show its share;
* ``tag_docs_per_s`` (tagging with the default classifier) and ``index_docs_per_s`` (adding tagged
  chunks with precomputed vectors to a :class:`FaissStore`).

One more row runs the real default embedder on ``sample_corpus`` (about 110 chunks), end to end.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np

from tokenflow_rag.errors import ConfigError
from tokenflow_rag.types import Chunk

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_SIZES", "available_memory", "bytes_per_chunk", "machine_info", "run_bench"]

DEFAULT_SIZES = (1_000, 10_000, 100_000)
_FILLER = [
    "the",
    "a",
    "of",
    "to",
    "and",
    "in",
    "for",
    "is",
    "on",
    "that",
    "with",
    "as",
    "by",
    "at",
    "from",
    "this",
    "be",
    "are",
    "it",
    "or",
    "an",
    "was",
    "can",
    "your",
    "we",
    "you",
    "our",
    "will",
    "service",
    "order",
    "team",
    "time",
    "customer",
    "account",
    "data",
    "request",
    "system",
    "page",
    "report",
    "day",
    "week",
    "store",
    "item",
    "product",
    "please",
    "after",
    "before",
    "when",
    "then",
    "also",
    "more",
    "most",
    "each",
    "every",
    "other",
    "new",
    "first",
    "last",
    "used",
    "use",
    "make",
    "help",
]


def machine_info() -> dict[str, Any]:
    """CPU model, core count, Python and platform, for the report header."""
    model = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            model = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), model)
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpu": model or "unknown",
        "cores": os.cpu_count(),
        "load_average_1m": round(load[0], 2) if load else None,
        # OpenMP threads that spin after a torch call starve the next numpy/FAISS call on a small machine
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(unset)"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
    }


def bytes_per_chunk(dim: int = 512) -> int:
    """Memory one synthetic chunk needs while its size runs, with some margin: its vector is drawn in float64
    and kept in float32 (12 x dim bytes while both exist), then copied into FAISS (and into per-intent
    partitions with ``partition_by_intent``), so 16 x dim bytes; plus about 1 KiB of text and Python objects
    (0.9 KiB measured). About 9 KiB at the default 512 dims."""
    return 16 * dim + 1024


def available_memory() -> int | None:
    """Bytes of memory available without swapping (Linux ``MemAvailable``, else all physical memory), or None."""
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def run_bench(
    sizes: Sequence[int] = DEFAULT_SIZES,
    *,
    queries: int = 200,
    dim: int = 512,
    tag_sample: int = 2_000,
    real_embedder: str | None = "default",
    seed: int = 0,
    faiss_threads: int | None = 1,
    int8: bool = False,
    partition_by_intent: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Measure every size and return the JSON-ready report.

    Args:
        sizes: Corpus sizes (chunks) to measure.
        queries: Queries timed per size.
        dim: Dimension of the synthetic vectors (512 = the default embedder's).
        tag_sample: Chunks tagged per size to measure tagging speed (tagging is linear in chunks).
        real_embedder: Also time the embedder of this name end to end on sample_corpus
            (``"default"``: the package default; None: skip).
        seed: Seed of the synthetic data.
        faiss_threads: OpenMP threads FAISS may use during the run (None: leave FAISS's default).
            One query at a time gains nothing from threads, and on a loaded 2-core machine FAISS's
            default of one thread per core made a plain 10k-chunk search 20x slower (24 ms vs 1.2 ms).
        int8: Load the default classifier with its network in int8 (``quantize=True``).
        partition_by_intent: Restricted searches read per-intent copies of the vectors (``FaissStore``).
        progress: Show progress bars.
    """
    if not sizes or any(not isinstance(n, int) or n < 10 for n in sizes):
        raise ConfigError(f"sizes must be integers >= 10, got {list(sizes)!r}")
    if queries < 1:
        raise ConfigError(f"queries must be >= 1, got {queries!r}")
    memory = available_memory()
    if memory is not None and max(sizes) * bytes_per_chunk(dim) > memory:
        # Fail now rather than swap for minutes (or be killed) while building the corpus.
        raise ConfigError(
            f"a corpus of {max(sizes)} chunks needs about {max(sizes) * bytes_per_chunk(dim) / 2**30:.1f} GiB "
            f"({bytes_per_chunk(dim)} bytes per {dim}-dim chunk); {memory / 2**30:.1f} GiB of memory is available"
        )
    from tqdm.auto import tqdm

    from tokenflow_rag.classifiers import load_default_classifier

    classifier = load_default_classifier(quantize=int8)
    faiss = _faiss_threads(faiss_threads)
    try:
        rows = [
            _bench_size(
                n,
                classifier,
                queries=queries,
                dim=dim,
                tag_sample=tag_sample,
                seed=seed,
                partition_by_intent=partition_by_intent,
            )
            for n in tqdm(sizes, desc="bench sizes", unit="size", disable=not progress)
        ]
        real = None
        if real_embedder is not None:
            real = _bench_real(None if real_embedder == "default" else real_embedder, classifier, progress)
    finally:
        if faiss is not None:
            faiss[0].omp_set_num_threads(faiss[1])
    report: dict[str, Any] = {
        "machine": machine_info(),
        "faiss_threads": faiss_threads,
        "partition_by_intent": partition_by_intent,
        "classifier": type(classifier).__name__
        + (" (int8 network)" if getattr(getattr(classifier, "neural", None), "quantized", False) else ""),
        "queries_per_size": queries,
        "seed": seed,
        "dim": dim,
        "sizes": rows,
        "growth": _growth(rows),
    }
    if real is not None:
        report["real_embedder"] = real
    return report


def _faiss_threads(threads: int | None) -> tuple[Any, int] | None:
    """Set FAISS's OpenMP threads; returns (faiss, previous count) to restore, or None when untouched."""
    if threads is None:
        return None
    from tokenflow_rag._optional import require

    faiss = require("faiss", extra="faiss")
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    return faiss, previous


def _synthetic(  # type: ignore[no-untyped-def]
    n: int,
    rng: np.random.Generator,
    intents: Sequence[str],
    keywords: dict[str, list[str]],
    dim: int,
    words: tuple[int, int] = (25, 80),
):
    """n chunks (text, tags), their unit vectors; text mixes filler with the tags' keywords."""
    chunks = []
    for i in range(n):
        roll = rng.random()
        tags = [] if roll < 0.15 else list(rng.choice(intents, size=1 if roll < 0.85 else 2, replace=False))
        text = list(rng.choice(_FILLER, size=int(rng.integers(*words))))
        for tag in tags:
            text[int(rng.integers(len(text)))] = str(rng.choice(keywords[tag]))
        chunks.append(Chunk(f"c{i}", " ".join(text), {"intents": tags}))
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return chunks, vectors


def _bench_size(
    n: int, classifier: Any, *, queries: int, dim: int, tag_sample: int, seed: int, partition_by_intent: bool = False
) -> dict[str, Any]:
    from tokenflow_rag.retriever import IntentRetriever
    from tokenflow_rag.stores.faiss import FaissStore
    from tokenflow_rag.tagging import tag_chunks

    rng = np.random.default_rng(seed + n)
    taxonomy = classifier.taxonomy
    intents = list(taxonomy.names)
    keywords = {name: [kw for kw in taxonomy[name].all_keywords if kw.isascii()] or [name] for name in intents}
    chunks, vectors = _synthetic(n, rng, intents, keywords, dim)

    sample = [Chunk(c.id, c.text) for c in chunks[:tag_sample]]
    tag_s = _timed(lambda: tag_chunks(sample, classifier, progress=False))
    store = FaissStore(partition_by_intent=partition_by_intent)
    index_s = _timed(lambda: store.add(chunks, vectors))

    query_chunks, _ = _synthetic(queries, rng, intents, keywords, dim, words=(6, 16))
    texts = [c.text for c in query_chunks]
    qvecs = rng.standard_normal((queries, dim)).astype(np.float32)
    qvecs /= np.linalg.norm(qvecs, axis=1, keepdims=True)
    lookup = _Lookup(texts, qvecs)

    classify_ms = [_timed(classifier.predict, [t]) * 1e3 for t in texts]
    tracking = IntentRetriever(store, lookup, classifier, track_baseline=True)
    no_tracking = IntentRetriever(store, lookup, classifier, track_baseline=False)
    ks = [tracking.retrieve(t).accounting.k for t in texts]  # untimed: warms selectors and the token cache
    # Whole passes, not interleaved calls: a FAISS call right after a torch classifier call pays for the
    # other library's thread pool. The plain pass runs before and after; its mean is the reference.
    before = [_timed(store.search, v, k) * 1e3 for v, k in zip(qvecs, ks)]
    tf_ms = [_timed(tracking.retrieve, t) * 1e3 for t in texts]
    tf_nb = [_timed(no_tracking.retrieve, t) * 1e3 for t in texts]
    after = [_timed(store.search, v, k) * 1e3 for v, k in zip(qvecs, ks)]
    plain_ms = [(a + b) / 2 for a, b in zip(before, after)]
    breakdown = _breakdown(
        IntentRetriever(store, lookup, classifier, track_baseline=False), texts, qvecs, classify_ms, tf_nb
    )
    row = {
        "chunks": n,
        "classify_ms_p50": _pct(classify_ms, 50),
        "classify_ms_p95": _pct(classify_ms, 95),
        "retrieve_ms_p50": _pct(tf_ms, 50),
        "retrieve_ms_p95": _pct(tf_ms, 95),
        "plain_search_ms_p50": _pct(plain_ms, 50),
        "plain_search_ms_p95": _pct(plain_ms, 95),
        "retrieve_over_plain": round(sum(tf_ms) / max(sum(plain_ms), 1e-9), 3),
        "retrieve_over_plain_no_baseline_tracking": round(sum(tf_nb) / max(sum(plain_ms), 1e-9), 3),
        "tag_docs_per_s": round(len(sample) / max(tag_s, 1e-9), 1),
        "index_docs_per_s": round(n / max(index_s, 1e-9), 1),
        "breakdown_ms_mean": breakdown,
    }
    if partition_by_intent:  # what the per-intent copies cost, next to the index's own vectors
        row["partitions_mib"] = round(store.partition_nbytes / 2**20, 1)
        row["index_mib"] = round(n * dim * 4 / 2**20, 1)
    return row


def _breakdown(
    retriever: Any, texts: Sequence[str], vectors: np.ndarray, classify_ms: Sequence[float], total_ms: Sequence[float]
) -> dict[str, float]:
    """Mean ms per query of each step of a retrieval (without baseline tracking), timed separately."""
    restricted, baseline = [], []
    for t, v in zip(texts, vectors):
        acc = retriever.retrieve(t).accounting
        if acc.fallback:
            restricted.append(_timed(retriever.store.search, v, acc.k) * 1e3)
        else:
            restricted.append(_timed(retriever.store.search, v, acc.k, intents=acc.searched_intents) * 1e3)
        baseline.append(_timed(retriever.store.search, v, retriever.policy.base_k) * 1e3)
    out = {
        "classify": float(np.mean(classify_ms)),
        "search_restricted_or_fallback": float(np.mean(restricted)),
        "baseline_tracking_search": float(np.mean(baseline)),
    }
    out["rest_of_retrieve"] = max(
        float(np.mean(total_ms)) - out["classify"] - out["search_restricted_or_fallback"], 0.0
    )
    return {k: round(v, 4) for k, v in out.items()}


def _bench_real(embedder_name: str | None, classifier: Any, progress: bool) -> dict[str, Any]:
    """End to end on sample_corpus with a real embedder: embedding dominates both sides."""
    from tokenflow_rag.corpus import load_corpus
    from tokenflow_rag.demo import find_sample_corpus, load_queries
    from tokenflow_rag.embeddings import get_embedder
    from tokenflow_rag.index import embed_chunks
    from tokenflow_rag.retriever import IntentRetriever
    from tokenflow_rag.stores.faiss import FaissStore
    from tokenflow_rag.tagging import tag_chunks

    try:
        root = find_sample_corpus()
    except Exception as exc:  # a wheel install has no sample_corpus: say so, do not fail the bench
        return {"skipped": str(exc)}
    embedder = get_embedder(embedder_name)
    chunks = load_corpus(root / "docs")
    tagged: list[Chunk] = []
    tag_s = _timed(lambda: tagged.extend(tag_chunks(chunks, classifier, progress=False)))
    vectors: list[np.ndarray] = []
    embed_s = _timed(lambda: vectors.append(embed_chunks(embedder, tagged, progress=progress)))
    store = FaissStore()
    index_s = _timed(lambda: store.add(tagged, vectors[0]))
    texts = [q["query"] for q in load_queries(root / "queries.jsonl")]
    retriever = IntentRetriever(store, embedder, classifier)
    ks = [retriever.retrieve(t).accounting.k for t in texts]  # untimed warm-up, and the k of each query
    plain = _plain_search(store, embedder)
    embed_ms = [_timed(embedder.embed_query, t) * 1e3 for t in texts]
    before = [_timed(plain, t, k) * 1e3 for t, k in zip(texts, ks)]
    tf_ms = [_timed(retriever.retrieve, t) * 1e3 for t in texts]
    after = [_timed(plain, t, k) * 1e3 for t, k in zip(texts, ks)]
    plain_ms = [(a + b) / 2 for a, b in zip(before, after)]
    return {
        "embedder": embedder.name,
        "chunks": len(chunks),
        "queries": len(texts),
        "embed_docs_per_s": round(len(chunks) / max(embed_s, 1e-9), 1),
        "tag_docs_per_s": round(len(chunks) / max(tag_s, 1e-9), 1),
        "index_docs_per_s": round(len(chunks) / max(tag_s + embed_s + index_s, 1e-9), 1),
        "embed_query_ms_p50": _pct(embed_ms, 50),
        "retrieve_ms_p50": _pct(tf_ms, 50),
        "plain_embed_and_search_ms_p50": _pct(plain_ms, 50),
        "retrieve_over_plain": round(sum(tf_ms) / max(sum(plain_ms), 1e-9), 3),
    }


def _plain_search(store: Any, embedder: Any) -> Callable[[str, int], Any]:
    """What a plain retriever does for a query: embed it and search the store."""
    return lambda text, k: store.search(embedder.embed_query(text), k)


def _growth(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """How each figure changes from the smallest to the largest size (largest / smallest)."""
    if len(rows) < 2:
        return {}
    first, last = rows[0], rows[-1]
    keys = (
        "classify_ms_p50",
        "retrieve_ms_p50",
        "plain_search_ms_p50",
        "retrieve_over_plain",
        "tag_docs_per_s",
        "index_docs_per_s",
    )
    return {
        "from_chunks": first["chunks"],
        "to_chunks": last["chunks"],
        **{k: round(last[k] / first[k], 2) if first[k] else None for k in keys},
    }


class _Lookup:
    """Precomputed query vectors by text: the retriever's embedding step costs nothing here."""

    name, dim = "precomputed", 0

    def __init__(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        self._rows = {t: i for i, t in enumerate(texts)}
        self._vectors = vectors
        self.dim = vectors.shape[1]

    def embed_query(self, text: str) -> np.ndarray:
        return self._vectors[self._rows[text]]

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self.embed_query(t) for t in texts])


def _timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> float:
    """Seconds one call of ``fn(*args, **kwargs)`` takes."""
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


def _pct(values: Sequence[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 4) if len(values) else 0.0


def format_bench(report: dict[str, Any]) -> str:
    """A plain-text table of :func:`run_bench`'s report."""
    m = report["machine"]
    lines = [
        f"{m['cpu']}, {m['cores']} cores, load {m['load_average_1m']}, OMP_WAIT_POLICY {m['omp_wait_policy']}, "
        f"Python {m['python']}, {m['date']}; classifier {report['classifier']}",
        "",
    ]
    header = f"{'chunks':>8} {'classify p50/p95 ms':>20} {'retrieve p50 ms':>16} {'plain p50 ms':>13} {'ratio':>6} {'ratio*':>7} {'tag docs/s':>11} {'index docs/s':>13}"
    lines.append(header)
    for r in report["sizes"]:
        lines.append(
            f"{r['chunks']:>8} {r['classify_ms_p50']:>9.3f} / {r['classify_ms_p95']:<8.3f} {r['retrieve_ms_p50']:>16.3f} "
            f"{r['plain_search_ms_p50']:>13.3f} {r['retrieve_over_plain']:>6.2f} {r['retrieve_over_plain_no_baseline_tracking']:>7.2f} "
            f"{r['tag_docs_per_s']:>11.0f} {r['index_docs_per_s']:>13.0f}"
        )
    lines.append(
        "ratio = tokenflow retrieve / plain store.search at the same k (total wall time); ratio* = without baseline-token tracking"
    )
    real = report.get("real_embedder")
    if real and "skipped" not in real:
        lines.append(
            f"\n{real['embedder']} on sample_corpus ({real['chunks']} chunks, {real['queries']} queries): "
            f"embed {real['embed_docs_per_s']:.1f} docs/s, query embed p50 {real['embed_query_ms_p50']:.1f} ms, "
            f"retrieve p50 {real['retrieve_ms_p50']:.1f} ms vs embed+search {real['plain_embed_and_search_ms_p50']:.1f} ms "
            f"(ratio {real['retrieve_over_plain']:.2f})"
        )
    elif real:
        lines.append(f"\nreal embedder row skipped: {real['skipped']}")
    return "\n".join(lines)
