"""BENCHMARKS.md rendering from saved JSON results, and ``tokenflow eval all`` orchestration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tokenflow_rag.cli import main
from tokenflow_rag.errors import ConfigError, DataFormatError
from tokenflow_rag.evaluation import suite
from tokenflow_rag.evaluation.report import render_report

FIX = Path(__file__).parent / "fixtures" / "eval"


def _mode(micro: float, exact: float, **extra: object) -> dict:
    return {
        "n": 10,
        "micro_f1": micro,
        "macro_f1": micro - 0.01,
        "exact_match": exact,
        "accuracy": exact,
        "none_precision": 0.5,
        "none_recall": 0.4,
        "per_intent": {},
        "seconds_train": 12.5,
        "ms_per_query_p50": 3.25,
        "n_train": 300,
        **extra,
    }


def _classify_result(name: str, *, exact: float, targets: list, anchors: list | None = None, cv: bool = False) -> dict:
    result = {
        "dataset": name,
        "format": "snips",
        "n_train": 300,
        "n_test": 10,
        "mode": "hybrid",
        "setup": {
            "source": "train",
            "mix": True,
            "max_train": 300,
            "epochs": 2,
            "embedder": "minilm",
            "keywords_per_intent": 4.5,
            "neural_training": {"train_examples": 255, "dev_examples": 45, "epochs_run": 2},
        },
        "modes": {
            "rules": _mode(0.8, 0.6),
            "neural": _mode(0.85, 0.7),
            "hybrid": _mode(0.9, exact),
            "tfidf_logreg": _mode(0.95, 0.85),
            "embedding_logreg": {"skipped": "baselines turned off (--no-baselines)"},
        },
        "command": f"tokenflow eval classify --format snips --name {name}",
        "machine": {"cpu": "Test CPU", "nproc": 2, "torch_threads": 1, "date": "2025-01-01 00:00 UTC"},
        "benchmark": {
            "name": name,
            "title": f"Title of {name}",
            "kind": "classify",
            "anchors": anchors or [],
            "targets": targets,
            "note": f"Note of {name}.",
            "quick": False,
        },
    }
    if cv:
        result["cv_folds"] = 5
        result["modes"]["hybrid"].update(micro_f1_mean=0.89, micro_f1_std=0.02, micro_f1_folds=[0.87, 0.91])
    return result


def _retrieval_result() -> dict:
    methods = {
        f"fixed_k@{k}": {"tokens_mean": 50.0 * k, "recall": min(1.0, 0.1 * k), "hit_rate": min(1.0, 0.15 * k)}
        for k in (1, 3, 5, 10, 20)
    }
    methods.update({f"tokenflow@k={k}": {"tokens_mean": 40.0 * k, "recall": 0.3 * k, "hit_rate": 0.4} for k in (1, 2)})
    methods["tokenflow"] = dict(methods["tokenflow@k=1"])
    return {
        "dataset": "dstc11[heldout]",
        "embedder": "hashing",
        "queries": 40,
        "documents": 100,
        "history_turns": 8,
        "methods": methods,
        "curves": {
            "fixed_k": [f"fixed_k@{k}" for k in (1, 3, 5, 10, 20)],
            "tokenflow": ["tokenflow@k=1", "tokenflow@k=2"],
        },
        "operating_point": {"method": "tokenflow@k=1"},
        "token_ratio_at_baseline_recall": {"3": 0.27, "10": None},
        "command": "tokenflow eval retrieve --format dstc11",
        "benchmark": {
            "name": "retrieval_dstc11",
            "title": "DSTC11 retrieval",
            "kind": "retrieve",
            "anchors": [],
            "targets": [],
            "note": "Held-out dialogues.",
            "quick": False,
        },
    }


@pytest.fixture
def results(tmp_path: Path) -> Path:
    folder = tmp_path / "docs" / "results"
    folder.mkdir(parents=True)
    files = {
        "mixsnips": _classify_result(
            "mixsnips",
            exact=0.97,
            targets=[{"metric": "exact_match", "min": 0.96, "label": "exact-match accuracy >= 96%"}],
            anchors=[{"name": "GL-GIN", "metric": "exact_match", "value": 0.956, "source": "test split"}],
        ),
        "mixatis": _classify_result(
            "mixatis", exact=0.5, targets=[{"metric": "exact_match", "min": 0.78, "label": "exact >= 78%"}]
        ),
        "nlupp_banking": _classify_result(
            "nlupp_banking",
            exact=0.6,
            cv=True,
            targets=[{"metric": "micro_f1", "min": None, "label": "micro-F1 reported"}],
        ),
        "retrieval_dstc11": _retrieval_result(),
    }
    for name, data in files.items():
        (folder / f"{name}.json").write_text(json.dumps(data), encoding="utf-8")
    suite_record = {
        "command": "tokenflow eval all",
        "quick": False,
        "seconds_total": 600.0,
        "machine": {
            "cpu": "Test CPU",
            "nproc": 2,
            "torch_threads": 1,
            "date": "2025-01-01 00:00 UTC",
            "tokenflow_rag": "0.1.0",
        },
        "benchmarks": [{"name": n, "title": n} for n in ("mixsnips", "mixatis", "nlupp_banking", "retrieval_dstc11")]
        + [
            {
                "name": "crosswoz_domains",
                "title": "CrossWOZ",
                "skipped": "../shared/datasets/crosswoz/val.json.zip is absent",
            },
            {"name": "clinc150_domains", "title": "CLINC150", "failed": "DataFormatError: broken"},
        ],
    }
    (folder / "suite.json").write_text(json.dumps(suite_record), encoding="utf-8")
    return folder


def test_report_has_tables_commands_anchors_targets_and_plots(results: Path, tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    written = render_report(results, out)
    text = out.read_text(encoding="utf-8")
    assert written[0] == out and (results / "retrieval_dstc11.png").is_file()
    assert "![tokens vs recall](docs/results/retrieval_dstc11.png)" in text  # relative to the report
    assert "Test CPU, 2 cores (nproc)" in text and "tokenflow_rag 0.1.0" in text
    assert "tokenflow eval classify --format snips --name mixsnips" in text
    assert "| hybrid | 0.900 | 0.890 | 0.970 |" in text
    assert "GL-GIN: exact match 0.956 (test split)" in text
    assert "Target: exact-match accuracy >= 96% - hybrid 0.970: met." in text
    assert "Target: exact >= 78% - hybrid 0.500: not met." in text
    assert (
        "| Title of mixsnips | exact-match accuracy >= 96% | 0.970 (hybrid) | 0.850 (tfidf_logreg) | **met** |" in text
    )
    assert "0.900 (folds 0.890 ± 0.020)" in text  # cross-validation spread
    assert "skipped: baselines turned off" in text
    assert "**tokenflow@k=1** (reported point)" in text and "fixed top-3: x0.27 the tokens" in text
    assert "- CrossWOZ: skipped: ../shared/datasets/crosswoz/val.json.zip is absent" in text
    assert "- CLINC150: failed: DataFormatError: broken" in text
    # Order follows the run: mixsnips before mixatis before NLU++.
    assert text.index("Title of mixsnips") < text.index("Title of mixatis") < text.index("Title of nlupp_banking")


def test_report_command_rerenders(results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "B.md"
    assert main(["eval", "report", "--results", str(results), "--out", str(out)]) == 0
    assert out.is_file() and str(out) in capsys.readouterr().out


def test_quick_runs_are_flagged(results: Path, tmp_path: Path) -> None:
    record = json.loads((results / "suite.json").read_text(encoding="utf-8"))
    record["quick"] = True
    (results / "suite.json").write_text(json.dumps(record), encoding="utf-8")
    render_report(results, tmp_path / "B.md")
    assert "`--quick` smoke run" in (tmp_path / "B.md").read_text(encoding="utf-8")


def test_a_result_without_a_section_is_named_not_dropped_silently(
    results: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (results / "my_run.json").write_text(json.dumps({"dataset": "mine", "modes": {}}), encoding="utf-8")
    with caplog.at_level("WARNING", logger="tokenflow_rag.evaluation.report"):
        render_report(results, tmp_path / "B.md")
    assert "not in the report: my_run.json" in caplog.text


def test_bad_result_files_are_named(results: Path, tmp_path: Path) -> None:
    (results / "mixatis.json").write_text('{"dataset": ', encoding="utf-8")
    with pytest.raises(DataFormatError, match="mixatis.json"):
        render_report(results, tmp_path / "B.md")
    with pytest.raises(ConfigError, match="no benchmark results"):
        render_report(tmp_path / "empty", tmp_path / "B.md")


def test_suite_skips_everything_cleanly_without_datasets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results, out = tmp_path / "results", tmp_path / "BENCHMARKS.md"
    summary = suite.run_suite(datasets=tmp_path / "absent", results_dir=results, out=out, progress=False)
    assert summary == {"ran": 0, "skipped": len(suite.BENCHMARKS), "failed": 0}
    err = capsys.readouterr().err
    assert err.count("skip ") == len(suite.BENCHMARKS)
    text = out.read_text(encoding="utf-8")
    assert "## Not run" in text and "is absent" in text


def test_suite_runs_a_benchmark_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("sklearn")
    datasets = tmp_path / "datasets"
    (datasets / "clinc150").mkdir(parents=True)
    (datasets / "clinc150" / "data.json").write_text((FIX / "clinc.json").read_text(encoding="utf-8"), encoding="utf-8")
    (datasets / "clinc150" / "domains.json").write_text(
        (FIX / "clinc_domains.json").read_text(encoding="utf-8"), encoding="utf-8"
    )
    bench = suite.Benchmark(
        name="tiny_clinc",
        title="Tiny CLINC",
        needs=("clinc150/data.json",),
        argv=lambda d, q: [
            "classify",
            "--format",
            "clinc",
            "--train",
            str(d / "clinc150" / "data.json"),
            "--test",
            str(d / "clinc150" / "data.json"),
            "--domains",
            str(d / "clinc150" / "domains.json"),
            "--mode",
            "rules",
            "--embedder",
            "hashing",
            "--threads",
            "1",
            "--timing-queries",
            "2",
        ],
        targets=({"metric": "accuracy", "min": 0.5, "label": "accuracy >= 0.5", "method": "rules"},),
    )
    missing = suite.Benchmark(name="other", title="Other", needs=("nowhere/x.json",), argv=lambda d, q: [])
    monkeypatch.setattr(suite, "BENCHMARKS", (bench, missing))
    results, out = tmp_path / "docs" / "results", tmp_path / "BENCHMARKS.md"
    assert main(["eval", "all", "--datasets", str(datasets), "--results", str(results), "--out", str(out)]) == 0
    saved = json.loads((results / "tiny_clinc.json").read_text(encoding="utf-8"))
    assert saved["command"].startswith(
        "tokenflow eval classify --format clinc --train ../shared/datasets/clinc150/data.json"
    )
    assert saved["machine"]["nproc"] and saved["benchmark"]["title"] == "Tiny CLINC"
    text = out.read_text(encoding="utf-8")
    assert "### Tiny CLINC" in text and saved["command"] in text and "- Other: skipped:" in text
    with pytest.raises(ConfigError, match="unknown benchmark"):
        suite.run_suite(datasets=datasets, results_dir=results, out=out, only=["nope"])


def test_every_registered_benchmark_builds_a_valid_command(tmp_path: Path) -> None:
    from tokenflow_rag.cli import build_parser

    for domain in ("banking", "hotels"):
        (tmp_path / "nlupp" / domain).mkdir(parents=True)
        for i in (0, 2, 10):
            (tmp_path / "nlupp" / domain / f"fold{i}.json").write_text("[]", encoding="utf-8")
    assert suite._folds(tmp_path, "banking")[-1].endswith("fold10.json")  # numeric order: fold10 after fold2
    parser = build_parser()
    for bench in suite.BENCHMARKS:
        for quick in (False, True):
            args = parser.parse_args(["eval", *bench.argv(tmp_path, quick)])
            assert args.func is not None, bench.name


def test_targets_with_upper_bounds_and_methods_to_beat() -> None:
    from tokenflow_rag.evaluation.report import _judge

    result = {
        "mode": "hybrid",
        "modes": {
            "rules": {"micro_f1": 0.95},
            "neural": {"micro_f1": 0.86},
            "hybrid": {"micro_f1": 0.93, "ms_per_query_p50": 12.0},
        },
    }
    assert _judge(result, {"metric": "micro_f1", "min": 0.9}) == ("hybrid", 0.93, "met")
    assert _judge(result, {"metric": "micro_f1", "beats": ("rules", "neural")})[2] == "not met"
    assert _judge(result, {"metric": "micro_f1", "beats": ("neural",)})[2] == "met"
    assert _judge(result, {"metric": "ms_per_query_p50", "max": 15.0})[2] == "met"
    assert _judge(result, {"metric": "ms_per_query_p95", "max": 30.0})[2] == "not run"
    assert _judge(result, {"metric": "micro_f1"})[2] is None  # reported, no goal
