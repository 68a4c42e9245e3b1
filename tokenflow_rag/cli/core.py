"""``tokenflow demo``, ``tokenflow index`` and ``tokenflow query``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tokenflow_rag.cli import POSITIVE_INT, check_options, check_out_dir, emit
from tokenflow_rag.errors import ConfigError


def register(sub: Any) -> None:
    demo = sub.add_parser(
        "demo", help="index sample_corpus and compare tokenflow with fixed top-k on its labelled queries"
    )
    demo.add_argument("--corpus", help="corpus directory with docs/ and queries.jsonl (default: sample_corpus/)")
    demo.add_argument("--embedder", help="embedder name (default: use-multilingual)")
    demo.add_argument("--json", action="store_true", help="machine-readable output")
    demo.set_defaults(func=_demo)

    index = sub.add_parser("index", help="tag and embed a corpus directory into a FAISS index")
    index.add_argument("corpus", metavar="CORPUS_DIR", help=".md (split at ## headings), .txt or .jsonl files")
    index.add_argument("--out", required=True, metavar="INDEX_DIR", help="where to write the index")
    index.add_argument("--embedder", help="embedder name (default: use-multilingual)")
    index.add_argument("--taxonomy", help="taxonomy YAML (default: the business taxonomy)")
    # build_index tags documents with the keyword rules of the classifier's taxonomy, never its network
    # (trained on short queries, not documents), and the index does not store the classifier.
    index.add_argument(
        "--model",
        metavar="MODEL_DIR",
        help="trained model directory whose taxonomy (intents and keyword rules) tags the chunks, instead of the "
        "shipped one; tagging uses the rules, not the network, and the model is not saved with the index: "
        "query with the same --model. One that cannot be loaded is an error",
    )
    index.add_argument("--json", action="store_true", help="machine-readable output")
    index.set_defaults(func=_index)

    query = sub.add_parser("query", help="retrieve chunks for a query from an index")
    query.add_argument("index", metavar="INDEX_DIR")
    query.add_argument("text", metavar="TEXT")
    query.add_argument("-k", type=int, help="explicit k (wins over intent sizing)")
    query.add_argument("--budget", type=int, help="hard token budget for the returned chunks")
    query.add_argument(
        "--model",
        metavar="MODEL_DIR",
        help="trained model directory to classify the query with (default: the shipped model); one that cannot "
        "be loaded is an error",
    )
    query.add_argument("--json", action="store_true", help="machine-readable output")
    query.set_defaults(func=_query)


def _classifier(args: argparse.Namespace, taxonomy: Any = None) -> Any:
    from tokenflow_rag.classifiers import HybridClassifier, load_default_classifier

    if getattr(args, "model", None):
        # As in tokenflow classify: a model asked for by name that cannot load is an error, not a silent
        # (and differently tagged or classified) run on the rules alone.
        return HybridClassifier.from_pretrained(args.model, taxonomy, strict=True)
    return load_default_classifier(taxonomy)


def _demo(args: argparse.Namespace) -> int:
    from tokenflow_rag.demo import format_demo, run_demo

    report = run_demo(args.corpus, embedder=args.embedder, progress=not args.json)
    emit(report, as_json=args.json, text=format_demo)
    return 0


def _index(args: argparse.Namespace) -> int:
    from tokenflow_rag.corpus import load_corpus
    from tokenflow_rag.index import MANIFEST, build_index, save_index
    from tokenflow_rag.taxonomy import load_taxonomy

    check_out_dir(args.out, "--out", marker=MANIFEST, kind="index")  # before tagging and embedding, not after
    chunks = load_corpus(args.corpus)
    classifier = _classifier(args, load_taxonomy(args.taxonomy) if args.taxonomy else None)
    retriever = build_index(chunks, embedder=args.embedder, classifier=classifier, progress=not args.json)
    save_index(retriever, args.out)
    tagged = sum(1 for c in retriever.store if c.intents)
    summary = {"index": args.out, "chunks": len(chunks), "tagged": tagged, **retriever.describe()}
    emit(
        summary,
        as_json=args.json,
        text=lambda s: (
            f"indexed {s['chunks']} chunks ({s['tagged']} tagged with intents) into {s['index']} "
            f"with {s['embedder']} embeddings"
        ),
    )
    return 0


def _query(args: argparse.Namespace) -> int:
    from tokenflow_rag.index import load_index, read_manifest

    check_options(args, k=POSITIVE_INT, budget=POSITIVE_INT)
    if Path(args.index).exists() and not Path(args.index).is_dir():
        raise ConfigError(f"INDEX_DIR {args.index} is a file; pass the directory `tokenflow index --out` wrote")
    read_manifest(args.index)  # a clear error for a missing index before any model loads
    classifier = _classifier(args) if args.model else None
    retriever = load_index(args.index, classifier=classifier)
    result = retriever.retrieve(args.text, k=args.k, token_budget=args.budget)
    emit(result.to_dict(), as_json=args.json, text=_format_result)
    return 0


def _format_result(data: dict[str, Any]) -> str:
    intents = ", ".join(f"{i} ({data['scores'][i]:.2f})" for i in data["intents"]) or "none"
    lines = [
        f"intents: {intents}",
        f"k: {data['k']} ({data['k_reason']}), filter: {data['filter_mode']}",
        f"tokens: {data['tokens']} (fixed top-{data['baseline_k']}: {data['baseline_tokens']})",
        "",
    ]
    for i, chunk in enumerate(data["chunks"], start=1):
        text = " ".join(chunk["text"].split())
        lines.append(f"{i}. [{chunk['score']:.3f}] {chunk['id']}  ({', '.join(chunk['intents']) or 'untagged'})")
        lines.append(f"   {text[:200]}{'...' if len(text) > 200 else ''}")
    return "\n".join(lines)
