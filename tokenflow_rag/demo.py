"""The demo: index sample_corpus, run its labelled queries, compare with plain fixed-k retrieval."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tokenflow_rag.errors import DataFormatError


@dataclass(frozen=True)
class DemoRow:
    """One labelled query: what tokenflow returned against plain top-k."""

    id: str
    lang: str
    query: str
    gold_intents: list[str]
    intents: list[str]
    k: int
    fallback: bool
    tokens: int
    baseline_tokens: int
    gold: list[str]
    found: int
    baseline_found: int


def find_sample_corpus() -> Path:
    """sample_corpus/ of a source checkout (editable install) or of the working directory."""
    for candidate in (Path(__file__).resolve().parents[1] / "sample_corpus", Path.cwd() / "sample_corpus"):
        if (candidate / "queries.jsonl").is_file():
            return candidate
    raise DataFormatError(
        "sample_corpus/ not found: run from a checkout of tokenflow_rag, or pass --corpus DIR "
        "(a directory with docs/ and queries.jsonl)"
    )


def load_queries(path: Path) -> list[dict[str, Any]]:
    """The labelled queries: ``{"id", "lang", "query", "intents", "gold"}`` per line."""
    rows = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            rows.append(
                {
                    "id": str(row["id"]),
                    "lang": row.get("lang", ""),
                    "query": row["query"],
                    "intents": list(row.get("intents", [])),
                    "gold": list(row.get("gold", [])),
                }
            )
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DataFormatError(f"{path}, line {line_no}: expected {{id, query, intents, gold}} ({exc})") from None
    return rows


def run_demo(
    corpus_dir: str | Path | None = None, *, embedder: str | None = None, progress: bool = True, **options: Any
) -> dict[str, Any]:
    """Index the corpus, run every labelled query through tokenflow and plain top-``base_k``.

    Returns a dict with ``rows`` (one per query) and ``totals`` (tokens saved, gold recall of both).
    """
    from tokenflow_rag.classifiers import load_default_classifier
    from tokenflow_rag.corpus import load_corpus
    from tokenflow_rag.index import build_index

    root = Path(corpus_dir) if corpus_dir else find_sample_corpus()
    docs = root / "docs" if (root / "docs").is_dir() else root
    chunks = load_corpus(docs)
    queries = load_queries(root / "queries.jsonl")
    retriever = build_index(
        chunks, embedder=embedder, classifier=load_default_classifier(), progress=progress, **options
    )
    base_k = retriever.policy.base_k

    rows = []
    results = retriever.retrieve_batch([q["query"] for q in queries])
    plain_vectors = retriever.embedder.embed_documents([q["query"] for q in queries])
    for q, result, vector in zip(queries, results, plain_vectors):
        baseline_ids = {sc.chunk.id for sc in retriever.store.search(vector, base_k)}
        got = set(result.ids)
        acc = result.accounting
        rows.append(
            DemoRow(
                id=q["id"],
                lang=q["lang"],
                query=q["query"],
                gold_intents=q["intents"],
                intents=list(acc.intents),
                k=acc.k,
                fallback=acc.fallback,
                tokens=acc.tokens,
                baseline_tokens=acc.baseline_tokens or 0,
                gold=q["gold"],
                found=len(got & set(q["gold"])),
                baseline_found=len(baseline_ids & set(q["gold"])),
            )
        )
    return {
        "corpus": str(root),
        "chunks": len(chunks),
        "embedder": retriever.embedder.name,
        "classifier": type(retriever.classifier).__name__,
        "base_k": base_k,
        "rows": [asdict(r) for r in rows],
        "totals": summarize(rows),
    }


def summarize(rows: list[DemoRow]) -> dict[str, Any]:
    """Totals: tokens of both, tokens saved, mean gold recall and any-gold hit rate of both."""
    tokens = sum(r.tokens for r in rows)
    baseline = sum(r.baseline_tokens for r in rows)
    with_gold = [r for r in rows if r.gold]
    n = max(len(with_gold), 1)
    return {
        "queries": len(rows),
        "tokens": tokens,
        "baseline_tokens": baseline,
        "tokens_saved_pct": round(100.0 * (baseline - tokens) / baseline, 1) if baseline else 0.0,
        "gold_recall": round(sum(r.found / len(r.gold) for r in with_gold) / n, 3),
        "baseline_gold_recall": round(sum(r.baseline_found / len(r.gold) for r in with_gold) / n, 3),
        "hit_rate": round(sum(r.found > 0 for r in with_gold) / n, 3),
        "baseline_hit_rate": round(sum(r.baseline_found > 0 for r in with_gold) / n, 3),
        "fallbacks": sum(r.fallback for r in rows),
    }


def format_demo(report: dict[str, Any]) -> str:
    """The demo report as a table a person reads in a terminal."""
    base_k = report["base_k"]
    lines = [
        f"corpus: {report['corpus']}  chunks: {report['chunks']}  embedder: {report['embedder']}  "
        f"classifier: {report['classifier']}  baseline: fixed top-{base_k}",
        "",
        f"{'id':<6}{'query':<42}{'intents':<30}{'k':>3}{'tokens':>8}{'fixed':>7}{'gold':>6}{'fixed':>7}",
    ]
    for r in report["rows"]:
        query = r["query"] if _width(r["query"]) <= 40 else _clip(r["query"], 38) + ".."
        intents = ",".join(r["intents"]) or ("none" + (" (fallback)" if r["fallback"] else ""))
        gold = f"{r['found']}/{len(r['gold'])}" if r["gold"] else "-"
        fixed = f"{r['baseline_found']}/{len(r['gold'])}" if r["gold"] else "-"
        pad = 42 - _width(query)
        lines.append(
            f"{r['id']:<6}{query}{' ' * max(pad, 1)}{intents[:29]:<30}{r['k']:>3}{r['tokens']:>8}"
            f"{r['baseline_tokens']:>7}{gold:>6}{fixed:>7}"
        )
    t = report["totals"]
    lines += [
        "",
        f"queries: {t['queries']}   tokens: tokenflow {t['tokens']} vs fixed top-{base_k} {t['baseline_tokens']}"
        f"   saved: {t['tokens_saved_pct']}%",
        f"gold recall: tokenflow {t['gold_recall']:.3f} vs fixed {t['baseline_gold_recall']:.3f}   "
        f"any-gold hit rate: {t['hit_rate']:.3f} vs {t['baseline_hit_rate']:.3f}   fallbacks: {t['fallbacks']}",
    ]
    return "\n".join(lines)


def _width(text: str) -> int:
    """Terminal width: CJK characters take two columns."""
    return sum(2 if "\u2e80" <= ch <= "\uffef" else 1 for ch in text)


def _clip(text: str, width: int) -> str:
    out, used = [], 0
    for ch in text:
        w = _width(ch)
        if used + w > width:
            break
        out.append(ch)
        used += w
    return "".join(out)
