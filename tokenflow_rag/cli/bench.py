"""``tokenflow bench``: speed on this machine, as ratios measured in one run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tokenflow_rag.cli import add_result_options, emit
from tokenflow_rag.errors import ConfigError


def register(sub: Any) -> None:
    """Add ``tokenflow bench``."""
    p = sub.add_parser(
        "bench",
        help="time classification, tagging, indexing and tokenflow retrieval against the plain search it wraps",
        description="Synthetic corpora (random unit vectors, random tags, random text) of each size, so embedding "
        "cost does not drown the rest; plus one end-to-end row with a real embedder on sample_corpus.",
    )
    p.add_argument(
        "--sizes",
        default="1000,10000,100000",
        metavar="N,N,...",
        help="corpus sizes in chunks (default 1000,10000,100000)",
    )
    p.add_argument("--queries", type=int, default=200, metavar="N", help="queries timed per size (default 200)")
    p.add_argument(
        "--embedder", default="default", help="real embedder of the sample_corpus row (default: the package default)"
    )
    p.add_argument("--no-real", action="store_true", help="skip the real-embedder row")
    p.add_argument(
        "--faiss-threads",
        type=int,
        default=1,
        metavar="N",
        help="FAISS OpenMP threads during the run (default 1; 0 = FAISS's own default)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic data")
    p.add_argument("--int8", action="store_true", help="serve the default classifier's network with int8 linear layers")
    p.add_argument(
        "--partitions",
        action="store_true",
        help="FaissStore(partition_by_intent=True): restricted searches read per-intent copies of the vectors",
    )
    add_result_options(p)
    p.set_defaults(func=run_bench_command)


def parse_sizes(text: str) -> list[int]:
    """``"1000,10k,1e5"`` -> ``[1000, 10000, 100000]``, with a clear error for anything else."""
    sizes = []
    for part in text.split(","):
        part = part.strip().lower()
        try:
            sizes.append(int(float(part[:-1]) * 1000) if part.endswith("k") else int(float(part)))
        except ValueError:
            raise ConfigError(f"--sizes: {part!r} is not a number; pass e.g. --sizes 1000,10000,100000") from None
    return sizes


def run_bench_command(args: argparse.Namespace) -> int:
    """The handler of ``tokenflow bench``."""
    from tokenflow_rag.evaluation.bench import format_bench, run_bench

    if args.faiss_threads < 0:
        raise ConfigError(f"--faiss-threads must be >= 0, got {args.faiss_threads}")
    report = run_bench(
        parse_sizes(args.sizes),
        queries=args.queries,
        real_embedder=None if args.no_real else args.embedder,
        seed=args.seed,
        faiss_threads=args.faiss_threads or None,
        int8=args.int8,
        partition_by_intent=args.partitions,
        progress=sys.stderr.isatty() if args.progress is None else args.progress,
    )
    if args.out:
        import json

        from tokenflow_rag._io import atomic_write_text

        atomic_write_text(Path(args.out), json.dumps(report, ensure_ascii=False, indent=1))
    emit(report, as_json=args.json, text=format_bench)
    return 0
