"""``tokenflow train``, ``tokenflow calibrate`` and ``tokenflow classify`` end to end, on a tiny random backbone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

from tokenflow_rag.classifiers.backbone import make_tiny_backbone  # noqa: E402
from tokenflow_rag.cli import main  # noqa: E402

ROWS = [
    {"text": "退款多久到账", "intents": ["refund"]},
    {"text": "refund my money back", "intents": ["refund"]},
    {"text": "I want my money back", "intents": ["refund"]},
    {"text": "支付失败怎么办", "intents": ["payment"]},
    {"text": "how do I pay by card", "intents": ["payment"]},
    {"text": "can I pay with paypal", "intents": ["payment"]},
    {"text": "快递到哪了，顺便短信通知我", "intents": ["shipping", "notification"]},
    {"text": "where is my package, text me", "intents": ["shipping", "notification"]},
    {"text": "你好", "intents": []},
    {"text": "good morning", "intents": []},
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("cli")
    backbone = make_tiny_backbone(root / "backbone", "bert")
    data = root / "train.jsonl"
    data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in ROWS), encoding="utf-8")
    out = root / "model"
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        rc = main(
            [
                "train",
                str(data),
                "--out",
                str(out),
                "--backbone",
                str(backbone),
                "--epochs",
                "1",
                "--batch-size",
                "4",
                "--dev-fraction",
                "0.3",
                "--json",
            ]
        )
    assert rc == 0
    return out, json.loads(buffer.getvalue())


def test_train_writes_safetensors_and_json_only(trained: tuple[Path, dict]) -> None:
    out, summary = trained
    assert {p.suffix for p in out.iterdir()} == {".json", ".safetensors"}
    assert summary["examples"] == len(ROWS) and summary["train_examples"] + summary["dev_examples"] == len(ROWS)
    assert set(summary["dev"]) >= {"rules", "neural", "ngrams_at_0.5", "hybrid"}
    assert summary["size_bytes"] > 0 and summary["epochs_run"] == 1


def test_classify_json_shows_scores_intents_and_components(
    trained: tuple[Path, dict], capsys: pytest.CaptureFixture[str]
) -> None:
    out, _ = trained
    assert main(["classify", "退款多久到账，短信也没收到", "--model", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["mode"] == "hybrid"
    assert set(data) >= {"intents", "scores", "confidence", "components", "contributions", "evidence"}
    assert set(data["components"]) == {"rules", "neural", "ngrams"}
    refund = data["contributions"]["refund"]
    assert refund["rules"] == pytest.approx(0.3 * data["components"]["rules"]["refund"], abs=1e-3)
    assert refund["ngrams"] == pytest.approx(0.35 * data["components"]["ngrams"]["refund"], abs=1e-3)
    assert main(["classify", "退款", "--model", str(out)]) == 0
    assert "intents:" in capsys.readouterr().out


@pytest.mark.parametrize("mode", ["rules", "neural"])
def test_classify_modes(trained: tuple[Path, dict], capsys: pytest.CaptureFixture[str], mode: str) -> None:
    out, _ = trained
    assert main(["classify", "I never got the refund", "--model", str(out), "--mode", mode, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["components"]) == {mode}
    assert data["mode"] == mode


def test_train_bad_data_names_row_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text('{"text": "ok", "intents": []}\n{"text": "x", "intents": "payment"}\n', encoding="utf-8")
    assert main(["train", str(data), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "line 2, field 'intents'" in err and "Traceback" not in err
    assert not (tmp_path / "m").exists()


def test_train_refuses_to_overwrite_a_non_model_directory(
    trained: tuple[Path, dict], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "keep.txt").write_text("precious", encoding="utf-8")
    data = tmp_path / "train.jsonl"
    data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in ROWS), encoding="utf-8")
    backbone = trained[0].parent / "backbone"
    assert main(["train", str(data), "--out", str(tmp_path), "--backbone", str(backbone), "--epochs", "1"]) == 2
    assert "not a tokenflow model directory" in capsys.readouterr().err
    assert (tmp_path / "keep.txt").read_text(encoding="utf-8") == "precious"


def test_classify_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for mode in ("neural", "hybrid"):
        assert main(["classify", "refund", "--model", str(tmp_path / "none"), "--mode", mode]) == 2
        assert "does not exist" in capsys.readouterr().err
    assert main(["classify", "  ", "--mode", "rules"]) == 2
    assert "TEXT is empty" in capsys.readouterr().err


def test_train_with_a_separate_dev_file(
    trained: tuple[Path, dict], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backbone = trained[0].parent / "backbone"
    data, dev = tmp_path / "train.jsonl", tmp_path / "dev.jsonl"
    data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in ROWS), encoding="utf-8")
    dev_rows = [
        {"text": "钱什么时候退回来", "intents": ["refund"]},
        {"text": "pay with a card?", "intents": ["payment"]},
    ]
    dev.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in dev_rows), encoding="utf-8")
    args = ["train", str(data), "--out", str(tmp_path / "m"), "--backbone", str(backbone), "--epochs", "1", "--json"]
    assert main([*args, "--dev", str(dev)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["train_examples"], summary["dev_examples"]) == (len(ROWS), len(dev_rows))
    # --dev with --dev-fraction: the rows held out of DATA join the dev file's.
    both = [*args[:3], str(tmp_path / "m1"), *args[4:], "--dev", str(dev), "--dev-fraction", "0.3"]
    assert main(both) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["dev_examples"] > len(dev_rows) and summary["train_examples"] < len(ROWS)
    assert summary["train_examples"] + summary["dev_examples"] == len(ROWS) + len(dev_rows)
    # A dev text that is also a training text would make the calibration look better than it is.
    dev.write_text(json.dumps(ROWS[0], ensure_ascii=False), encoding="utf-8")
    assert main([*args[:3], str(tmp_path / "m2"), *args[4:], "--dev", str(dev)]) == 2
    err = capsys.readouterr().err
    assert "also in DATA" in err and "退款多久到账" in err
    assert not (tmp_path / "m2").exists()


def test_train_rule_weight_auto_and_bad_values(
    trained: tuple[Path, dict], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backbone = trained[0].parent / "backbone"
    data = tmp_path / "train.jsonl"
    data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in ROWS), encoding="utf-8")
    args = ["train", str(data), "--backbone", str(backbone), "--epochs", "1", "--dev-fraction", "0.3", "--json"]
    assert main([*args, "--out", str(tmp_path / "m"), "--rule-weight", "auto"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rule_weight"] == summary["dev"]["rule_weight"]["chosen"]
    saved = json.loads((tmp_path / "m" / "calibration.json").read_text(encoding="utf-8"))["hybrid"]
    assert saved["rule_weight"] == summary["rule_weight"]
    assert main([*args, "--out", str(tmp_path / "m2"), "--rule-weight", "0.5"]) == 0
    assert json.loads(capsys.readouterr().out)["rule_weight"] == 0.5
    assert main([*args, "--out", str(tmp_path / "m3"), "--rule-weight", "heavy"]) == 2
    assert "--rule-weight must be a number in [0, 1] or 'auto'" in capsys.readouterr().err


def test_calibrate_rewrites_thresholds_on_new_labelled_texts(
    trained: tuple[Path, dict], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, _ = trained
    dev = tmp_path / "traffic.jsonl"
    rows = [
        *(
            {"text": t, "intents": ["refund"]}
            for t in ("退款还没到", "refund not received", "退钱", "where is my refund")
        ),
        *({"text": t, "intents": []} for t in ("谢谢", "thanks a lot", "在吗", "ok")),
    ]
    dev.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    out = tmp_path / "mine"
    args = ["calibrate", str(dev), "--model", str(model), "--out", str(out)]
    assert main([*args, "--rule-weight", "0.5", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["dev_examples"] == len(rows) and summary["rule_weight"] == 0.5
    assert summary["previous_rule_weight"] == 0.3
    assert set(summary["dev"]) >= {"before", "rules", "neural", "hybrid", "kept_previous", "uncalibrated"}
    saved = json.loads((out / "calibration.json").read_text(encoding="utf-8"))["hybrid"]
    assert saved["rule_weight"] == 0.5 and saved["intents"]["refund"]["threshold"] == summary["thresholds"]["refund"]
    info = json.loads((out / "tokenflow_model.json").read_text(encoding="utf-8"))["training"]
    assert info["recalibrated"]["dev_examples"] == len(rows)
    assert main(["classify", "退款还没到", "--model", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mode"] == "hybrid"
    # People read the same summary as text; the model shipped in the package is never overwritten.
    assert main(args) == 0
    assert "hybrid after" in capsys.readouterr().out
    assert main(["calibrate", str(dev), "--out", str(Path(__file__).parents[1] / "README.md")]) == 2
    assert "not a tokenflow model directory" in capsys.readouterr().err
    from tokenflow_rag.classifiers.neural import default_model_dir, default_training_data

    assert main(["calibrate", str(dev), "--out", str(default_model_dir())]) == 2
    assert "shipped inside the package" in capsys.readouterr().err
    # Calibrating the shipped model on rows it was trained on would flatter it.
    learned = tmp_path / "learned.jsonl"
    learned.write_text(default_training_data().read_text(encoding="utf-8").splitlines()[0], encoding="utf-8")
    assert main(["calibrate", str(learned), "--out", str(tmp_path / "m3")]) == 2
    assert "also in the shipped model's training data" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "x", "intents": ["weather"]}), encoding="utf-8")
    assert main(["calibrate", str(bad), "--model", str(model), "--out", str(tmp_path / "m2")]) == 2
    assert "unknown intent" in capsys.readouterr().err and not (tmp_path / "m2").exists()


def test_train_no_ngrams_leaves_the_ngram_part_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    backbone = make_tiny_backbone(tmp_path / "backbone", "bert")
    data = tmp_path / "train.jsonl"
    data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in ROWS), encoding="utf-8")
    args = ["train", str(data), "--out", str(tmp_path / "m"), "--backbone", str(backbone), "--epochs", "1"]
    assert main([*args, "--dev-fraction", "0.3", "--no-ngrams"]) == 0
    assert "n-grams" not in capsys.readouterr().out
    assert not (tmp_path / "m" / "ngrams.json").exists()
    assert (tmp_path / "m" / "tokenflow_model.json").exists()


def test_train_network_flags_reach_the_model_and_bad_ones_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backbone = make_tiny_backbone(tmp_path / "backbone", "bert")
    data = tmp_path / "train.jsonl"
    data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in ROWS), encoding="utf-8")
    args = ["train", str(data), "--backbone", str(backbone), "--epochs", "1", "--dev-fraction", "0.3"]
    targets = ["query", "key", "value", "intermediate.dense", "output.dense"]
    lora = ["--lora-r", "4", "--lora-alpha", "8", "--lora-dropout", "0", "--lora-targets", *targets]
    assert main([*args, "--out", str(tmp_path / "m"), *lora]) == 0
    saved = json.loads((tmp_path / "m" / "tokenflow_model.json").read_text(encoding="utf-8"))["config"]["lora"]
    assert saved == {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": targets}
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "m2"), "--lora-targets", "nope"]) == 2
    assert "target_modules ['nope'] are not linear layers" in capsys.readouterr().err
    assert not (tmp_path / "m2").exists()
    assert main([*args, "--out", str(tmp_path / "m3"), "--lora-r", "0"]) == 2
    assert "r must be a positive integer" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "m4"), "--device", "gpu0"]) == 2
    assert "'gpu0' is not a torch device" in capsys.readouterr().err
    assert not (tmp_path / "m4").exists()


def test_train_help_states_the_lora_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    from tokenflow_rag.classifiers.lora import LoraSettings

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    defaults = LoraSettings()
    for words, value in (
        ("LoRA update", defaults.r),
        ("alpha / r", defaults.alpha),
        ("LoRA dropout", defaults.dropout),
    ):
        assert f"{words} (default {value})" in text
