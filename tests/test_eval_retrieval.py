"""The retrieval benchmark harness on tiny fixtures in each format (hashing embedder, no network)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from tokenflow_rag.errors import ConfigError, DataFormatError
from tokenflow_rag.evaluation.cache import EmbeddingCache
from tokenflow_rag.evaluation.retrieval import (
    RetrievalBenchConfig,
    curve_above,
    run_retrieval_benchmark,
    split_dev,
    token_ratios,
)
from tokenflow_rag.evaluation.retrieval_datasets import load_crosswoz_retrieval, load_dstc11

FIX = Path(__file__).parent / "fixtures" / "eval"
SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
DSTC11 = [
    "--format",
    "dstc11",
    "--knowledge",
    str(FIX / "dstc11/knowledge.json"),
    "--logs",
    str(FIX / "dstc11/logs.json"),
    "--labels",
    str(FIX / "dstc11/labels.json"),
]
DSTC9 = [
    "--format",
    "dstc9",
    "--knowledge",
    str(FIX / "dstc9/knowledge.json"),
    "--logs",
    str(FIX / "dstc9/logs.json"),
    "--labels",
    str(FIX / "dstc9/labels.json"),
]
CROSSWOZ = [
    "--format",
    "crosswoz",
    "--dialogues",
    str(FIX / "crosswoz_dialogues.json"),
    "--database",
    str(FIX / "crosswoz_db"),
]


def _cli(argv: list[str]) -> int:
    """Run ``eval retrieve`` through its own register(), independent of the eval group's module."""
    from tokenflow_rag.cli.evaluate_retrieve import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["retrieve", *argv])
    return args.func(args)


def _run(argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict:
    out = tmp_path / "result.json"
    assert _cli([*argv, "--embedder", "hashing", "--no-cache", "--no-progress", "--json", "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert json.loads(out.read_text(encoding="utf-8")) == printed
    return printed


@pytest.mark.parametrize("files", [DSTC11, DSTC9, CROSSWOZ], ids=["dstc11", "dstc9", "crosswoz"])
@pytest.mark.parametrize("history", ["0", "2"])
def test_json_schema(files, history, tmp_path, capsys):
    report = _run([*files, "--history", history], tmp_path, capsys)
    methods = report["methods"]
    for name in [
        "fixed_k@1",
        "fixed_k@20",
        "tokenflow",
        "tokenflow@k=1",
        "oracle_entity@k=1",
        "oracle_domain@k=1",
        "adaptive_k@top20",
    ]:
        assert {"tokens_mean", "recall", "hit_rate"} <= set(methods[name]), name
        assert 0.0 <= methods[name]["recall"] <= methods[name]["hit_rate"] <= 1.0
    assert set(report["token_ratio_at_baseline_recall"]) == {"3", "5", "10"}
    assert any(n.startswith("score_cutoff@") for n in methods)
    assert report["history_turns"] == int(history)
    assert report["token_counter"] == "cl100k_base"
    for family, names in report["curves"].items():
        assert all(n in methods for n in names), family


def test_oracle_entity_finds_gold_and_history_resolves_entities(tmp_path, capsys):
    report = _run([*DSTC11, "--history", "2"], tmp_path, capsys)
    assert report["resolver"]["gold_entity_predicted"] == 1.0
    assert report["methods"]["oracle_entity@k=5"]["recall"] == 1.0
    # Without history, "Is the decor themed?" names no restaurant.
    report = _run(DSTC11, tmp_path, capsys)
    assert report["resolver"]["gold_entity_predicted"] < 1.0


def test_plot_and_limit(tmp_path, capsys):
    png = tmp_path / "img" / "curve.png"
    report = _run([*CROSSWOZ, "--limit", "2", "--plot", str(png)], tmp_path, capsys)
    assert report["queries"] == 2
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_text_output(capsys):
    assert _cli([*DSTC11, "--embedder", "hashing", "--no-cache", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "token ratio at fixed-k recall" in out and "tokenflow@k=1" in out


@pytest.mark.parametrize(
    ("argv", "error", "match"),
    [
        (
            [*DSTC11[:-2], "--labels", str(FIX / "broken/dstc11_labels_short.json")],
            DataFormatError,
            "dstc11_labels_short.json",
        ),
        (
            [*DSTC11[:-2], "--labels", str(FIX / "broken/dstc11_labels_unknown_doc.json")],
            DataFormatError,
            "hotel:0:faq:99",
        ),
        ([*DSTC11[:-2], "--labels", str(FIX / "broken/dstc11_labels_bad_target.json")], DataFormatError, "target"),
        (["--format", "dstc9", *DSTC11[2:]], DataFormatError, "--format dstc9"),
        (
            ["--format", "dstc11", "--knowledge", str(FIX / "broken/nlupp_truncated.json"), *DSTC11[4:]],
            DataFormatError,
            "nlupp_truncated.json: line",
        ),
        (["--format", "crosswoz", *DSTC11[2:]], ConfigError, "needs --dialogues, --database"),
        ([*CROSSWOZ, "--logs", str(FIX / "dstc11/logs.json")], ConfigError, "do not apply to --format crosswoz"),
        (DSTC11[:-2], ConfigError, "needs --labels"),
        (
            [
                "--format",
                "crosswoz",
                "--dialogues",
                str(FIX / "dstc11/logs.json"),
                "--database",
                str(FIX / "crosswoz_db"),
            ],
            DataFormatError,
            "logs.json",
        ),
        (
            [
                "--format",
                "crosswoz",
                "--dialogues",
                str(FIX / "broken/crosswoz_bad_role.json"),
                "--database",
                str(FIX / "crosswoz_db"),
            ],
            DataFormatError,
            "crosswoz_bad_role.json",
        ),
        (
            [
                "--format",
                "crosswoz",
                "--dialogues",
                str(FIX / "crosswoz_dialogues.json"),
                "--database",
                str(FIX / "dstc11"),
            ],
            ConfigError,
            "attraction_db.json",
        ),
        ([*DSTC11[:2], "--knowledge", "/no/such/knowledge.json", *DSTC11[4:]], ConfigError, "no such file"),
        ([*DSTC11, "--limit", "0"], ConfigError, "--limit"),
    ],
)
def test_bad_files_give_clear_errors(argv, error, match):
    with pytest.raises(error, match=match):
        _cli([*argv, "--embedder", "hashing", "--no-cache", "--no-progress"])


def test_token_ratios_pick_the_cheapest_setting_reaching_recall():
    methods = {
        "fixed_k@3": {"tokens_mean": 300.0, "recall": 0.2},
        "fixed_k@5": {"tokens_mean": 500.0, "recall": 0.3},
        "fixed_k@10": {"tokens_mean": 1000.0, "recall": 0.9},
        "tokenflow@k=1": {"tokens_mean": 50.0, "recall": 0.25},
        "tokenflow@k=2": {"tokens_mean": 100.0, "recall": 0.35},
    }
    ratios, detail = token_ratios(methods, ["tokenflow@k=2", "tokenflow@k=1"])
    assert ratios == {"3": pytest.approx(50 / 300, abs=1e-4), "5": pytest.approx(0.2), "10": None}
    assert detail["5"]["tokenflow"] == "tokenflow@k=2"
    above = curve_above(
        {**methods, "fixed_k@1": {"tokens_mean": 10.0, "recall": 0.01}},
        {"tokenflow": ["tokenflow@k=1", "tokenflow@k=2"], "fixed_k": ["fixed_k@1", "fixed_k@3", "fixed_k@10"]},
    )
    assert above["not_beaten"] == ["fixed_k@1", "fixed_k@10"]  # cheaper than any setting / out-recalled


def test_split_dev_is_by_dialogue_and_disjoint():
    ds = load_crosswoz_retrieval(FIX / "crosswoz_dialogues.json", FIX / "crosswoz_db")
    dev, rest = split_dev(ds, "dev", dev_fraction=0.5), split_dev(ds, "heldout", dev_fraction=0.5)
    assert {q.id for q in dev.queries}.isdisjoint({q.id for q in rest.queries})
    assert len(dev.queries) + len(rest.queries) == len(ds.queries)
    assert split_dev(ds, "dev", dev_fraction=0.5).queries == dev.queries  # deterministic
    with pytest.raises(ConfigError, match="subset"):
        split_dev(ds, "test")


def test_calibration_chooses_the_operating_k():
    ds = load_dstc11(FIX / "dstc11/knowledge.json", FIX / "dstc11/logs.json", FIX / "dstc11/labels.json")
    from tokenflow_rag import HashingEmbedder

    report = run_retrieval_benchmark(
        ds, HashingEmbedder(), config=RetrievalBenchConfig(history_turns=2), calibration=ds, progress=False
    )
    assert report["operating_point"]["chosen_on"].startswith("dstc11")
    assert report["methods"]["tokenflow"] == report["methods"][report["operating_point"]["method"]]
    with pytest.raises(ConfigError, match="operating_k"):
        RetrievalBenchConfig(operating_k=9)
    with pytest.raises(ConfigError, match="fixed_ks"):
        RetrievalBenchConfig(fixed_ks=(1, 2))


def test_embedding_cache_embeds_each_text_once(tmp_path):
    from tokenflow_rag import HashingEmbedder

    seen: list[str] = []

    class Counting(HashingEmbedder):
        def embed_documents(self, texts):
            seen.extend(texts)
            return super().embed_documents(texts)

    cache, emb = EmbeddingCache(tmp_path), Counting(dim=16)
    first = cache.embed(emb, ["a b", "c", "a b"], progress=False)
    assert seen == ["a b", "c"] and np.array_equal(first[0], first[2])
    again = cache.embed(emb, ["c", "a b"], progress=False)  # another subset, another order: all cached
    assert seen == ["a b", "c"] and np.array_equal(again, first[[1, 0]])
    mixed = cache.embed(emb, ["d", "a b"], progress=False)
    assert seen == ["a b", "c", "d"] and np.array_equal(mixed[0], emb.embed_query("d"))
    folder = cache.folder(emb)
    assert len(list(folder.glob("shard-*.npy"))) == 2 and not list(folder.glob("*.tmp"))
    # a damaged shard is dropped and its texts embedded again
    next(folder.glob("shard-*.npy")).write_bytes(b"garbage")
    seen.clear()
    fixed = cache.embed(emb, ["a b", "c", "d"], progress=False)
    assert seen and np.allclose(fixed, emb.embed_documents(["a b", "c", "d"]))
    assert EmbeddingCache(None).folder(emb) is None


def test_the_tokenflow_cli_exposes_eval_retrieve(capsys):
    pytest.importorskip("tokenflow_rag.cli.evaluate")
    from tokenflow_rag.cli import main

    assert main(["eval", "retrieve", *DSTC9, "--embedder", "hashing", "--no-cache", "--no-progress", "--json"]) == 0
    assert "token_ratio_at_baseline_recall" in json.loads(capsys.readouterr().out)


@pytest.mark.datasets
@pytest.mark.skipif(
    not (SHARED_DATASETS / "dstc11_track5").is_dir(), reason="../shared/datasets/dstc11_track5 is absent"
)
def test_real_dstc11_quick_run(tmp_path, capsys):
    root = SHARED_DATASETS / "dstc11_track5"
    report = _run(
        [
            "--format",
            "dstc11",
            "--knowledge",
            str(root / "knowledge.json"),
            "--logs",
            str(root / "val/logs.json"),
            "--labels",
            str(root / "val/labels.json"),
            "--history",
            "8",
            "--limit",
            "40",
        ],
        tmp_path,
        capsys,
    )
    assert report["documents"] == 4299 and report["queries"] == 40
    assert report["resolver"]["gold_entity_predicted"] > 0.8
