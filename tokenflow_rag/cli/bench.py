"""``tokenflow bench``: speed on this machine, as ratios measured in one run."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from tokenflow_rag.cli import POSITIVE_INT, add_result_options, check_options, check_out_file, emit
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


MIN_SIZE = 10
DIM = 512  # the dimension run_bench's synthetic vectors have (the default embedder's)


def parse_sizes(text: str) -> list[int]:
    """``"1000,10k,1e5"`` -> ``[1000, 10000, 100000]``, with a clear error for anything else: not a number,
    not a whole number, below 10, or more chunks than this machine's memory holds."""
    from tokenflow_rag.evaluation.bench import available_memory, bytes_per_chunk

    sizes = []
    for part in text.split(","):
        part = part.strip().lower()
        try:
            value = float(part[:-1]) * 1000 if part.endswith("k") else float(part)
        except ValueError:
            raise ConfigError(f"--sizes: {part!r} is not a number; pass e.g. --sizes 1000,10000,100000") from None
        if not math.isfinite(value):
            raise ConfigError(f"--sizes: {part!r} is not a finite number of chunks; pass e.g. --sizes 1000,10000")
        if value != int(value) or value < MIN_SIZE:
            raise ConfigError(f"--sizes: {part!r}: each size must be a whole number of chunks, at least {MIN_SIZE}")
        sizes.append(int(value))
    memory = available_memory()
    largest = max(sizes)
    if memory is not None and largest * bytes_per_chunk(DIM) > memory:
        # 1e12 would otherwise run for minutes, silently, before failing or swapping the machine to a halt.
        raise ConfigError(
            f"--sizes: {largest} chunks do not fit in memory: each needs about {bytes_per_chunk(DIM) / 1024:.0f} KiB "
            f"(a {DIM}-dim float32 vector, drawn in float64 and copied into FAISS, and its text), "
            f"{largest * bytes_per_chunk(DIM) / 2**30:,.1f} GiB in all, and {memory / 2**30:.1f} GiB is available; "
            f"at most {memory // bytes_per_chunk(DIM)} chunks fit"
        )
    return sizes


def run_bench_command(args: argparse.Namespace) -> int:
    """The handler of ``tokenflow bench``."""
    from tokenflow_rag.embeddings.base import check_embedder_name
    from tokenflow_rag.evaluation.bench import format_bench, run_bench

    if args.faiss_threads < 0:
        raise ConfigError(f"--faiss-threads must be >= 0, got {args.faiss_threads}")
    check_options(args, queries=POSITIVE_INT)
    sizes = parse_sizes(args.sizes)
    check_out_file(args.out, "--out")  # before the run: a bad path must not lose its result
    if not args.no_real:
        check_embedder_name(args.embedder)  # the real-embedder row runs last: a typo must not cost the run
    report = run_bench(
        sizes,
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
