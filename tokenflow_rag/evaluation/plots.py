"""Plots of benchmark results (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tokenflow_rag._io import atomic_file
from tokenflow_rag._optional import require
from tokenflow_rag.errors import ConfigError

__all__ = ["plot_retrieval"]

_STYLE: Mapping[str, dict[str, Any]] = {
    "fixed_k": {"color": "#7f7f7f", "marker": "o", "label": "fixed top-k (k=1..20)"},
    "score_cutoff": {"color": "#bcbd22", "marker": "v", "label": "score cutoff"},
    "adaptive_k": {"color": "#17becf", "marker": "D", "label": "adaptive-k (largest gap)"},
    "tokenflow": {"color": "#d62728", "marker": "s", "label": "tokenflow (metadata intents)"},
    "oracle_entity": {"color": "#2ca02c", "marker": "^", "label": "oracle: gold entity", "linestyle": "--"},
    "oracle_domain": {"color": "#9467bd", "marker": "x", "label": "oracle: gold domain", "linestyle": ":"},
}


def check_plot_path(path: str | Path) -> Path:
    """The plot's path, or a ConfigError when it is not a .png (cheap: callers check it before a long run)."""
    out = Path(path)
    if out.suffix.lower() != ".png":
        raise ConfigError(f"{out} must end in .png (the plot is a PNG image)")
    return out


def plot_retrieval(report: Mapping[str, Any], path: str | Path, *, title: str | None = None) -> Path:
    """Tokens sent (x) against gold recall (y), one line per method family; writes a PNG.

    Args:
        report: The output of :func:`tokenflow_rag.evaluation.retrieval.run_retrieval_benchmark`.
        path: Where to write the PNG (parent folders are created).
        title: Plot title (default: dataset, embedder and history turns).
    """
    matplotlib = require("matplotlib", extra="eval")
    matplotlib.use("Agg")
    require("matplotlib.ticker", extra="eval")
    plt = require("matplotlib.pyplot", extra="eval")

    methods, curves = report["methods"], report["curves"]
    fig, ax = plt.subplots(figsize=(9.5, 5))
    for family, names in curves.items():
        style = dict(_STYLE.get(family, {"label": family}))
        points = sorted(
            (methods[n]["tokens_mean"], methods[n]["recall"]) for n in names if methods[n]["tokens_mean"] > 0
        )
        ax.plot([p[0] for p in points], [p[1] for p in points], markersize=4, linewidth=1.4, **style)
    for k, ratio in report.get("token_ratio_at_baseline_recall", {}).items():
        base = methods.get(f"fixed_k@{k}")
        if base is not None:
            note = f"k={k}: x{ratio:.2f}" if ratio is not None else f"k={k}: not reached"
            ax.annotate(
                note, (base["tokens_mean"], base["recall"]), textcoords="offset points", xytext=(6, -12), fontsize=8
            )
    ax.set_xscale("log")  # fixed top-20 costs ~20x tokenflow's points: a linear axis squeezes them together
    ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("prompt tokens per query (cl100k, mean; log scale)")
    ax.set_ylabel("recall of gold documents")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title(
        title or f"{report['dataset']} - {report['embedder']}, history {report['history_turns']} turns", fontsize=10
    )
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: curves fill the corners
    out = check_plot_path(path)
    fig.tight_layout()
    try:
        with atomic_file(out) as tmp:  # an interrupted run leaves no truncated PNG
            fig.savefig(tmp, dpi=120, format="png")
    finally:
        plt.close(fig)
    return out
