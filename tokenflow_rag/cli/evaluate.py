"""``tokenflow eval``: ``classify`` (one classifier benchmark), ``all`` (every benchmark + BENCHMARKS.md), ``report``."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

from tokenflow_rag.cli import (
    FRACTION,
    NON_NEGATIVE_INT,
    POSITIVE_INT,
    add_result_options,
    at_least,
    check_options,
    check_out_file,
    check_out_folder,
    emit,
)
from tokenflow_rag.errors import ConfigError

_FORMATS = ("jsonl", "csv", "snips", "nlupp", "clinc", "crosswoz")


def register(sub: Any) -> None:
    evaluate = sub.add_parser("eval", help="benchmarks: classifier quality, retrieval savings, BENCHMARKS.md")
    eval_sub = evaluate.add_subparsers(dest="eval_command", metavar="EVAL_COMMAND")
    evaluate.set_defaults(func=lambda args: (evaluate.print_help(), 2)[1])
    _register_classify(eval_sub)
    _register_all(eval_sub)
    _register_report(eval_sub)
    try:
        retrieve = importlib.import_module("tokenflow_rag.cli.evaluate_retrieve")
    except ModuleNotFoundError as exc:
        if exc.name != "tokenflow_rag.cli.evaluate_retrieve":
            raise
    else:
        retrieve.register(eval_sub)


def _register_classify(eval_sub: Any) -> None:
    p = eval_sub.add_parser(
        "classify",
        help="train (or load) an intent classifier and score it, beside two baselines, on a test file",
        description=(
            "Scores tokenflow's rules, neural and hybrid classifiers and two baselines (TF-IDF char n-grams + "
            "logistic regression; frozen sentence embeddings + logistic regression) on --test. With --train, "
            "the taxonomy and its keywords come from the training labels and texts; with --model, a saved "
            "classifier is scored; with neither, the shipped default classifier is scored at the test file's "
            "label set (children mapped to parents)."
        ),
    )
    p.add_argument("--format", dest="fmt", required=True, choices=_FORMATS, help="how the files are laid out")
    p.add_argument(
        "--train",
        nargs="+",
        default=[],
        metavar="PATH",
        help="training file(s); for clinc: its train + oos_train lists",
    )
    p.add_argument(
        "--test", nargs="+", default=[], metavar="PATH", help="test file(s); for clinc: its test (or val) + oos lists"
    )
    p.add_argument("--model", metavar="DIR", help="score this saved classifier instead of training one")
    p.add_argument(
        "--domains", metavar="JSON", help="{domain: [intent, ...]} file (CLINC150 domains.json): score domains"
    )
    p.add_argument(
        "--mode",
        choices=("rules", "neural", "hybrid"),
        default="hybrid",
        help="tokenflow mode reported at the top level; 'rules' skips neural training (default hybrid)",
    )
    p.add_argument(
        "--holdout",
        type=float,
        metavar="FRACTION",
        help="no --test: hold this share of --train out as the test set (whole dialogues for crosswoz)",
    )
    p.add_argument("--cv", type=int, metavar="K", help="k-fold cross-validation over the --train fold files (NLU++)")
    p.add_argument("--max-train", type=int, metavar="N", help="train every method on a seeded subsample of N rows")
    p.add_argument("--epochs", type=int, help="neural training epochs (default: the trainer's)")
    p.add_argument("--batch-size", type=int, help="neural training batch size (default: the trainer's)")
    p.add_argument("--lr", type=float, help="peak learning rate of LoRA and head (default: the trainer's)")
    p.add_argument("--backbone", help="backbone of the neural model (default: the packaged all-MiniLM-L6-v2)")
    p.add_argument(
        "--mix",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="build Mix-style multi-intent training rows (default: on for --format snips)",
    )
    p.add_argument("--mix-size", type=int, default=20_000, metavar="N", help="Mix-style rows to build (default 20000)")
    p.add_argument("--seed", type=int, default=13, help="seed of subsampling, mixing and training (default 13)")
    p.add_argument(
        "--baselines", action=argparse.BooleanOptionalAction, default=True, help="also score the two baselines"
    )
    p.add_argument(
        "--embedder", help="embedder of the embedding baseline (default: minilm, use-multilingual for Chinese)"
    )
    p.add_argument(
        "--timing-queries", type=int, default=50, metavar="N", help="texts timed one by one per method (default 50)"
    )
    p.add_argument(
        "--threads", type=int, metavar="N", help="torch CPU threads (default: torch's; 1 is fastest on a busy machine)"
    )
    p.add_argument(
        "--calibrate-folds",
        type=int,
        metavar="K",
        help="with --model or the shipped model: also score the hybrid recalibrated on labelled rows of this "
        "text (what tokenflow calibrate does), cross-fitted: each of K folds of the test file is predicted after "
        "calibrating on the other K-1",
    )
    p.add_argument("--name", help="dataset name in the output")
    add_result_options(p)
    p.set_defaults(func=_classify)


def _register_all(eval_sub: Any) -> None:
    p = eval_sub.add_parser(
        "all",
        help="run every benchmark whose data is present, then regenerate BENCHMARKS.md and its plots",
        description="Datasets missing under --datasets are skipped with a one-line reason. Raw results go to "
        "--results (one JSON per benchmark), so `tokenflow eval report` can re-render without rerunning.",
    )
    p.add_argument(
        "--datasets", default="../shared/datasets", metavar="DIR", help="dataset folder (default ../shared/datasets)"
    )
    p.add_argument("--quick", action="store_true", help="small training sizes and one epoch: a smoke run in minutes")
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only these benchmarks (names as in the output)")
    p.add_argument(
        "--results", default="docs/results", metavar="DIR", help="where the JSON results go (default docs/results)"
    )
    p.add_argument("--out", default="BENCHMARKS.md", metavar="FILE", help="the report to write (default BENCHMARKS.md)")
    p.add_argument("--no-retrieval", action="store_true", help="skip the retrieval benchmarks")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="progress bars on stderr, also when it is a log file (default on)",
    )
    p.add_argument(
        "--json", action="store_true", help="machine-readable summary: benchmarks run, skipped, failed; files written"
    )
    p.set_defaults(func=_all)


def _register_report(eval_sub: Any) -> None:
    p = eval_sub.add_parser("report", help="re-render BENCHMARKS.md and its plots from saved JSON results")
    p.add_argument(
        "--results", default="docs/results", metavar="DIR", help="folder of JSON results (default docs/results)"
    )
    p.add_argument("--out", default="BENCHMARKS.md", metavar="FILE", help="the report to write (default BENCHMARKS.md)")
    p.add_argument("--json", action="store_true", help="machine-readable list of the files written")
    p.set_defaults(func=_report)


def _classify(args: argparse.Namespace) -> int:
    from tokenflow_rag.evaluation.classification import ClassifyConfig, cross_validate, format_classify, run_classify

    # Checked here, by flag, before any training: ClassifyConfig names its fields ("threads must be ...").
    check_options(
        args,
        threads=POSITIVE_INT,
        epochs=POSITIVE_INT,
        batch_size=POSITIVE_INT,
        max_train=POSITIVE_INT,
        mix_size=POSITIVE_INT,
        timing_queries=NON_NEGATIVE_INT,
        cv=at_least(2),
        calibrate_folds=(at_least(2)[0], ">= 2 (e.g. 5)"),  # as ClassifyConfig words it, by the flag
        lr=(FRACTION[0], "a number in (0, 1) (e.g. 2e-3)"),
        holdout=(FRACTION[0], "a number in (0, 1) (e.g. 0.2)"),
    )
    if args.cv and (args.test or args.model or args.holdout):
        raise ConfigError("--cv takes the fold files with --train only (no --test, --model or --holdout)")
    if args.holdout is not None and (not args.train or args.test or args.model):
        raise ConfigError("--holdout carves the test set out of the --train files: pass --train, not --test or --model")
    if args.calibrate_folds is not None and args.train and not args.model:
        raise ConfigError(
            "--calibrate-folds recalibrates a trained model (--model, or the shipped one); it cannot be combined "
            "with --train"
        )
    if not args.test and args.holdout is None and not args.cv:
        raise ConfigError("no test set: pass --test FILE(s), or --holdout FRACTION or --cv K with --train")
    check_out_file(args.out, "--out")  # before the run: a bad path must not lose its result
    if args.embedder is not None:
        from tokenflow_rag.embeddings.base import check_embedder_name

        check_embedder_name(args.embedder)  # the embedding baseline is fitted after training: fail now
    config = ClassifyConfig(
        fmt=args.fmt,
        test=tuple(args.test),
        train=tuple(args.train),
        model=args.model,
        domains=args.domains,
        mode=args.mode,
        holdout=args.holdout,
        mix=args.mix,
        mix_size=args.mix_size,
        max_train=args.max_train,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        backbone=args.backbone,
        seed=args.seed,
        baselines=args.baselines,
        embedder=args.embedder,
        timing_queries=args.timing_queries,
        threads=args.threads,
        progress=sys.stderr.isatty() if args.progress is None else args.progress,
        name=args.name,
        calibrate_folds=args.calibrate_folds,
    )
    result = cross_validate(config, args.cv) if args.cv else run_classify(config)
    if args.out:
        from tokenflow_rag._io import atomic_write_text

        atomic_write_text(Path(args.out), json.dumps(result, ensure_ascii=False, indent=1))
    emit(result, as_json=args.json, text=format_classify)
    return 0


def _all(args: argparse.Namespace) -> int:
    from tokenflow_rag.evaluation.suite import run_suite

    check_out_file(args.out, "--out", example="BENCHMARKS.md")  # written after every benchmark: check it first
    check_out_folder(args.results, "--results")
    summary = run_suite(
        datasets=Path(args.datasets),
        results_dir=Path(args.results),
        out=Path(args.out),
        quick=args.quick,
        only=args.only,
        retrieval=not args.no_retrieval,
        progress=args.progress,
    )
    emit(
        {"out": args.out, "results": args.results, **summary},
        as_json=args.json,
        text=lambda s: (
            f"wrote {s['out']} ({s['ran']} benchmarks run, {s['skipped']} skipped) and results in {s['results']}/"
        ),
    )
    return 0


def _report(args: argparse.Namespace) -> int:
    from tokenflow_rag.evaluation.report import render_report

    if not Path(args.results).is_dir():
        raise ConfigError(f"--results {args.results}: no such folder; run `tokenflow eval all` first")
    check_out_file(args.out, "--out", example="BENCHMARKS.md")
    written = render_report(Path(args.results), Path(args.out))
    emit(
        {"written": [str(p) for p in written]},
        as_json=args.json,
        text=lambda s: f"wrote {', '.join(s['written'])}",
    )
    return 0
