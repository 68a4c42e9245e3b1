"""Bad command-line values fail at once, in one line naming the flag, with exit code 2; before any long work."""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import pytest

from tokenflow_rag.cli import build_parser, main
from tokenflow_rag.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_usage_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err


def never(*args: object, **kwargs: object) -> None:
    raise AssertionError("the run started although an argument was bad")


@pytest.fixture
def index_dir(tmp_path: Path, small_chunks) -> Path:
    """A real index, built with the rules and the hashing embedder (no model to load)."""
    from tokenflow_rag import build_index, save_index
    from tokenflow_rag.classifiers import RuleClassifier

    retriever = build_index(small_chunks, embedder="hashing", classifier=RuleClassifier(), progress=False)
    return save_index(retriever, tmp_path / "idx")


@pytest.fixture
def labeled(tmp_path: Path) -> Path:
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"text": "where is my refund", "intents": ["refund"]}) + "\n", encoding="utf-8")
    return path


# -- 1. query -k / --budget -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--budget", "-5"], "--budget must be a positive integer, got -5"),
        (["--budget", "0"], "--budget must be a positive integer, got 0"),
        (["-k", "0"], "-k must be a positive integer, got 0"),
        (["-k", "-3"], "-k must be a positive integer, got -3"),
    ],
)
def test_query_refuses_non_positive_k_and_budget(capsys, index_dir, flags, message):
    code, out, err = run(capsys, "query", index_dir, "refund", *flags, "--json")
    assert_usage_error(code, err, message)
    assert out == ""


# -- 2. output paths, checked before the run ------------------------------------------------------------


def test_bench_out_checked_before_the_run(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("tokenflow_rag.evaluation.bench.run_bench", never)
    code, _, err = run(capsys, "bench", "--sizes", "20", "--no-real", "--out", tmp_path)
    assert_usage_error(code, err, f"tokenflow bench: error: --out {tmp_path} is a directory; give a file name")
    blocker = tmp_path / "a_file"
    blocker.write_text("x", encoding="utf-8")
    code, _, err = run(capsys, "bench", "--sizes", "20", "--no-real", "--out", blocker / "r.json")
    assert_usage_error(code, err, "--out", f"cannot create it, {blocker} is a file")


def test_eval_classify_out_checked_before_the_run(capsys, tmp_path, labeled, monkeypatch):
    monkeypatch.setattr("tokenflow_rag.evaluation.classification.run_classify", never)
    code, _, err = run(capsys, "eval", "classify", "--format", "jsonl", "--test", labeled, "--out", tmp_path)
    assert_usage_error(code, err, "tokenflow eval classify: error: --out", "is a directory")


def test_eval_retrieve_out_and_plot_checked_before_the_run(capsys, tmp_path, monkeypatch):
    pytest.importorskip("tokenflow_rag.cli.evaluate_retrieve")
    monkeypatch.setattr("tokenflow_rag.cli.evaluate_retrieve.load_benchmark", never)
    base = ["eval", "retrieve", "--format", "dstc9"]
    code, _, err = run(capsys, *base, "--out", tmp_path)
    assert_usage_error(code, err, "--out", "is a directory")
    code, _, err = run(capsys, *base, "--plot", tmp_path)
    assert_usage_error(code, err, "--plot", "is a directory")
    code, _, err = run(capsys, *base, "--plot", tmp_path / "plot.txt")  # matplotlib would fail after the run
    assert_usage_error(code, err, "--plot", "must end in .png")
    code, _, err = run(capsys, *base, "--operating-k", "0")
    assert_usage_error(code, err, "--operating-k must be a positive integer, got 0")
    code, _, err = run(capsys, *base, "--operating-k", "99")
    assert_usage_error(code, err, "--operating-k must be one of")
    code, _, err = run(capsys, *base, "--history", "-1")
    assert_usage_error(code, err, "--history must be an integer >= 0, got -1")


def test_eval_all_and_report_paths_checked_first(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("tokenflow_rag.evaluation.suite.run_suite", never)
    monkeypatch.setattr("tokenflow_rag.evaluation.report.render_report", never)
    results = tmp_path / "results"
    results.mkdir()
    code, _, err = run(capsys, "eval", "all", "--results", results, "--out", tmp_path)
    assert_usage_error(code, err, "--out", "is a directory", "BENCHMARKS.md")
    a_file = tmp_path / "a_file"
    a_file.write_text("x", encoding="utf-8")
    code, _, err = run(capsys, "eval", "all", "--results", a_file, "--out", tmp_path / "B.md")
    assert_usage_error(code, err, f"--results {a_file} is a file")
    code, _, err = run(capsys, "eval", "report", "--results", tmp_path / "none", "--out", tmp_path / "B.md")
    assert_usage_error(code, err, "--results", "no such folder")
    code, _, err = run(capsys, "eval", "report", "--results", results, "--out", tmp_path)
    assert_usage_error(code, err, "--out", "is a directory")


def test_index_out_checked_before_tagging_and_embedding(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("tokenflow_rag.corpus.load_corpus", never)
    a_file = tmp_path / "a_file"
    a_file.write_text("x", encoding="utf-8")
    code, _, err = run(capsys, "index", tmp_path, "--out", a_file)
    assert_usage_error(code, err, f"--out {a_file} is a file")
    code, _, err = run(capsys, "index", tmp_path, "--out", a_file / "idx")
    assert_usage_error(code, err, "--out", f"{a_file} is a file")
    code, _, err = run(capsys, "index", tmp_path, "--out", tmp_path)  # holds a_file: would be wiped
    assert_usage_error(code, err, "--out", "is not a tokenflow index directory")
    code, _, err = run(capsys, "index", tmp_path, "--out", ".")
    assert_usage_error(code, err, "--out . names no new directory")


def test_train_and_calibrate_paths_name_the_argument(capsys, tmp_path, labeled):
    a_file = tmp_path / "a_file"
    a_file.write_text("x", encoding="utf-8")
    code, _, err = run(capsys, "train", labeled, "--out", a_file)
    assert_usage_error(code, err, f"--out {a_file} is a file", "not a tokenflow model directory")
    code, _, err = run(capsys, "train", tmp_path, "--out", tmp_path / "m")
    assert_usage_error(code, err, f"DATA {tmp_path} is a directory")
    code, _, err = run(capsys, "train", labeled, "--dev", tmp_path / "none.jsonl", "--out", tmp_path / "m")
    assert_usage_error(code, err, "--dev", "none.jsonl: no such file")
    # A DEV that is a directory used to read "training file does not exist".
    code, _, err = run(capsys, "calibrate", tmp_path, "--out", tmp_path / "m")
    assert_usage_error(code, err, f"tokenflow calibrate: error: DEV {tmp_path} is a directory")
    assert not (tmp_path / "m").exists()


# -- 3. --model that cannot load is an error (query and index, as in classify) ----------------------------


def test_query_model_that_cannot_load_is_an_error(capsys, tmp_path, index_dir):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "degraded to rules" warning either: it stops, once
        code, out, err = run(capsys, "query", index_dir, "x", "--model", tmp_path / "nonexistent")
        assert_usage_error(code, err, "tokenflow query: error: model directory", "does not exist")
        assert out == ""
        empty = tmp_path / "empty"
        empty.mkdir()
        code, _, err = run(capsys, "query", index_dir, "x", "--model", empty)
        assert_usage_error(code, err, "not a tokenflow model directory")


def test_index_model_that_cannot_load_is_an_error_and_its_help_says_what_it_does(capsys, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("## Refunds\nRefunds take 5 days.\n", encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code, _, err = run(capsys, "index", docs, "--out", tmp_path / "idx", "--model", tmp_path / "none")
    assert_usage_error(code, err, "does not exist")
    assert not (tmp_path / "idx").exists()
    index_help = " ".join(_subparsers(build_parser())["index"].format_help().split())
    assert "taxonomy (intents and keyword rules) tags the chunks" in index_help
    assert "not the network" in index_help


# -- 4. bench --sizes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sizes", "message"),
    [
        ("inf", "'inf' is not a finite number"),
        ("nan", "'nan' is not a finite number"),
        ("1e400", "'1e400' is not a finite number"),
        ("-inf", "'-inf' is not a finite number"),
        ("10.5", "whole number of chunks, at least 10"),
        ("5", "whole number of chunks, at least 10"),
        ("1000,abc", "'abc' is not a number"),
        ("1e12", "do not fit in memory"),
    ],
)
def test_bench_sizes_fail_in_one_line(capsys, monkeypatch, sizes, message):
    monkeypatch.setattr("tokenflow_rag.evaluation.bench.run_bench", never)
    code, _, err = run(capsys, "bench", f"--sizes={sizes}", "--no-real")
    assert_usage_error(code, err, "tokenflow bench: error: --sizes", message)


def test_bench_size_bound_comes_from_available_memory(capsys, monkeypatch):
    from tokenflow_rag.evaluation import bench

    monkeypatch.setattr(bench, "available_memory", lambda: 2**30)  # 1 GiB: ~110k chunks of 512 dims
    monkeypatch.setattr(bench, "run_bench", never)
    code, _, err = run(capsys, "bench", "--sizes", "1000,200k", "--no-real")
    assert_usage_error(code, err, "--sizes: 200000 chunks do not fit in memory", "512-dim float32", "1.0 GiB")
    assert f"at most {2**30 // bench.bytes_per_chunk(512)} chunks fit" in err


def test_run_bench_refuses_sizes_beyond_memory_before_building_anything(monkeypatch):
    from tokenflow_rag.evaluation import bench

    monkeypatch.setattr(bench, "available_memory", lambda: 2**30)
    monkeypatch.setattr(bench, "_bench_size", never)
    with pytest.raises(ConfigError, match="200000 chunks needs about 1.7 GiB"):
        bench.run_bench([1000, 200_000], real_embedder=None, progress=False)


def test_bench_queries_must_be_positive(capsys, monkeypatch):
    monkeypatch.setattr("tokenflow_rag.evaluation.bench.run_bench", never)
    code, _, err = run(capsys, "bench", "--queries", "0", "--no-real")
    assert_usage_error(code, err, "--queries must be a positive integer, got 0")


# -- 5. -v after the subcommand, --json everywhere --------------------------------------------------------


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(actions[0].choices) if actions else {}


def _leaf_commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    for name, sub in _subparsers(parser).items():
        children = _subparsers(sub)
        if children:
            yield from _leaf_commands(sub, (*prefix, name))
        else:
            yield (*prefix, name), sub


@pytest.mark.parametrize(
    ("argv", "verbose"),
    [
        (["classify", "x", "-v"], True),
        (["classify", "x", "--verbose"], True),
        (["-v", "classify", "x"], True),
        (["-v", "classify", "x", "-v"], True),
        (["classify", "x"], False),
        (["eval", "report", "-v"], True),
        (["-v", "eval", "report"], True),
        (["eval", "report"], False),
    ],
)
def test_verbose_before_or_after_the_subcommand(argv, verbose):
    assert build_parser().parse_args(argv).verbose is verbose


def test_every_command_takes_json_and_verbose():
    # README: "Every command takes --json for machines and -v to log the decisions".
    leaves = dict(_leaf_commands(build_parser()))
    assert {("classify",), ("query",), ("eval", "all"), ("eval", "report")} <= set(leaves)
    for name, parser in leaves.items():
        options = {s for action in parser._actions for s in action.option_strings}
        assert {"--json", "-v"} <= options, " ".join(name)


def test_eval_report_and_all_json(capsys, tmp_path, monkeypatch):
    results = tmp_path / "results"
    results.mkdir()
    out = tmp_path / "B.md"
    monkeypatch.setattr(
        "tokenflow_rag.evaluation.report.render_report", lambda results, out: [out, results / "plot.png"]
    )
    code, printed, _ = run(capsys, "eval", "report", "--results", results, "--out", out, "--json")
    assert code == 0 and json.loads(printed) == {"written": [str(out), str(results / "plot.png")]}
    monkeypatch.setattr(
        "tokenflow_rag.evaluation.suite.run_suite", lambda **kwargs: {"ran": 2, "skipped": 1, "failed": 0}
    )
    code, printed, _ = run(capsys, "eval", "all", "--results", results, "--out", out, "--json")
    assert code == 0
    assert json.loads(printed) == {"out": str(out), "results": str(results), "ran": 2, "skipped": 1, "failed": 0}
    code, printed, _ = run(capsys, "eval", "all", "--results", results, "--out", out)
    assert printed.startswith(f"wrote {out} (2 benchmarks run, 1 skipped)")


# -- 6. messages name the flag or argument typed -----------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--lora-r", "0"], "--lora-r must be a positive integer (e.g. 8), got 0"),
        (["--lr", "-1"], "--lr must be a number in (0, 1) (e.g. 5e-3), got -1"),
        (["--lr", "nan"], "--lr must be a number in (0, 1)"),
        (["--lora-alpha", "inf"], "--lora-alpha must be a positive number (e.g. 16), got inf"),
        (["--lora-dropout", "1"], "--lora-dropout must be a number in [0, 1) (e.g. 0.1), got 1"),
        (["--epochs", "0"], "--epochs must be a positive integer, got 0"),
        (["--batch-size", "-2"], "--batch-size must be a positive integer, got -2"),
        (["--dev-fraction", "1.5"], "--dev-fraction must be a number in (0, 1) (e.g. 0.15), got 1.5"),
    ],
)
def test_train_numbers_name_the_flag(capsys, tmp_path, labeled, flags, message):
    code, _, err = run(capsys, "train", labeled, "--out", tmp_path / "m", *flags)
    assert_usage_error(code, err, f"tokenflow train: error: {message}")
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--threads", "0"], "--threads must be a positive integer, got 0"),
        (["--calibrate-folds", "1"], "--calibrate-folds must be >= 2 (e.g. 5), got 1"),
        (["--epochs", "0"], "--epochs must be a positive integer, got 0"),
        (["--max-train", "0"], "--max-train must be a positive integer, got 0"),
        (["--timing-queries", "-1"], "--timing-queries must be an integer >= 0, got -1"),
        (["--lr", "2"], "--lr must be a number in (0, 1) (e.g. 2e-3), got 2"),
        (["--holdout", "0.2"], "--holdout carves the test set out of the --train files"),
        (["--cv", "1"], "--cv must be an integer >= 2, got 1"),
        (["--train", "x.jsonl", "--calibrate-folds", "5"], "--calibrate-folds recalibrates a trained model"),
    ],
)
def test_eval_classify_numbers_name_the_flag(capsys, monkeypatch, labeled, flags, message):
    monkeypatch.setattr("tokenflow_rag.evaluation.classification.run_classify", never)
    code, _, err = run(capsys, "eval", "classify", "--format", "jsonl", "--test", labeled, *flags)
    assert_usage_error(code, err, f"tokenflow eval classify: error: {message}")


def test_eval_classify_without_a_test_set_names_the_flags(capsys, monkeypatch):
    monkeypatch.setattr("tokenflow_rag.evaluation.classification.run_classify", never)
    code, _, err = run(capsys, "eval", "classify", "--format", "jsonl")
    assert_usage_error(code, err, "no test set: pass --test FILE(s), or --holdout FRACTION or --cv K with --train")


def test_query_on_a_file_says_it_is_a_file(capsys, labeled):
    code, _, err = run(capsys, "query", labeled, "x")
    assert_usage_error(code, err, f"INDEX_DIR {labeled} is a file")
    assert "does not exist" not in err


def test_classify_text_with_invalid_unicode_is_a_usage_error(capsys):
    code, _, err = run(capsys, "classify", "refund \udcff", "--mode", "rules")  # bytes that were not UTF-8
    assert_usage_error(code, err, "invalid Unicode")


def test_a_warning_reads_as_one_line_naming_the_command(tmp_path):
    (tmp_path / "a.md").write_text("## Refunds\nRefunds take 5 days.", encoding="utf-8")
    (tmp_path / "b.txt").write_bytes(b"\xff\xfe not utf-8")
    import subprocess
    import sys

    argv = ["index", str(tmp_path), "--out", str(tmp_path / "idx"), "--embedder", "hashing", "--json"]
    done = subprocess.run([sys.executable, "-m", "tokenflow_rag", *argv], capture_output=True, text=True)  # as run
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("tokenflow index: warning: skipped") and done.stderr.count("\n") == 1, done.stderr


def test_an_unknown_embedder_fails_before_the_run(capsys, labeled, monkeypatch):
    monkeypatch.setattr("tokenflow_rag.evaluation.bench.run_bench", never)
    monkeypatch.setattr("tokenflow_rag.evaluation.classification.run_classify", never)
    code, _, err = run(capsys, "bench", "--sizes", "20", "--embedder", "nosuch")
    assert_usage_error(code, err, "unknown embedder 'nosuch'; choose one of")
    code, _, err = run(capsys, "eval", "classify", "--format", "jsonl", "--test", labeled, "--embedder", "nosuch")
    assert_usage_error(code, err, "unknown embedder 'nosuch'")
