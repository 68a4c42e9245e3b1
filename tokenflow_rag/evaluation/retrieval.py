"""Retrieval benchmark: prompt tokens sent against gold documents found, per retrieval method.

Every method runs on the same embedder, the same FAISS index and the same queries:

* ``fixed_k@K``: plain top-K, K = 1..20;
* ``score_cutoff@T``: the top-20 hits scoring at least T (a sweep of thresholds);
* ``adaptive_k@topN``: the top-N hits cut at the largest gap between consecutive scores;
* ``tokenflow@k=N``: :class:`~tokenflow_rag.retriever.IntentRetriever` with per-intent ``k = N`` and
  intents from the documents' metadata (:class:`~tokenflow_rag.metadata_taxonomy.MetadataTaxonomy`),
  the query resolved against the previous turns (:class:`~tokenflow_rag.context.ContextResolver`);
  nothing is learned from the evaluated queries;
* ``oracle_entity@k=N`` / ``oracle_domain@k=N``: the same retriever given the gold documents'
  entities / domains, an upper bound on what better tags could buy.

Per method: ``tokens_mean`` (cl100k tokens of the returned documents), ``recall`` (fraction of the
gold documents returned, averaged over queries) and ``hit_rate`` (any gold returned). The headline
``token_ratio_at_baseline_recall[K]`` is tokenflow's mean tokens at its cheapest setting whose recall
reaches fixed top-K's, divided by fixed top-K's mean tokens (None when no setting reaches it).
"""

from __future__ import annotations

import logging
import time
import zlib
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tokenflow_rag.context import ContextResolver
from tokenflow_rag.embeddings.base import Embedder
from tokenflow_rag.errors import ConfigError
from tokenflow_rag.evaluation.cache import EmbeddingCache
from tokenflow_rag.evaluation.retrieval_datasets import RetrievalDataset, RetrievalQuery
from tokenflow_rag.metadata_taxonomy import MetadataTaxonomy, NameClassifier
from tokenflow_rag.policy import KPolicy
from tokenflow_rag.retriever import IntentRetriever
from tokenflow_rag.stores.faiss import FaissStore
from tokenflow_rag.taxonomy import Taxonomy
from tokenflow_rag.text import clean_query
from tokenflow_rag.tokens import get_token_counter
from tokenflow_rag.types import Chunk, IntentPrediction

logger = logging.getLogger(__name__)

__all__ = ["HEADLINE_KS", "RetrievalBenchConfig", "run_retrieval_benchmark", "split_dev", "token_ratios"]

HEADLINE_KS = (3, 5, 10)
DEFAULT_ENTITY_K = 1
"""Per-intent k of the reported ``tokenflow`` point when no train split is given (chosen on the dev slices)."""
SUBSETS = ("all", "dev", "heldout")


@dataclass(frozen=True)
class RetrievalBenchConfig:
    """What to compare and how.

    Args:
        history_turns: Previous turns each method sees with the last user turn (0 = the turn alone):
            the baselines embed them with it, tokenflow resolves entities through them.
        fixed_ks: The k of the fixed top-k baseline.
        tokenflow_ks: Per-intent k of the tokenflow (and oracle) sweep.
        cutoff_quantiles: Score-cutoff thresholds, as quantiles of all top-20 scores.
        adaptive_tops: Candidate list lengths of the largest-gap cut.
        operating_k: Per-intent k of the reported ``tokenflow`` point (None: chosen on the calibration
            set when one is given, else :data:`DEFAULT_ENTITY_K`).
        tokenflow_embeds: What tokenflow embeds: ``"last_turn"`` (the history only resolves the
            entity, the turn's own words rank within it) or ``"query"`` (the same text as the baselines).
        shared_k: Several predicted entities share one budget of k (True) instead of k each (False).
        token_counter: Tokenizer of the token counts.
    """

    history_turns: int = 0
    fixed_ks: tuple[int, ...] = tuple(range(1, 21))
    tokenflow_ks: tuple[int, ...] = (1, 2, 3, 4, 5)
    cutoff_quantiles: tuple[float, ...] = tuple(round(q, 2) for q in np.arange(0.50, 1.0, 0.05))
    adaptive_tops: tuple[int, ...] = (5, 10, 20)
    operating_k: int | None = None
    tokenflow_embeds: str = "last_turn"
    shared_k: bool = True
    token_counter: str = "cl100k_base"

    def __post_init__(self) -> None:
        if not isinstance(self.history_turns, int) or self.history_turns < 0:
            raise ConfigError(f"history_turns must be an integer >= 0, got {self.history_turns!r}")
        for name in ("fixed_ks", "tokenflow_ks", "adaptive_tops"):
            values = getattr(self, name)
            if not values or any(not isinstance(v, int) or v < 1 for v in values):
                raise ConfigError(f"{name} must be a non-empty tuple of positive integers, got {values!r}")
        missing = [k for k in HEADLINE_KS if k not in self.fixed_ks]
        if missing:
            raise ConfigError(f"fixed_ks must include {list(HEADLINE_KS)} for the headline ratios; missing {missing}")
        if self.tokenflow_embeds not in ("last_turn", "query"):
            raise ConfigError(f"tokenflow_embeds must be 'last_turn' or 'query', got {self.tokenflow_embeds!r}")
        if self.operating_k is not None and self.operating_k not in self.tokenflow_ks:
            raise ConfigError(f"operating_k={self.operating_k} is not in tokenflow_ks {self.tokenflow_ks}")


def split_dev(dataset: RetrievalDataset, subset: str, *, dev_fraction: float = 0.3) -> RetrievalDataset:
    """Keep the ``dev`` slice, the ``heldout`` rest, or ``all`` queries, by a stable hash of the dialogue.

    All queries of one dialogue fall on the same side (a dialogue is known by its first turn), so
    settings chosen on ``dev`` are never chosen on the dialogues reported from ``heldout``.
    """
    if subset not in SUBSETS:
        raise ConfigError(f"subset must be one of {', '.join(SUBSETS)}, got {subset!r}")
    if not 0.0 < dev_fraction < 1.0:
        raise ConfigError(f"dev_fraction must be in (0, 1), got {dev_fraction!r}")
    if subset == "all":
        return dataset
    keep = [q for q in dataset.queries if _is_dev(q, dev_fraction) == (subset == "dev")]
    return RetrievalDataset(f"{dataset.name}[{subset}]", dataset.docs, tuple(keep), dataset.stats)


def _is_dev(query: RetrievalQuery, fraction: float) -> bool:
    first_turn = _strip_speaker(query.history[0]) if query.history else query.text
    return zlib.crc32(first_turn.encode("utf-8")) % 10_000 < fraction * 10_000


def query_text(query: RetrievalQuery, history_turns: int) -> str:
    """What a plain retriever embeds: the last user turn, after the previous ``history_turns`` turns."""
    turns = [*query.history[len(query.history) - history_turns :], query.text] if history_turns else [query.text]
    return "\n".join(_strip_speaker(t) for t in turns)


def _strip_speaker(turn: str) -> str:
    return turn[3:] if turn[:3] in ("U: ", "S: ") else turn


@dataclass
class _Bench:
    """Everything shared by the methods of one run: the index, vectors, tokens and gold sets."""

    store: FaissStore
    mt: MetadataTaxonomy
    queries: Sequence[RetrievalQuery]
    texts: list[str]
    vectors: np.ndarray
    tf_texts: list[str]
    tf_vectors: np.ndarray
    doc_tokens: dict[str, int]
    gold: list[set[str]]
    methods: dict[str, dict[str, float]] = field(default_factory=dict)
    curves: dict[str, list[str]] = field(default_factory=dict)
    sized: dict[int, _Sized] = field(default_factory=dict)

    def sized_taxonomy(self, k: int) -> _Sized:
        """The metadata taxonomy with every intent's k set to ``k`` (built once per k)."""
        if k not in self.sized:
            self.sized[k] = _Sized(self.mt.with_k(entity_k=k, group_k=k).taxonomy)
        return self.sized[k]

    def score(self, family: str, name: str, retrieved: Sequence[Sequence[str]]) -> None:
        tokens = [sum(self.doc_tokens[d] for d in ids) for ids in retrieved]
        found = [len(g.intersection(ids)) for g, ids in zip(self.gold, retrieved)]
        self.methods[name] = {
            "tokens_mean": float(np.mean(tokens)) if tokens else 0.0,
            "recall": float(np.mean([f / len(g) for f, g in zip(found, self.gold)])) if found else 0.0,
            "hit_rate": float(np.mean([f > 0 for f in found])) if found else 0.0,
            "docs_mean": float(np.mean([len(ids) for ids in retrieved])) if retrieved else 0.0,
        }
        self.curves.setdefault(family, []).append(name)


class _LookupEmbedder:
    """Serves the query vectors computed once for all methods (the retriever embeds by text)."""

    def __init__(self, texts: Sequence[str], vectors: np.ndarray, name: str) -> None:
        self._rows = {clean_query(t): i for i, t in enumerate(texts)}
        self._vectors = vectors
        self.name, self.dim = name, vectors.shape[1]

    def embed_query(self, text: str) -> np.ndarray:
        return self._vectors[self._rows[text]]

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self.embed_query(t) for t in texts])


class _MemoTaxonomy(Taxonomy):
    """A taxonomy whose ``expand`` runs in linear time and is memoised.

    ``Taxonomy.expand`` tests membership in a list, so expanding a domain with 2,500 entity children
    costs ~100 ms, paid on every domain-restricted query. The validated state of ``taxonomy`` is
    shared, not rebuilt (building a 5,000-intent taxonomy is itself quadratic).
    """

    def __init__(self, taxonomy: Taxonomy) -> None:  # no super().__init__(): the validated state is copied
        self.__dict__.update(vars(taxonomy))
        self._kids: dict[str, list[str]] = {}
        for intent in taxonomy:
            if intent.parent is not None:
                self._kids.setdefault(intent.parent, []).append(intent.name)
        self._expanded: dict[tuple[str, ...], tuple[str, ...]] = {}

    def expand(self, names: Iterable[str]) -> tuple[str, ...]:
        key = tuple(names)
        hit = self._expanded.get(key)
        if hit is None:
            out: dict[str, None] = {}
            queue = deque(key)
            while queue:
                name = queue.popleft()
                if name in out or name not in self:
                    continue
                out[name] = None
                queue.extend(self._kids.get(name, ()))
            hit = self._expanded[key] = tuple(out)
        return hit


class _Sized:
    """A classifier stand-in that carries only a taxonomy: predictions are made once, outside."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        self._taxonomy = _MemoTaxonomy(taxonomy)

    @property
    def taxonomy(self) -> Taxonomy:
        return self._taxonomy

    def predict(self, texts: Sequence[str]) -> list[IntentPrediction]:
        raise NotImplementedError("predictions are passed to retrieve_with_prediction")


def run_retrieval_benchmark(
    dataset: RetrievalDataset,
    embedder: Embedder,
    *,
    config: RetrievalBenchConfig | None = None,
    cache: EmbeddingCache | None = None,
    calibration: RetrievalDataset | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run every method on ``dataset`` and return the JSON-ready report.

    Args:
        dataset: Documents and the queries to report on.
        embedder: Embeds documents and queries (shared by all methods).
        config: Sweeps and options; defaults when omitted.
        cache: Embedding cache (None: embed everything in memory).
        calibration: Queries over the same documents (a train split, or the dev slice) on which the
            reported ``tokenflow`` point's per-intent k is chosen; never the reported queries.
        progress: Show progress bars.
    """
    config = config or RetrievalBenchConfig()
    cache = cache or EmbeddingCache(None)
    if not dataset.queries:
        raise ConfigError(f"{dataset.name} has no queries to evaluate (check the files, --subset and --limit)")
    started = time.perf_counter()
    docs = dataset.docs
    mt = MetadataTaxonomy.from_metadata([d.metadata for d in docs], texts=[d.text for d in docs], name=dataset.name)
    chunks = mt.tag_chunks([Chunk(d.id, d.text, dict(d.metadata)) for d in docs])
    doc_vectors = cache.embed(embedder, [d.text for d in docs], progress=progress, desc="embedding documents")
    store = FaissStore()
    store.add(chunks, doc_vectors)
    counter = get_token_counter(config.token_counter)
    doc_tokens = {d.id: counter.count(d.text) for d in docs}
    prepared = time.perf_counter()

    bench = _prepare(dataset, embedder, cache, config, store, mt, doc_tokens, progress)
    embedded = time.perf_counter()
    resolver = ContextResolver(NameClassifier(mt.taxonomy), max_turns=config.history_turns)
    predictions = [resolver.resolve(q.text, q.history) for q in bench.queries]
    _run_baselines(bench, config)
    _run_tokenflow(bench, config, "tokenflow", predictions, progress)
    _run_tokenflow(bench, config, "oracle_entity", [_oracle(mt, q, entity=True) for q in bench.queries], progress)
    _run_tokenflow(bench, config, "oracle_domain", [_oracle(mt, q, entity=False) for q in bench.queries], progress)

    operating_k, chosen_on = _operating_k(config, calibration, embedder, cache, progress)
    bench.methods["tokenflow"] = dict(bench.methods[f"tokenflow@k={operating_k}"])
    ratios, detail = token_ratios(bench.methods, bench.curves["tokenflow"])
    entity_names = set(mt.entity_intents.values())
    gold_entities = [{mt.entity_intent(m) for m in q.gold_metadata} for q in bench.queries]
    with_entity = [set(p.intents) & entity_names for p in predictions]
    return {
        "dataset": dataset.name,
        "embedder": embedder.name,
        "token_counter": config.token_counter,
        "documents": len(docs),
        "queries": len(bench.queries),
        "history_turns": config.history_turns,
        "taxonomy": {"intents": len(mt.taxonomy), "entities": len(mt.entity_intents), "groups": len(mt.group_intents)},
        "resolver": {
            "entity_predicted": _mean([bool(e) for e in with_entity]),
            "gold_entity_predicted": _mean([bool(e & g) for e, g in zip(with_entity, gold_entities)]),
            "no_intent": _mean([p.is_none for p in predictions]),
        },
        "operating_point": {"method": f"tokenflow@k={operating_k}", "chosen_on": chosen_on},
        "methods": bench.methods,
        "curves": bench.curves,
        "token_ratio_at_baseline_recall": ratios,
        "token_ratio_detail": detail,
        "curve_above_baselines": curve_above(bench.methods, bench.curves),
        "seconds": {
            "documents": round(prepared - started, 2),  # tag, embed (or load from the cache), index, count tokens
            "queries": round(embedded - prepared, 2),  # embed (or load from the cache)
            "methods": round(time.perf_counter() - embedded, 2),  # resolve and run every method (and calibration)
        },
    }


def _prepare(
    dataset: RetrievalDataset,
    embedder: Embedder,
    cache: EmbeddingCache,
    config: RetrievalBenchConfig,
    store: FaissStore,
    mt: MetadataTaxonomy,
    doc_tokens: dict[str, int],
    progress: bool,
) -> _Bench:
    texts = [clean_query(query_text(q, config.history_turns)) for q in dataset.queries]
    vectors = cache.embed(embedder, texts, progress=progress, desc="embedding queries")
    tf_texts, tf_vectors = texts, vectors
    if config.tokenflow_embeds == "last_turn" and config.history_turns:
        tf_texts = [clean_query(q.text) for q in dataset.queries]
        tf_vectors = cache.embed(embedder, tf_texts, progress=progress, desc="embedding last turns")
    gold = [set(q.gold) for q in dataset.queries]
    return _Bench(store, mt, dataset.queries, texts, vectors, tf_texts, tf_vectors, doc_tokens, gold)


def _run_baselines(bench: _Bench, config: RetrievalBenchConfig) -> None:
    depth = max(max(config.fixed_ks), max(config.adaptive_tops), 20)
    ranked = [bench.store.search(v, depth) for v in bench.vectors]
    ids = [[sc.chunk.id for sc in hits] for hits in ranked]
    scores = [np.array([sc.score for sc in hits]) for hits in ranked]
    for k in config.fixed_ks:
        bench.score("fixed_k", f"fixed_k@{k}", [row[:k] for row in ids])
    pooled = np.concatenate([s[:20] for s in scores]) if scores else np.zeros(1)
    for q in config.cutoff_quantiles:
        threshold = float(np.quantile(pooled, q))
        bench.score(
            "score_cutoff",
            f"score_cutoff@{threshold:.3f}",
            [[d for d, s in zip(r, sc) if s >= threshold] for r, sc in zip(ids, scores)],
        )
    for top in config.adaptive_tops:
        bench.score(
            "adaptive_k", f"adaptive_k@top{top}", [row[: _largest_gap_cut(sc[:top])] for row, sc in zip(ids, scores)]
        )


def _largest_gap_cut(scores: np.ndarray) -> int:
    """How many hits come before the largest drop in score (all of them for 0 or 1 hits)."""
    if len(scores) < 2:
        return len(scores)
    return int(np.argmax(scores[:-1] - scores[1:])) + 1


def _run_tokenflow(
    bench: _Bench, config: RetrievalBenchConfig, family: str, predictions: Sequence[IntentPrediction], progress: bool
) -> None:
    from tqdm.auto import tqdm

    lookup = _LookupEmbedder(bench.tf_texts, bench.tf_vectors, "precomputed")
    for k in tqdm(config.tokenflow_ks, desc=family, unit="setting", disable=not progress):
        # Fallback (no intent) is plain top-k at the same k.
        policy = KPolicy(base_k=k, max_k=k if config.shared_k else k * 8, min_confidence=0.5)
        retriever = IntentRetriever(bench.store, lookup, bench.sized_taxonomy(k), policy=policy, track_baseline=False)  # type: ignore[arg-type]
        retrieved = [retriever.retrieve_with_prediction(t, p).ids for t, p in zip(bench.tf_texts, predictions)]
        bench.score(family, f"{family}@k={k}", retrieved)


def _oracle(mt: MetadataTaxonomy, query: RetrievalQuery, *, entity: bool) -> IntentPrediction:
    names: list[str] = []
    for meta in query.gold_metadata:
        tags = mt.tags(meta)
        chosen = mt.entity_intent(meta) if entity else (tags[0] if tags else None)
        chosen = chosen or (tags[0] if tags else None)  # domain-wide documents have no entity
        if chosen and chosen not in names:
            names.append(chosen)
    return IntentPrediction(dict.fromkeys(names, 1.0), tuple(names))


def _operating_k(
    config: RetrievalBenchConfig,
    calibration: RetrievalDataset | None,
    embedder: Embedder,
    cache: EmbeddingCache,
    progress: bool,
) -> tuple[int, str]:
    """The reported point's per-intent k: the cheapest whose calibration recall reaches fixed top-5's."""
    if config.operating_k is not None:
        return config.operating_k, "given"
    if calibration is None or not calibration.queries:
        return DEFAULT_ENTITY_K, "default (chosen on the dev slices of the released validation sets)"
    sub = RetrievalBenchConfig(
        history_turns=config.history_turns, tokenflow_ks=config.tokenflow_ks, operating_k=config.tokenflow_ks[0]
    )
    report = run_retrieval_benchmark(calibration, embedder, config=sub, cache=cache, progress=progress)
    target = report["methods"]["fixed_k@5"]["recall"]
    for k in sorted(config.tokenflow_ks):
        if report["methods"][f"tokenflow@k={k}"]["recall"] >= target:
            return k, f"{calibration.name} ({len(calibration.queries)} queries): cheapest k reaching fixed_k@5 recall"
    return max(config.tokenflow_ks), f"{calibration.name}: no k reached fixed_k@5 recall; largest k"


def token_ratios(
    methods: dict[str, dict[str, float]], tokenflow: Sequence[str], ks: Sequence[int] = HEADLINE_KS
) -> tuple[dict[str, float | None], dict[str, Any]]:
    """``token_ratio_at_baseline_recall`` keyed "3", "5", "10", and which settings produced each ratio."""
    ratios: dict[str, float | None] = {}
    detail: dict[str, Any] = {}
    for k in ks:
        base = methods[f"fixed_k@{k}"]
        reaching = [n for n in tokenflow if methods[n]["recall"] >= base["recall"]]
        if not reaching or base["tokens_mean"] <= 0:
            ratios[str(k)], detail[str(k)] = None, {"fixed": f"fixed_k@{k}", "tokenflow": None}
            continue
        best = min(reaching, key=lambda n: methods[n]["tokens_mean"])
        ratios[str(k)] = round(methods[best]["tokens_mean"] / base["tokens_mean"], 4)
        detail[str(k)] = {
            "fixed": f"fixed_k@{k}",
            "tokenflow": best,
            "fixed_recall": base["recall"],
            "tokenflow_recall": methods[best]["recall"],
        }
    return ratios, detail


def curve_above(methods: dict[str, dict[str, float]], curves: dict[str, list[str]]) -> dict[str, Any]:
    """Which baseline points tokenflow's curve (linearly interpolated) matches or beats in recall at equal tokens.

    A baseline point cheaper than tokenflow's cheapest setting counts as not beaten.
    """
    points = sorted((methods[n]["tokens_mean"], methods[n]["recall"]) for n in curves.get("tokenflow", []))
    xs, ys = np.array([p[0] for p in points]), np.maximum.accumulate(np.array([p[1] for p in points]))
    beaten, missed = 0, []
    for family in ("fixed_k", "score_cutoff", "adaptive_k"):
        for name in curves.get(family, []):
            x, y = methods[name]["tokens_mean"], methods[name]["recall"]
            ok = bool(len(xs) > 0 and x >= xs[0] and float(np.interp(x, xs, ys)) >= y)
            beaten += ok
            if not ok:
                missed.append(name)
    return {"baseline_points": beaten + len(missed), "beaten": beaten, "all_beaten": not missed, "not_beaten": missed}


def _mean(values: Sequence[bool]) -> float:
    return float(np.mean(values)) if values else 0.0
