"""``tokenflow eval retrieve``: tokens against gold recall on a knowledge-grounded dialogue benchmark."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tokenflow_rag.cli import (
    FRACTION,
    NON_NEGATIVE_INT,
    POSITIVE_INT,
    add_result_options,
    check_options,
    check_out_file,
    check_out_folder,
    emit,
)
from tokenflow_rag.errors import ConfigError

_DSTC_FORMATS = ("dstc11", "dstc9")
_FORMATS = (*_DSTC_FORMATS, "crosswoz")


def register(eval_sub: Any) -> None:
    """Add ``retrieve`` under ``tokenflow eval``."""
    p = eval_sub.add_parser(
        "retrieve",
        help="compare tokens sent and gold recall: fixed top-k, score cutoff, adaptive-k, tokenflow, oracle tags",
        description="Every method uses the same embedder, FAISS index and queries. tokenflow's intents come from "
        "the documents' metadata (entity names, domains), never from the evaluated queries.",
    )
    p.add_argument("--format", required=True, choices=_FORMATS, dest="fmt", help="benchmark file format")
    dstc = p.add_argument_group("dstc11 / dstc9 files")
    dstc.add_argument("--knowledge", metavar="FILE", help="knowledge.json")
    dstc.add_argument("--logs", metavar="FILE", help="logs.json of the evaluated split")
    dstc.add_argument("--labels", metavar="FILE", help="labels.json of the evaluated split")
    dstc.add_argument("--train-logs", metavar="FILE", help="logs.json of a train split (chooses the reported k)")
    dstc.add_argument("--train-labels", metavar="FILE", help="labels.json of the train split")
    cw = p.add_argument_group("crosswoz files")
    cw.add_argument("--dialogues", metavar="ZIP", help="dialogues of the evaluated split (val.json.zip or .json)")
    cw.add_argument("--database", metavar="DIR", help="folder with attraction/hotel/restaurant/metro_db.json")
    cw.add_argument("--train-dialogues", metavar="ZIP", help="dialogues of a train split (chooses the reported k)")
    p.add_argument("--embedder", help="embedder name (default: the package default, use-multilingual)")
    p.add_argument(
        "--history",
        type=int,
        default=0,
        metavar="N",
        help="previous turns given to every method with the last user turn (default 0)",
    )
    p.add_argument(
        "--subset",
        choices=("all", "dev", "heldout"),
        default="all",
        help="all queries, or the dev slice / the held-out rest, split by dialogue (default all)",
    )
    p.add_argument(
        "--dev-fraction", type=float, default=0.3, metavar="F", help="share of dialogues in the dev slice (default 0.3)"
    )
    p.add_argument("--limit", type=int, metavar="N", help="evaluate only the first N queries (quick runs)")
    p.add_argument("--operating-k", type=int, metavar="K", help="per-intent k of the reported 'tokenflow' point")
    p.add_argument(
        "--cache-dir", metavar="DIR", help="embedding cache (default ~/.cache/tokenflow_rag or $TOKENFLOW_CACHE_DIR)"
    )
    p.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    p.add_argument("--plot", metavar="PNG", help="also write a tokens-vs-recall plot")
    add_result_options(p)
    p.set_defaults(func=run_retrieve)


def load_benchmark(args: argparse.Namespace) -> tuple[Any, Any]:
    """The evaluated dataset and the optional calibration (train) dataset named by the arguments."""
    from tokenflow_rag.errors import DataFormatError

    _check_paths(args)
    try:
        return _load(args)
    except DataFormatError as exc:
        raise DataFormatError(f"{exc} (check that --format {args.fmt} matches these files)") from exc
    except FileNotFoundError as exc:  # e.g. a database folder without the expected files
        raise ConfigError(str(exc)) from exc


def _check_paths(args: argparse.Namespace) -> None:
    for name in ("knowledge", "logs", "labels", "train_logs", "train_labels", "dialogues", "train_dialogues"):
        value = getattr(args, name)
        if value and not Path(value).is_file():
            raise ConfigError(f"--{name.replace('_', '-')} {value}: no such file")
    if args.database and not Path(args.database).is_dir():
        raise ConfigError(f"--database {args.database}: no such folder")


def _load(args: argparse.Namespace) -> tuple[Any, Any]:
    from tokenflow_rag.evaluation.retrieval_datasets import load_crosswoz_retrieval, load_retrieval

    if args.fmt in _DSTC_FORMATS:
        _require(args, ("knowledge", "logs", "labels"), forbidden=("dialogues", "database", "train_dialogues"))
        dataset = load_retrieval(args.fmt, knowledge=args.knowledge, logs=args.logs, labels=args.labels)
        calibration = None
        if args.train_logs or args.train_labels:
            _require(args, ("train_logs", "train_labels"), forbidden=())
            calibration = load_retrieval(
                args.fmt, knowledge=args.knowledge, logs=args.train_logs, labels=args.train_labels
            )
        source = args.knowledge
    else:
        _require(
            args, ("dialogues", "database"), forbidden=("knowledge", "logs", "labels", "train_logs", "train_labels")
        )
        dataset = load_crosswoz_retrieval(args.dialogues, args.database)
        calibration = load_crosswoz_retrieval(args.train_dialogues, args.database) if args.train_dialogues else None
        source = args.database
    if not dataset.docs:
        raise ConfigError(f"{source} holds no documents in the {args.fmt} layout; is --format {args.fmt} right for it?")
    return dataset, calibration


def _require(args: argparse.Namespace, needed: tuple[str, ...], *, forbidden: tuple[str, ...]) -> None:
    flag = lambda name: "--" + name.replace("_", "-")  # noqa: E731
    missing = [flag(n) for n in needed if not getattr(args, n)]
    if missing:
        raise ConfigError(f"--format {args.fmt} needs {', '.join(missing)}")
    stray = [flag(n) for n in forbidden if getattr(args, n)]
    if stray:
        raise ConfigError(f"{', '.join(stray)} do not apply to --format {args.fmt}; check the --format flag")


def run_retrieve(args: argparse.Namespace) -> int:
    """The handler of ``tokenflow eval retrieve``."""
    from dataclasses import replace

    from tokenflow_rag.embeddings import get_embedder
    from tokenflow_rag.evaluation.cache import EmbeddingCache, default_cache_dir
    from tokenflow_rag.evaluation.retrieval import RetrievalBenchConfig, run_retrieval_benchmark, split_dev

    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {args.limit}")
    check_options(args, history=NON_NEGATIVE_INT, operating_k=POSITIVE_INT, dev_fraction=FRACTION)
    if args.operating_k is not None and args.operating_k not in RetrievalBenchConfig.tokenflow_ks:
        ks = ", ".join(map(str, RetrievalBenchConfig.tokenflow_ks))
        raise ConfigError(f"--operating-k must be one of the per-intent k measured ({ks}), got {args.operating_k}")
    # Outputs are written after the whole run: a bad path must fail now, not lose the result.
    check_out_file(args.out, "--out")
    check_out_file(args.plot, "--plot", example="retrieval.png")
    if args.plot:
        from tokenflow_rag.evaluation.plots import check_plot_path

        try:
            check_plot_path(args.plot)
        except ConfigError as exc:
            raise ConfigError(f"--plot {exc}") from None
    if not args.no_cache:
        check_out_folder(args.cache_dir, "--cache-dir")
    dataset, calibration = load_benchmark(args)
    if calibration is None and args.subset == "heldout":
        calibration = split_dev(dataset, "dev", dev_fraction=args.dev_fraction)
    dataset = split_dev(dataset, args.subset, dev_fraction=args.dev_fraction)
    if args.limit is not None:
        dataset = replace(dataset, queries=dataset.queries[: args.limit])
        calibration = replace(calibration, queries=calibration.queries[: args.limit]) if calibration else None
    config = RetrievalBenchConfig(history_turns=args.history, operating_k=args.operating_k)
    cache = EmbeddingCache(None if args.no_cache else (args.cache_dir or default_cache_dir()))
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    report = run_retrieval_benchmark(
        dataset, get_embedder(args.embedder), config=config, cache=cache, calibration=calibration, progress=progress
    )
    report["format"] = args.fmt
    report["subset"] = args.subset
    report["limit"] = args.limit  # a --limit run must not read like a full one
    report["dev_fraction"] = args.dev_fraction
    if args.plot:
        report["plot"] = args.plot
    if args.out:  # the result first: a plot that cannot be drawn must not lose it
        import json

        from tokenflow_rag._io import atomic_write_text

        atomic_write_text(Path(args.out), json.dumps(report, ensure_ascii=False, indent=1))
    if args.plot:
        from tokenflow_rag.evaluation.plots import plot_retrieval

        plot_retrieval(report, args.plot)
    emit(report, as_json=args.json, text=format_retrieve)
    return 0


def format_retrieve(report: dict[str, Any]) -> str:
    """A plain-text summary: the headline ratios and the main points of each curve."""
    m = report["methods"]
    lines = [
        f"{report['dataset']}: {report['queries']} queries, {report['documents']} documents, embedder {report['embedder']}, "
        f"history {report['history_turns']} turns",
        f"resolver: entity predicted for {report['resolver']['entity_predicted']:.1%} of queries, "
        f"the gold entity for {report['resolver']['gold_entity_predicted']:.1%}",
        "",
        f"{'method':<28} {'tokens':>9} {'recall':>7} {'hit':>6}",
    ]
    shown = [f"fixed_k@{k}" for k in (1, 3, 5, 10, 20)] + list(report["curves"].get("adaptive_k", []))
    shown += list(report["curves"].get("tokenflow", [])) + list(report["curves"].get("oracle_entity", []))[:3]
    for name in shown:
        if name in m:
            lines.append(
                f"{name:<28} {m[name]['tokens_mean']:>9.1f} {m[name]['recall']:>7.3f} {m[name]['hit_rate']:>6.3f}"
            )
    ratios = ", ".join(
        f"k={k}: {'n/a' if v is None else f'{v:.3f}'}" for k, v in report["token_ratio_at_baseline_recall"].items()
    )
    above = report["curve_above_baselines"]
    lines += [
        "",
        f"token ratio at fixed-k recall: {ratios}",
        f"tokenflow's curve beats {above['beaten']} of {above['baseline_points']} baseline points",
    ]
    return "\n".join(lines)
