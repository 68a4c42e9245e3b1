"""``tokenflow train`` (fit the neural intent model and calibrate the hybrid), ``tokenflow calibrate`` and
``tokenflow classify``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from tokenflow_rag.cli import (
    FRACTION,
    POSITIVE_INT,
    POSITIVE_NUMBER,
    check_in_files,
    check_options,
    check_out_dir,
    emit,
)
from tokenflow_rag.errors import ConfigError


def register(sub: Any) -> None:
    train = sub.add_parser(
        "train",
        help="train the neural intent classifier (LoRA) on labelled texts and calibrate the hybrid",
        description='DATA: JSONL rows {"text": ..., "intents": [...]} ([] = no intent) or CSV with header '
        "text,intents (intents separated by | or ;). A dev split is held out for early stopping and calibration.",
    )
    train.add_argument("data", nargs="+", metavar="DATA", help=".jsonl or .csv training file(s)")
    train.add_argument("--out", required=True, metavar="MODEL_DIR", help="directory to write the model to")
    train.add_argument("--taxonomy", help="taxonomy YAML (default: the business taxonomy)")
    train.add_argument("--backbone", help="model folder or cached hub id (default: the packaged all-MiniLM-L6-v2)")
    train.add_argument("--epochs", type=int, default=8, help="most epochs (early stopping on dev micro-F1; default 8)")
    train.add_argument("--seed", type=int, default=13, help="random seed: same data + seed = same model (default 13)")
    train.add_argument(
        "--dev",
        nargs="+",
        metavar="DEV",
        help="separate dev file(s) for early stopping and calibration (default: hold out --dev-fraction of DATA); "
        "dev text written apart from DATA gives thresholds that hold on new text",
    )
    train.add_argument(
        "--dev-fraction",
        type=float,
        help="share of DATA held out as dev (default 0.15 without --dev, none with it); with --dev, the held-out "
        "rows join the dev file's, so calibration sees text like DATA as well as text written apart from it",
    )
    train.add_argument("--batch-size", type=int, default=32, help="examples per step (default 32)")
    train.add_argument(
        "--lr", type=float, default=5e-3, help="peak learning rate of LoRA, pooler and head (default 5e-3)"
    )
    train.add_argument(
        "--rule-weight",
        default="0.3",
        metavar="W",
        help="weight of the rules in the hybrid's fused score, the model's is 1 - W (default 0.3); "
        "'auto' chooses it on the dev data (best with a --dev file written apart from DATA)",
    )
    train.add_argument(
        "--no-ngrams",
        dest="ngrams",
        action="store_false",
        help="leave out the character n-gram model the hybrid averages with the network (default: fit it, "
        "a few seconds)",
    )
    # Unset flags keep LoraSettings' defaults; the help repeats them (a test keeps the two equal) because
    # importing the classifiers here would slow every tokenflow command's start by ~90 ms.
    lora = train.add_argument_group("LoRA adapters")
    lora.add_argument("--lora-r", type=int, metavar="R", help="rank of the LoRA update (default 8)")
    lora.add_argument(
        "--lora-alpha", type=float, metavar="A", help="LoRA scaling, the update times alpha / r (default 16)"
    )
    lora.add_argument("--lora-dropout", type=float, metavar="P", help="LoRA dropout (default 0.1)")
    lora.add_argument(
        "--lora-targets",
        nargs="+",
        metavar="LAYER",
        help="linear layers to adapt, e.g. query key value intermediate.dense output.dense (default: the "
        "attention query and value projections, found for BERT-like and Qwen-like backbones)",
    )
    train.add_argument("--device", default="auto", help="auto (CUDA, MPS, else CPU), cpu, cuda, mps")
    train.add_argument("--json", action="store_true", help="machine-readable summary")
    train.set_defaults(func=_train)

    calibrate = sub.add_parser(
        "calibrate",
        help="calibrate a trained model again on labelled texts of your own: thresholds and fusion weight, "
        "no retraining",
        description="How much to trust the rules and where each intent's threshold belongs depend on the text "
        "a classifier sees. A few hundred labelled rows of your own traffic (same formats as tokenflow train's "
        "DATA, never rows the model was trained on) move both there in seconds. Intents with fewer than 3 "
        "examples in DEV keep their previous calibration.",
    )
    calibrate.add_argument("dev", nargs="+", metavar="DEV", help=".jsonl or .csv labelled file(s)")
    calibrate.add_argument("--out", required=True, metavar="MODEL_DIR", help="directory to write the model to")
    calibrate.add_argument(
        "--model", metavar="MODEL_DIR", help="model to calibrate (default: the shipped model); --out may equal it"
    )
    calibrate.add_argument(
        "--rule-weight",
        metavar="W",
        help="weight of the rules in the fused score, or 'auto' to choose it on DEV (default: keep the model's)",
    )
    calibrate.add_argument("--json", action="store_true", help="machine-readable summary")
    calibrate.set_defaults(func=_calibrate)

    classify = sub.add_parser(
        "classify", help="classify one text: intents, per-intent scores, what each component said"
    )
    classify.add_argument("text", metavar="TEXT")
    classify.add_argument(
        "--model",
        metavar="MODEL_DIR",
        help="trained model directory (default: the shipped model); one that cannot be loaded is an error",
    )
    classify.add_argument("--taxonomy", help="taxonomy YAML (default: the one saved with the model)")
    classify.add_argument(
        "--mode", choices=("rules", "neural", "hybrid"), default="hybrid", help="which classifier (default hybrid)"
    )
    classify.add_argument("--json", action="store_true", help="machine-readable output")
    classify.set_defaults(func=_classify)


def _train(args: argparse.Namespace) -> int:
    from tokenflow_rag.classifiers.backbone import resolve_device
    from tokenflow_rag.classifiers.hybrid import HybridConfig
    from tokenflow_rag.classifiers.lora import LoraSettings
    from tokenflow_rag.classifiers.neural import MODEL_FILE, NeuralConfig
    from tokenflow_rag.classifiers.trainer import IntentTrainer, TrainingArguments
    from tokenflow_rag.classifiers.training_data import load_training_data, split_dev
    from tokenflow_rag.taxonomy import load_taxonomy

    # Every check before training, not after; by the flag's name (LoraSettings would say "r must be ...").
    check_options(
        args,
        epochs=POSITIVE_INT,
        batch_size=POSITIVE_INT,
        lr=(FRACTION[0], "a number in (0, 1) (e.g. 5e-3)"),
        dev_fraction=(FRACTION[0], "a number in (0, 1) (e.g. 0.15)"),
        lora_r=(POSITIVE_INT[0], "a positive integer (e.g. 8)"),
        lora_alpha=(POSITIVE_NUMBER[0], "a positive number (e.g. 16)"),
        lora_dropout=(lambda v: 0 <= v < 1, "a number in [0, 1) (e.g. 0.1)"),
    )
    check_in_files(args.data, "DATA")
    check_in_files(args.dev, "--dev")
    check_out_dir(args.out, "--out", marker=MODEL_FILE, kind="model")
    resolve_device(args.device)  # likewise: an unavailable device, before any data loads
    alpha = args.lora_alpha
    knobs = {
        "r": args.lora_r,
        "alpha": int(alpha) if alpha is not None and alpha.is_integer() else alpha,  # saves 16, not 16.0
        "dropout": args.lora_dropout,
        "target_modules": args.lora_targets,
    }
    lora = LoraSettings(**{k: v for k, v in knobs.items() if v is not None})
    weight, choose_weights = _rule_weight(args.rule_weight)
    fusion = HybridConfig() if weight is None else HybridConfig.from_rule_weight(weight)
    taxonomy = load_taxonomy(args.taxonomy)
    examples = load_training_data(args.data, taxonomy)
    dev = load_training_data(args.dev, taxonomy) if args.dev else None
    if dev is not None:
        _refuse_overlap({ex.text for ex in examples}, dev, "DATA")
    train_rows = examples
    if dev is not None and args.dev_fraction is not None:
        train_rows, held_out = split_dev(examples, args.dev_fraction, seed=args.seed)
        dev = [*held_out, *dev]
    config = NeuralConfig(backbone=args.backbone, lora=lora) if args.backbone else NeuralConfig(lora=lora)
    training = TrainingArguments(
        epochs=args.epochs,
        seed=args.seed,
        dev_fraction=0.15 if args.dev_fraction is None else args.dev_fraction,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        device=args.device,
        progress=sys.stderr.isatty(),
    )
    start = time.perf_counter()
    trainer = IntentTrainer(taxonomy, config, training, fusion, choose_weights=choose_weights, ngrams=args.ngrams)
    hybrid = trainer.train(train_rows, dev)
    hybrid.save_pretrained(args.out)
    info = hybrid.neural.metadata
    out = Path(args.out)
    summary = {
        "out": str(out),
        "examples": len(examples),
        "train_examples": info["train_examples"],
        "dev_examples": info["dev_examples"],
        "epochs_run": info["epochs_run"],
        "best_epoch": info["best_epoch"],
        "seconds": round(time.perf_counter() - start, 1),
        "size_bytes": sum(p.stat().st_size for p in out.iterdir() if p.is_file()),
        "dev": info["dev"],
        "rule_weight": hybrid.config.rule_weight,
        "thresholds": hybrid.calibration.thresholds,
    }
    emit(summary, as_json=args.json, text=_format_train)
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from tokenflow_rag.classifiers.hybrid import HybridClassifier
    from tokenflow_rag.classifiers.neural import MODEL_FILE, default_model_dir, default_training_data
    from tokenflow_rag.classifiers.training_data import fingerprint, load_training_data

    model_dir = Path(args.model) if args.model else default_model_dir()
    out = Path(args.out)
    if out.resolve() == default_model_dir().resolve():
        raise ConfigError(
            f"--out {args.out} is the model shipped inside the package; write the calibrated model to a "
            "directory of your own and load it with --model / HybridClassifier.from_pretrained"
        )
    check_in_files(args.dev, "DEV")
    check_out_dir(args.out, "--out", marker=MODEL_FILE, kind="model")
    weight, choose_weights = _rule_weight(args.rule_weight)
    hybrid = HybridClassifier.from_pretrained(model_dir, strict=True)
    dev = load_training_data(args.dev, hybrid.taxonomy)
    if not args.model:  # the shipped model's training rows are in the package: rows it learned would mislead
        trained = {ex.text for ex in load_training_data(default_training_data(), hybrid.taxonomy)}
        _refuse_overlap(trained, dev, "the shipped model's training data (tokenflow_rag/data/intents_train.jsonl)")
    previous_weight = hybrid.config.rule_weight
    start = time.perf_counter()
    report = hybrid.recalibrate(dev, rule_weight=weight, choose_weights=choose_weights)
    hybrid.neural.metadata["recalibrated"] = {
        "from": str(model_dir),
        "dev_examples": len(dev),
        "dev_sha256": fingerprint(dev),
        "fusion_weights": "chosen on dev" if choose_weights else "configured",
        "dev": report,
    }
    hybrid.save_pretrained(out)
    summary = {
        "out": str(out),
        "model": str(model_dir),
        "dev_examples": len(dev),
        "seconds": round(time.perf_counter() - start, 1),
        "previous_rule_weight": previous_weight,
        "rule_weight": hybrid.config.rule_weight,
        "dev": report,
        "thresholds": hybrid.calibration.thresholds,
    }
    emit(summary, as_json=args.json, text=_format_calibrate)
    return 0


def _format_calibrate(s: dict[str, Any]) -> str:
    dev = s["dev"]
    lines = [
        f"calibrated {s['model']} on {s['dev_examples']} labelled texts in {s['seconds']} s; written to {s['out']}",
        f"fused score = {s['rule_weight']:g} x rules + {1 - s['rule_weight']:g} x model "
        f"(was {s['previous_rule_weight']:g} x rules)",
        "on these texts (new thresholds chosen on them):   micro-F1   exact match",
    ]
    for label, m in (("hybrid before", dev["before"]), ("rules", dev["rules"]), ("neural", dev["neural"])):
        lines.append(f"  {label:<46}{m['micro_f1']:>8.3f}{m['exact_match']:>14.3f}")
    lines.append(f"  {'hybrid after':<46}{dev['hybrid']['micro_f1']:>8.3f}{dev['hybrid']['exact_match']:>14.3f}")
    if dev["kept_previous"]:
        lines.append(f"too few examples, previous calibration kept: {', '.join(dev['kept_previous'])}")
    if dev["uncalibrated"]:
        lines.append(f"too few examples, left uncalibrated (threshold 0.5): {', '.join(dev['uncalibrated'])}")
    return "\n".join(lines)


def _refuse_overlap(trained: set[str], dev: Any, source: str) -> None:
    """Dev rows the model learned from make its calibration look better than it is."""
    from tokenflow_rag.errors import DataFormatError

    overlap = trained & {ex.text for ex in dev}
    if overlap:
        raise DataFormatError(
            f"{len(overlap)} dev text(s) are also in {source}, e.g. {sorted(overlap)[0]!r}; "
            "calibration needs rows the model was not trained on: remove them from the dev file(s)"
        )


def _rule_weight(text: str | None) -> tuple[float | None, bool]:
    """``--rule-weight`` as ``(weight, choose on dev)``: ``(None, False)`` when absent, ``(None, True)`` for auto."""
    if text is None:
        return None, False
    if text.strip().lower() == "auto":
        return None, True
    try:
        weight = float(text)
    except ValueError:
        weight = -1.0
    if not 0.0 <= weight <= 1.0:
        raise ConfigError(f"--rule-weight must be a number in [0, 1] or 'auto', got {text!r}")
    return weight, False


def _format_train(s: dict[str, Any]) -> str:
    lines = [
        f"trained on {s['train_examples']} examples, dev {s['dev_examples']}; "
        f"{s['epochs_run']} epochs (best {s['best_epoch']}) in {s['seconds']} s",
        f"model written to {s['out']} ({s['size_bytes'] / 1e6:.1f} MB); "
        f"fused score = {s['rule_weight']:g} x rules + {1 - s['rule_weight']:g} x model"
        + (" (mean of network and n-grams)" if "ngrams_at_0.5" in s["dev"] else ""),
        "dev (thresholds calibrated on dev):   micro-F1   exact match",
    ]
    for name in ("rules", "neural", "ngrams_at_0.5", "hybrid"):
        if name in s["dev"]:  # ngrams: only for a model trained with the n-gram part
            m = s["dev"][name]
            lines.append(f"  {name:<34}{m['micro_f1']:>8.3f}{m['exact_match']:>14.3f}")
    return "\n".join(lines)


def _classify(args: argparse.Namespace) -> int:
    from tokenflow_rag.classifiers.hybrid import HybridClassifier, load_default_hybrid
    from tokenflow_rag.classifiers.neural import NeuralClassifier, default_model_dir
    from tokenflow_rag.classifiers.rules import RuleClassifier
    from tokenflow_rag.errors import InvalidQueryError
    from tokenflow_rag.taxonomy import load_taxonomy
    from tokenflow_rag.text import clean_query

    if not args.text.strip():
        raise InvalidQueryError('TEXT is empty; pass the text to classify, e.g. tokenflow classify "退款多久到账"')
    args.text = clean_query(args.text)  # as a query is cleaned before retrieval (invalid Unicode is an error)
    taxonomy = load_taxonomy(args.taxonomy) if args.taxonomy else None
    model_dir = Path(args.model) if args.model else default_model_dir()
    clf: Any
    if args.mode == "rules":
        clf = RuleClassifier(taxonomy)
    elif args.mode == "neural":
        clf = NeuralClassifier.from_pretrained(model_dir, taxonomy)
    elif args.model:
        # A model asked for by name that cannot load is an error here: a one-off command has no queries
        # to keep serving, and answering from the rules would hide the broken model (the library degrades).
        clf = HybridClassifier.from_pretrained(model_dir, taxonomy, strict=True)
    else:
        clf = load_default_hybrid(taxonomy)
    prediction = clf.predict([args.text])[0]
    data = prediction.to_dict()
    data["text"] = args.text
    data["mode"] = (
        args.mode if not getattr(clf, "is_degraded", False) and not isinstance(clf, RuleClassifier) else "rules"
    )
    data["contributions"] = _contributions(clf, prediction)
    emit(data, as_json=args.json, text=_format_classify)
    return 0


def _contributions(clf: Any, prediction: Any) -> dict[str, dict[str, float]]:
    """How much each component added to each intent's fused (pre-calibration) score."""
    weights = getattr(clf, "component_weights", {})
    return {
        name: {part: round(weights.get(part, 1.0) * table[name], 4) for part, table in prediction.components.items()}
        for name in prediction.scores
    }


def _format_classify(d: dict[str, Any]) -> str:
    chosen = ", ".join(d["intents"]) or "none"
    lines = [f"intents: {chosen}   (confidence {d['confidence']:.3f}, mode {d['mode']})"]
    parts = sorted({p for c in d["contributions"].values() for p in c})
    lines.append(f"  {'intent':<18}{'score':>7}" + "".join(f"{p:>9}" for p in parts) + "  evidence")
    for name, score in sorted(d["scores"].items(), key=lambda kv: -kv[1]):
        mark = "*" if name in d["intents"] else " "
        row = "".join(f"{d['contributions'][name].get(p, 0.0):>9.3f}" for p in parts)
        lines.append(f"{mark} {name:<18}{score:>7.3f}{row}  {', '.join(d['evidence'].get(name, []))}")
    return "\n".join(lines)
