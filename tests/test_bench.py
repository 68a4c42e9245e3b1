"""``tokenflow bench`` on tiny sizes: the report's shape, never its speed (numbers are reports, not assertions)."""

from __future__ import annotations

import argparse
import json

import pytest

from tokenflow_rag.errors import ConfigError
from tokenflow_rag.evaluation.bench import format_bench, machine_info, run_bench

ROW_KEYS = {
    "chunks",
    "classify_ms_p50",
    "classify_ms_p95",
    "retrieve_ms_p50",
    "retrieve_ms_p95",
    "plain_search_ms_p50",
    "plain_search_ms_p95",
    "retrieve_over_plain",
    "retrieve_over_plain_no_baseline_tracking",
    "tag_docs_per_s",
    "index_docs_per_s",
    "breakdown_ms_mean",
}


def _cli(argv: list[str]) -> int:
    from tokenflow_rag.cli.bench import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["bench", *argv])
    return args.func(args)


def test_report_shape():
    report = run_bench([50, 120], queries=5, dim=16, tag_sample=20, real_embedder=None, progress=False)
    assert [r["chunks"] for r in report["sizes"]] == [50, 120]
    for row in report["sizes"]:
        assert set(row) >= ROW_KEYS
        assert row["retrieve_over_plain"] > 0 and row["index_docs_per_s"] > 0
    assert report["growth"]["from_chunks"] == 50 and report["growth"]["to_chunks"] == 120
    assert report["machine"]["cores"] >= 1 and report["faiss_threads"] == 1
    assert "ratio" in format_bench(report)


def test_cli_json(capsys):
    assert _cli(["--sizes", "40,0.06k", "--queries", "3", "--no-real", "--json", "--no-progress"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["chunks"] for r in report["sizes"]] == [40, 60]
    assert "real_embedder" not in report and report["partition_by_intent"] is False
    assert _cli(["--sizes", "40", "--queries", "3", "--no-real", "--partitions", "--json", "--no-progress"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["partition_by_intent"] is True and report["sizes"][0]["partitions_mib"] >= 0


def test_cli_int8_serves_the_default_network_in_int8(capsys):
    pytest.importorskip("torch")
    assert _cli(["--sizes", "40", "--queries", "3", "--no-real", "--int8", "--json", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["classifier"] == "HybridClassifier (int8 network)"


@pytest.mark.parametrize(
    ("argv", "match"),
    [(["--sizes", "10,abc"], "--sizes"), (["--sizes", "5"], "sizes"), (["--faiss-threads", "-1"], "faiss-threads")],
)
def test_bad_arguments(argv, match):
    with pytest.raises(ConfigError, match=match):
        _cli([*argv, "--no-real", "--no-progress"])


def test_real_embedder_row_with_the_hashing_embedder():
    report = run_bench([30], queries=2, dim=8, tag_sample=10, real_embedder="hashing", progress=False)
    real = report["real_embedder"]
    if "skipped" in real:
        pytest.skip(real["skipped"])
    assert real["embedder"].startswith("hashing") and real["chunks"] > 50 and real["retrieve_over_plain"] > 0


def test_machine_info():
    info = machine_info()
    assert {"cpu", "cores", "python", "date"} <= set(info)
