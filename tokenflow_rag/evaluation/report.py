"""BENCHMARKS.md from the JSON results of ``tokenflow eval all``, without rerunning anything.

:func:`render_report` reads ``docs/results/*.json`` (one file per benchmark, plus ``suite.json``, the
record of the last run: what ran, what was skipped and why, the machine) and writes the report: a
summary of the targets, one table per classifier benchmark with the command, the sizes and the
anchors beside the figures, and one tokens-vs-recall plot (PNG) and table per retrieval set.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tokenflow_rag._io import atomic_write_text
from tokenflow_rag.errors import ConfigError, DataFormatError

__all__ = ["render_report"]

logger = logging.getLogger(__name__)

SUITE_FILE = "suite.json"
_MODE_ORDER = ("rules", "neural", "hybrid", "hybrid_recalibrated", "tfidf_logreg", "embedding_logreg")
_TOKENFLOW = {"rules", "neural", "hybrid", "hybrid_recalibrated"}
_RETRIEVAL_ROWS = ("fixed_k@1", "fixed_k@3", "fixed_k@5", "fixed_k@10", "fixed_k@20")


def render_report(results_dir: Path, out: Path) -> list[Path]:
    """Write ``out`` (Markdown) and the retrieval plots from the JSON files in ``results_dir``.

    Returns:
        The files written: the report first, then the plots.

    Raises:
        ConfigError: ``results_dir`` holds no result.
        DataFormatError: A result file is not valid JSON (the message names it).
    """
    results_dir = Path(results_dir)
    suite = _read(results_dir / SUITE_FILE) if (results_dir / SUITE_FILE).is_file() else {}
    paths = [path for path in sorted(results_dir.glob("*.json")) if path.name != SUITE_FILE]
    read = [(path, _read(path)) for path in paths]
    results = [r for _, r in read if isinstance(r, dict) and "benchmark" in r]
    strays = [path.name for path, r in read if not (isinstance(r, dict) and "benchmark" in r)]
    if strays:  # e.g. the --out of a single `eval classify` run: it has no section to go in
        logger.warning(
            "not in the report: %s (no 'benchmark' field: results of `tokenflow eval all` have one; rerun a "
            "benchmark with `tokenflow eval all --only NAME` to replace its section)",
            ", ".join(strays),
        )
    if not results and not suite:
        raise ConfigError(f"{results_dir} holds no benchmark results; run `tokenflow eval all` first")
    order = [e["name"] for e in suite.get("benchmarks", [])]
    results.sort(key=lambda r: order.index(r["benchmark"]["name"]) if r["benchmark"]["name"] in order else len(order))
    classify = [r for r in results if r["benchmark"].get("kind", "classify") == "classify"]
    retrieve = [r for r in results if r["benchmark"].get("kind") == "retrieve"]

    written: list[Path] = []
    lines = _header(suite, results, out, results_dir)
    lines += _summary(classify, retrieve)
    if classify:
        lines += ["## Intent classification", "", _METHODS_NOTE, ""]
        for result in classify:
            lines += _classify_section(result)
    if retrieve:
        lines += ["## Retrieval: prompt tokens against recall", ""]
        for result in retrieve:
            png = _plot(result, results_dir)
            if png is not None:
                written.append(png)
            lines += _retrieve_section(result, png, out)
    lines += _not_run(suite)
    # Hand-written sections (the demo, the retrieval protocol, speed) each carry their own commands.
    for note in sorted((results_dir / "notes").glob("*.md")):
        lines += ["", note.read_text(encoding="utf-8").strip(), ""]
    atomic_write_text(Path(out), "\n".join(lines).rstrip() + "\n")
    return [Path(out), *written]


_METHODS_NOTE = (
    "Methods: **rules** = tokenflow's keyword rules, keywords mined from the training texts "
    "(`tokenflow_rag.classifiers.keyword_mining`); **neural** = all-MiniLM-L6-v2 with LoRA adapters and one "
    "sigmoid per intent, thresholds calibrated on a dev split of the training rows; **hybrid** = w x rules + "
    "(1 - w) x model, calibrated, the model being the mean of the network and a TF-IDF character n-gram "
    "logistic regression fitted on the network's training rows (w = 0.3, or as saved with the shipped model); "
    "**hybrid_recalibrated** = the same model with its thresholds and rule weight recalibrated on labelled rows "
    "of the test text (`tokenflow calibrate --rule-weight auto`), cross-fitted: each fold of the test file is "
    "predicted after calibrating on the other folds, so no row is scored by a calibration that saw it; it "
    "measures what calibrating on your own traffic buys, not the shipped default, and no target judges it; "
    "**tfidf_logreg** = TF-IDF character 1-4-grams + one-vs-rest logistic regression; "
    "**embedding_logreg** = frozen sentence embeddings + one-vs-rest logistic regression (a SetFit-style head "
    "without contrastive fine-tuning). Every method trains on the same rows. Exact match = the predicted "
    "intent set equals the gold set (CLINC's and MixATIS/MixSNIPS's accuracy). none P / none R = precision and "
    "recall of predicting no intent. ms/query = wall time of one single-text prediction after warm-up: median (p50) and 95th percentile."
)


# -- sections -----------------------------------------------------------------------------------


def _header(suite: Mapping[str, Any], results: Sequence[Mapping[str, Any]], out: Path, results_dir: Path) -> list[str]:
    machine = suite.get("machine") or (results[0].get("machine", {}) if results else {})
    rel = _relpath(results_dir, out)
    lines = [
        "# Benchmarks",
        "",
        f"Regenerated by `{suite.get('command', 'tokenflow eval all')}` (raw results in `{rel}/*.json`; "
        "`tokenflow eval report` re-renders this file from them without rerunning). Every figure below was "
        "measured by the command printed with it.",
        "",
    ]
    if machine:
        gpu = "a GPU" if machine.get("gpu") else "no GPU"
        lines.append(
            f"Machine: {machine.get('cpu', 'unknown CPU')}, {machine.get('nproc', '?')} cores (nproc), {gpu}; "
            f"torch {machine.get('torch', '?')} with {machine.get('torch_threads', '?')} thread(s); "
            f"Python {machine.get('python', '?')}; tokenflow_rag {machine.get('tokenflow_rag', '?')}; "
            f"{machine.get('date', '?')}; 1-minute load average at the start: {machine.get('load_average_1m', '?')}."
        )
    if suite.get("seconds_total") is not None and suite.get("partial_runs"):
        lines.append(
            f"Benchmarks were rerun separately (`--only`); this machine line is the latest run's, each section "
            f"states its own load. Sum of the benchmarks' wall times: {suite['seconds_total'] / 60:.0f} min."
        )
    elif suite.get("seconds_total") is not None:
        lines.append(f"Wall time of the whole run: {suite['seconds_total'] / 60:.0f} min.")
    if suite.get("quick"):
        lines += ["", "**This is a `--quick` smoke run** (tiny training sizes, one epoch): do not quote these figures."]
    lines.append("")
    return lines


def _summary(classify: Sequence[Mapping[str, Any]], retrieve: Sequence[Mapping[str, Any]]) -> list[str]:
    rows = []
    for result in classify:
        bench = result["benchmark"]
        for target in bench.get("targets", []):
            method, value, verdict = _judge(result, target)
            best = _best_other(result, target["metric"], lower_is_better=target.get("max") is not None)
            status = {"met": "**met**", None: "reported"}.get(verdict, verdict)
            shown = _metric_value(target["metric"], value)
            rows.append(f"| {bench['title']} | {target['label']} | {shown} ({method}) | {best} | {status} |")
    for result in retrieve:
        ratios = result.get("token_ratio_at_baseline_recall") or {}
        shown = ", ".join(f"k={k}: {'not reached' if v is None else f'x{v:.2f}'}" for k, v in ratios.items())
        rows.append(f"| {result['benchmark']['title']} | tokens at fixed top-k's recall | {shown} | - | reported |")
    if not rows:
        return []
    return [
        "## Summary",
        "",
        "| benchmark | target | tokenflow | best other method | status |",
        "|---|---|---|---|---|",
        *rows,
        "",
    ]


def _classify_section(result: Mapping[str, Any]) -> list[str]:
    bench = result["benchmark"]
    setup = result.get("setup", {})
    lines = [f"### {bench['title']}", ""]
    if bench.get("note"):
        lines += [bench["note"], ""]
    lines += ["```", result.get("command", "(command not recorded)"), "```", ""]
    lines.append(_sizes_line(result, setup))
    lines += [
        "",
        "| method | micro-F1 | macro-F1 | exact match | none P | none R | train rows | train s | ms/query p50 | p95 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    modes = result.get("modes", {})
    for name in sorted(modes, key=lambda m: _MODE_ORDER.index(m) if m in _MODE_ORDER else len(_MODE_ORDER)):
        m = modes[name]
        label = _method_label(name, setup, m)
        if "skipped" in m:
            lines.append(f"| {label} | skipped: {m['skipped']} |{' |' * 8}")
            continue
        micro = _fmt(m["micro_f1"])
        if "micro_f1_std" in m:
            micro += f" (folds {m['micro_f1_mean']:.3f} ± {m['micro_f1_std']:.3f})"
        lines.append(
            f"| {label} | {micro} | {_fmt(m['macro_f1'])} | {_fmt(m['exact_match'])} | {_fmt(m['none_precision'])} | "
            f"{_fmt(m['none_recall'])} | {_count(m.get('n_train'))} | {_seconds(m.get('seconds_train'))} | "
            f"{_ms(m.get('ms_per_query_p50'))} | {_ms(m.get('ms_per_query_p95'))} |"
        )
    lines.append("")
    anchors = bench.get("anchors", [])
    if anchors:
        lines += ["Anchors (published or prior figures, for comparison; not measured here):", ""]
        lines += [f"- {a['name']}: {a['metric'].replace('_', ' ')} {_fmt(a['value'])} ({a['source']})" for a in anchors]
        lines.append("")
    for target in bench.get("targets", []):
        method, value, verdict = _judge(result, target)
        shown = (
            f"{method} did not run" if verdict == "not run" else f"{method} {_metric_value(target['metric'], value)}"
        )
        lines.append(f"Target: {target['label']} - {shown}{'' if verdict in (None, 'not run') else ': ' + verdict}.")
    lines.append("")
    return lines


def _sizes_line(result: Mapping[str, Any], setup: Mapping[str, Any]) -> str:
    parts = [f"{result.get('n_test', '?')} test examples"]
    if "cv_folds" in result:
        parts.append(
            f"{result['cv_folds']}-fold cross-validation, about {result.get('n_train', '?')} training rows per split"
        )
    elif setup.get("source") == "train":
        parts.append(f"{result.get('n_train', '?')} training rows" + (" (Mix-style)" if setup.get("mix") else ""))
    else:
        parts.append(f"classifier: {setup.get('model', '?')}")
    if setup.get("max_train"):
        parts.append(f"--max-train {setup['max_train']}")
    if setup.get("epochs"):
        parts.append(f"up to {setup['epochs']} epoch(s)")
    if setup.get("learning_rate"):
        parts.append(f"learning rate {setup['learning_rate']:g}")
    if setup.get("batch_size"):
        parts.append(f"batch {setup['batch_size']}")
    neural = setup.get("neural_training") or {}
    if neural.get("epochs_run"):
        parts.append(
            f"neural: {neural.get('train_examples', '?')} train / {neural.get('dev_examples', '?')} dev rows, "
            f"{neural['epochs_run']} epoch(s) run"
            + (f", dev micro-F1 by epoch {neural['dev_micro_f1']}" if neural.get("dev_micro_f1") else "")
        )
    if setup.get("keywords_per_intent") is not None:
        parts.append(f"{setup['keywords_per_intent']} mined keywords per intent")
    load = (result.get("machine") or {}).get("load_average_1m")
    if load is not None:
        parts.append(f"1-minute load average when it started: {load}")
    if setup.get("overlap_with_shipped_training_data") is not None:
        parts.append(
            f"{setup['overlap_with_shipped_training_data']} test texts also in the shipped model's training or dev data"
        )
    return "Sizes: " + "; ".join(parts) + "."


def _retrieve_section(result: Mapping[str, Any], png: Path | None, out: Path) -> list[str]:
    bench = result["benchmark"]
    lines = [f"### {bench['title']}", ""]
    if png is not None:
        lines += [f"![tokens vs recall]({_relpath(png, out)})", ""]
    if bench.get("note"):
        lines += [bench["note"], ""]
    lines += ["```", result.get("command", "(command not recorded)"), "```", ""]
    lines.append(
        f"{result.get('queries', '?')} queries, {result.get('documents', '?')} documents, embedder "
        f"{result.get('embedder', '?')}, {result.get('history_turns', 0)} history turns."
    )
    methods = result.get("methods", {})
    operating = (result.get("operating_point") or {}).get("method")
    rows = [n for n in _RETRIEVAL_ROWS if n in methods]
    rows += [n for n in result.get("curves", {}).get("adaptive_k", []) if n in methods]
    if isinstance(operating, str) and operating in methods:
        rows.append(operating)
    rows += [n for n in result.get("curves", {}).get("oracle_entity", [])[:1] if n in methods]
    lines += ["", "| method | tokens / query | recall | any gold hit |", "|---|---|---|---|"]
    for name in rows:
        m = methods[name]
        label = f"**{name}** (reported point)" if name == operating else name
        lines.append(
            f"| {label} | {m['tokens_mean']:.0f} | {m['recall']:.3f} | {m.get('hit_rate', float('nan')):.3f} |"
        )
    ratios = result.get("token_ratio_at_baseline_recall") or {}
    if ratios:
        shown = "; ".join(
            f"fixed top-{k}: {'not reached' if v is None else f'x{v:.2f} the tokens'}" for k, v in ratios.items()
        )
        lines += ["", f"tokenflow's cheapest setting that reaches the recall of {shown}."]
    lines.append("")
    return lines


def _not_run(suite: Mapping[str, Any]) -> list[str]:
    entries = [e for e in suite.get("benchmarks", []) if "skipped" in e or "failed" in e]
    if not entries:
        return []
    lines = ["## Not run", ""]
    for e in entries:
        lines.append(f"- {e['title']}: {'failed: ' + e['failed'] if 'failed' in e else 'skipped: ' + e['skipped']}")
    return [*lines, ""]


# -- helpers ------------------------------------------------------------------------------------


def _plot(result: Mapping[str, Any], results_dir: Path) -> Path | None:
    """Re-draw the retrieval plot from the JSON; keep an existing PNG when matplotlib is missing."""
    target = results_dir / f"{result['benchmark']['name']}.png"
    try:
        from tokenflow_rag.evaluation.plots import plot_retrieval

        return plot_retrieval(result, target)
    except ImportError as exc:
        logger.warning("cannot draw %s (%s); keeping the existing plot", target, exc)
    except (KeyError, TypeError, ValueError) as exc:
        logger.warning("cannot draw %s from its result (%s)", target, exc)
    return target if target.is_file() else None


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataFormatError(
            f"{path}: line {exc.lineno}, column {exc.colno}: invalid JSON ({exc.msg}); rerun its benchmark"
        ) from exc


def _judge(result: Mapping[str, Any], target: Mapping[str, Any]) -> tuple[str, float | None, str | None]:
    """``(method, value, verdict)`` of one target; verdict ``"met"``, ``"not met"``, ``"not run"`` or ``None``.

    A target sets ``min`` (at least), ``max`` (at most, e.g. a latency), and/or ``beats`` (methods the
    value must exceed); with none of them the value is only reported (verdict ``None``).
    """
    method = target.get("method") or result.get("mode", "hybrid")
    value = _metric(result, method, target["metric"])
    if value is None:
        return method, None, "not run"
    checks = []
    if target.get("min") is not None:
        checks.append(value >= target["min"])
    if target.get("max") is not None:
        checks.append(value <= target["max"])
    for other in target.get("beats", ()):
        other_value = _metric(result, other, target["metric"])
        checks.append(other_value is not None and value > other_value)
    if not checks:
        return method, value, None
    return method, value, "met" if all(checks) else "not met"


def _metric(result: Mapping[str, Any], method: str, metric: str) -> float | None:
    m = result.get("modes", {}).get(method, {})
    value = m.get(metric)
    return value if isinstance(value, int | float) else None


def _best_other(result: Mapping[str, Any], metric: str, *, lower_is_better: bool = False) -> str:
    best = None
    sign = -1.0 if lower_is_better else 1.0
    for name, m in result.get("modes", {}).items():
        value = m.get(metric)
        if (
            name not in _TOKENFLOW
            and isinstance(value, int | float)
            and (best is None or sign * value > sign * best[1])
        ):
            best = (name, value)
    return "-" if best is None else f"{_metric_value(metric, best[1])} ({best[0]})"


def _method_label(name: str, setup: Mapping[str, Any], metrics: Mapping[str, Any]) -> str:
    if name == "hybrid_recalibrated" and metrics.get("calibrate_folds"):
        return f"hybrid_recalibrated ({metrics['calibrate_folds']}-fold, not the shipped calibration)"
    if name == "embedding_logreg" and setup.get("embedder"):
        return f"embedding_logreg ({setup['embedder']})"
    return name


def _relpath(path: Path, out: Path) -> str:
    return Path(os.path.relpath(Path(path).resolve(), Path(out).resolve().parent)).as_posix()


def _fmt(value: Any) -> str:
    return "-" if not isinstance(value, int | float) else f"{value:.3f}"


def _count(value: Any) -> str:
    return "-" if not isinstance(value, int) else f"{value:,}"


def _seconds(value: Any) -> str:
    return "-" if not isinstance(value, int | float) else f"{value:,.1f}"


def _metric_value(metric: str, value: Any) -> str:
    """A metric's value as the report shows it: latencies (``ms_*``) in milliseconds, the rest as scores."""
    return f"{_ms(value)} ms" if metric.startswith("ms_") and value is not None else _fmt(value)


def _ms(value: Any) -> str:
    return "-" if not isinstance(value, int | float) else f"{value:.1f}"
