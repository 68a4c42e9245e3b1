"""``tokenflow eval classify``: every format, the JSON contract, label mapping, splits and clear errors."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from tokenflow_rag.cli import main
from tokenflow_rag.errors import ConfigError, DataFormatError
from tokenflow_rag.evaluation.classification import ClassifyConfig, cross_validate, run_classify
from tokenflow_rag.evaluation.datasets import LabeledText, load_labeled

pytest.importorskip("sklearn")

FIX = Path(__file__).parent / "fixtures" / "eval"
BROKEN = FIX / "broken"
FAST = {"embedder": "hashing", "timing_queries": 3, "threads": 1}  # no model, no heavy embedder, no spinning pools
METRICS = {
    "n",
    "micro_f1",
    "macro_f1",
    "exact_match",
    "accuracy",
    "per_intent",
    "none_precision",
    "none_recall",
    "seconds_train",
    "ms_per_query_p50",
}


def _snips_file(path: Path, rows: list[tuple[str, str]]) -> Path:
    blocks = ["\n".join([*(f"{tok} O" for tok in text.split()), intents]) for text, intents in rows]
    path.write_text("\n\n".join(blocks) + "\n\n", encoding="utf-8")
    return path


SNIPS_ROWS = [
    *((f"play some {g} music", "PlayMusic") for g in ("jazz", "rock", "pop", "soul", "funk", "blues")),
    *((f"will it rain in {c} tomorrow", "GetWeather") for c in ("paris", "rome", "oslo", "lima", "kyiv", "bern")),
    *((f"book a table for {n} people", "BookRestaurant") for n in ("two", "three", "four", "five", "six", "ten")),
]


@pytest.fixture(scope="module")
def snips(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("snips")
    train = _snips_file(root / "train.txt", SNIPS_ROWS)
    test = _snips_file(
        root / "test.txt",
        [
            ("play some jazz music and will it rain in rome tomorrow", "PlayMusic#GetWeather"),
            ("book a table for two people", "BookRestaurant"),
            ("will it rain in lima tomorrow , play some funk music", "GetWeather#PlayMusic"),
        ],
    )
    return train, test


def test_rules_and_baselines_on_mix_style_snips(snips: tuple[Path, Path]) -> None:
    train, test = snips
    result = run_classify(ClassifyConfig("snips", test=(str(test),), train=(str(train),), mode="rules", **FAST))
    assert set(result) >= METRICS  # the requested mode's metrics sit at the top level
    assert result["mode"] == "rules" and result["format"] == "snips"
    assert result["n_train"] == 3 * len(SNIPS_ROWS)  # Mix-style rows: 3x the single-intent source
    assert set(result["modes"]) == {"rules", "neural", "hybrid", "tfidf_logreg", "embedding_logreg"}
    assert result["modes"]["neural"] == {"skipped": "not run (--mode rules)"}
    rules = result["modes"]["rules"]
    assert rules["exact_match"] == 1.0  # mined keywords: play / rain / book
    assert set(rules["per_intent"]) == {"PlayMusic", "GetWeather", "BookRestaurant"}  # raw labels, not safe names
    assert set(rules["per_intent"]["PlayMusic"]) >= {"precision", "recall", "f1"}
    for name in ("tfidf_logreg", "embedding_logreg"):
        assert set(result["modes"][name]) >= METRICS and result["modes"][name]["seconds_train"] >= 0
    assert result["setup"]["embedder"] == "hashing"


def test_every_format_reads_and_scores() -> None:
    cases = [
        ClassifyConfig("jsonl", test=(str(FIX / "labeled.jsonl"),), train=(str(FIX / "labeled.jsonl"),)),
        ClassifyConfig("jsonl", test=(str(FIX / "prototype.jsonl"),), train=(str(FIX / "prototype.jsonl"),)),
        ClassifyConfig("csv", test=(str(FIX / "labeled.csv"),), train=(str(FIX / "labeled.csv"),)),
        ClassifyConfig("nlupp", test=(str(FIX / "nlupp_fold1.json"),), train=(str(FIX / "nlupp_fold0.json"),)),
        ClassifyConfig(
            "crosswoz", test=(str(FIX / "crosswoz_dialogues.json"),), train=(str(FIX / "crosswoz_dialogues.json"),)
        ),
    ]
    for config in cases:
        result = run_classify(ClassifyConfig(**{**config.__dict__, "mode": "rules", **FAST}))
        assert result["n_test"] > 0 and 0.0 <= result["micro_f1"] <= 1.0, config.fmt


def test_clinc_reads_train_and_val_lists_and_maps_domains() -> None:
    clinc = str(FIX / "clinc.json")
    result = run_classify(
        ClassifyConfig(
            "clinc", test=(clinc,), train=(clinc,), domains=str(FIX / "clinc_domains.json"), mode="rules", **FAST
        )
    )
    assert result["n_train"] == 4 and result["n_test"] == 3  # train + oos_train; val + oos_val
    labels = set(result["modes"]["tfidf_logreg"]["per_intent"]) | set(result["modes"]["rules"]["per_intent"])
    assert labels <= {"banking", "kitchen_and_dining"}
    assert result["none_recall"] == result["modes"]["rules"]["none_recall"]  # oos = none
    assert result["accuracy"] == result["exact_match"]


def test_default_classifier_is_scored_at_the_test_label_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import tokenflow_rag.classifiers as classifiers
    from tokenflow_rag.classifiers.rules import RuleClassifier

    monkeypatch.setattr(classifiers, "load_default_classifier", lambda taxonomy=None: RuleClassifier(taxonomy))
    test = tmp_path / "seed.jsonl"
    rows = [
        ("退款多久到账", ["payment"]),
        ("快递什么时候发货", ["order_management"]),
        ("今天天气不错", ["none"]),
        ("我的优惠券不能用", ["none"]),
    ]
    test.write_text(
        "\n".join(json.dumps({"prompt": t, "output": o}, ensure_ascii=False) for t, o in rows), encoding="utf-8"
    )
    result = run_classify(ClassifyConfig("jsonl", test=(str(test),), baselines=False, timing_queries=2))
    rules = result["modes"]["rules"]
    # refund -> payment, shipping -> order_management; promotion is outside the file's label set: dropped.
    assert rules["exact_match"] == 1.0
    assert set(rules["per_intent"]) == {"payment", "order_management"}
    assert result["modes"]["hybrid"]["skipped"].startswith("not available")
    assert result["mode"] == "rules"  # hybrid asked for, not available: the top level says what ran
    assert result["setup"]["overlap_with_shipped_training_data"] >= 0  # counted and reported


def test_default_classifier_baselines_learn_from_the_shipped_training_data(monkeypatch: pytest.MonkeyPatch) -> None:
    import tokenflow_rag.classifiers as classifiers
    from tokenflow_rag.classifiers.rules import RuleClassifier

    monkeypatch.setattr(classifiers, "load_default_classifier", lambda taxonomy=None: RuleClassifier(taxonomy))
    result = run_classify(ClassifyConfig("jsonl", test=(str(FIX / "prototype.jsonl"),), **FAST))
    assert "intents_train.jsonl" in result["setup"]["baselines_trained_on"]
    tfidf = result["modes"]["tfidf_logreg"]
    assert tfidf["n_train"] > 1000
    gold = {i for ex in load_labeled("jsonl", [FIX / "prototype.jsonl"]) for i in ex.intents}
    assert set(tfidf["per_intent"]) <= gold  # predictions mapped to the test file's labels


def test_labels_outside_the_classifier_are_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import tokenflow_rag.classifiers as classifiers
    from tokenflow_rag.classifiers.rules import RuleClassifier

    monkeypatch.setattr(classifiers, "load_default_classifier", lambda taxonomy=None: RuleClassifier(taxonomy))
    with pytest.raises(ConfigError, match="--train"):
        run_classify(ClassifyConfig("snips", test=(str(FIX / "snips.txt"),), baselines=False))


def test_crosswoz_holdout_splits_whole_dialogues(tmp_path: Path) -> None:
    dialogues = json.loads((FIX / "crosswoz_dialogues.json").read_text(encoding="utf-8"))
    many = {f"{i}-{k}": v for i in range(20) for k, v in dialogues.items()}
    path = tmp_path / "val.json.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("val.json", json.dumps(many, ensure_ascii=False))
    config = ClassifyConfig(
        "crosswoz", train=(str(path),), holdout=0.25, mode="rules", baselines=False, timing_queries=0
    )
    result = run_classify(config)
    users_per_dialogue = {"101": 3, "102": 2}  # user turns per fixture dialogue
    total = 20 * sum(users_per_dialogue.values())
    assert result["n_train"] + result["n_test"] == total
    assert 0 < result["n_test"] < total
    assert run_classify(config)["n_test"] == result["n_test"]  # seeded: the same split every time


def test_max_train_is_a_seeded_subsample(snips: tuple[Path, Path]) -> None:
    train, test = snips
    base = {"test": (str(test),), "train": (str(train),), "mode": "rules", "baselines": False, "timing_queries": 0}
    small = run_classify(ClassifyConfig("snips", max_train=10, **base))
    assert small["n_train"] == 10
    unmixed = run_classify(ClassifyConfig("snips", max_train=7, mix=False, **base))
    assert unmixed["n_train"] == 7


@pytest.mark.parametrize("mix", [True, False])
def test_no_dev_utterance_reaches_what_the_hybrid_learns_from(mix: bool) -> None:
    # The hybrid is calibrated on dev rows: a dev utterance inside a training row or a mined keyword's
    # source would make every part look better there than on new text.
    from tokenflow_rag.evaluation.classification import _training_rows

    source = [LabeledText(text, (intent,)) for text, intent in SNIPS_ROWS * 2]  # with duplicates, as real data has
    training = _training_rows(ClassifyConfig("snips", test=("t",), train=("t",), mix=mix), source)
    assert training.fit and training.dev
    dev_parts = {part for ex in training.dev for part in _utterances(ex.text)}
    fit_parts = {part for ex in training.fit for part in _utterances(ex.text)}
    keyword_texts = {ex.text for ex in training.keyword_source}
    assert dev_parts.isdisjoint(fit_parts | keyword_texts)
    assert fit_parts <= keyword_texts
    assert len(training.rows) == (3 * len(source) if mix else len(source))


def _utterances(text: str) -> list[str]:
    """The source utterances a Mix-style row was joined from."""
    import re

    from tokenflow_rag.evaluation.datasets import MIX_JOINERS

    pattern = "|".join(re.escape(j) for j in sorted(MIX_JOINERS, key=len, reverse=True))
    return [part.strip() for part in re.split(pattern, text) if part.strip()]


def test_cross_validation_pools_every_fold(tmp_path: Path) -> None:
    texts = {"pets": "can i bring my dog", "wifi": "is there wifi in the room", "parking": "where can i park the car"}
    folds = []
    for i in range(4):
        rows = [{"text": f"{t} {i}", "intents": [name]} for name, t in texts.items()] + [{"text": f"thanks {i}"}]
        folds.append(tmp_path / f"fold{i}.json")
        folds[-1].write_text(json.dumps(rows), encoding="utf-8")
    result = cross_validate(
        ClassifyConfig("nlupp", train=tuple(map(str, folds)), mode="rules", baselines=False, timing_queries=0), k=2
    )
    assert result["cv_folds"] == 2 and result["n_test"] == 16  # every example predicted once
    assert len(result["modes"]["rules"]["micro_f1_folds"]) == 2
    assert result["splits"][0]["test"] == [str(folds[0]), str(folds[2])]  # round-robin groups
    with pytest.raises(ConfigError, match="at least 5 fold files"):
        cross_validate(ClassifyConfig("nlupp", train=tuple(map(str, folds)), baselines=False), k=5)


@pytest.mark.parametrize(
    ("fmt", "path"),
    [
        ("jsonl", BROKEN / "bad_json.jsonl"),
        ("jsonl", BROKEN / "missing_intents.jsonl"),
        ("nlupp", BROKEN / "nlupp_truncated.json"),
        ("nlupp", BROKEN / "nlupp_string_intents.json"),
        ("snips", BROKEN / "snips_no_tokens.txt"),
        ("crosswoz", BROKEN / "crosswoz_bad_act.json"),
        ("clinc", BROKEN / "clinc_bad_pair.json"),
        ("snips", FIX / "clinc.json"),  # wrong --format flag
        ("clinc", FIX / "labeled.jsonl"),  # wrong --format flag
    ],
)
def test_bad_files_name_the_file_and_the_format(fmt: str, path: Path) -> None:
    with pytest.raises(DataFormatError) as info:
        run_classify(ClassifyConfig(fmt, test=(str(path),), train=(str(path),), mode="rules", baselines=False))
    assert str(path) in str(info.value)
    assert f"--format {fmt}" in str(info.value) or fmt == "jsonl"


def test_unknown_domain_names_the_domains_file() -> None:
    clinc = str(FIX / "clinc.json")
    missing = str(BROKEN / "clinc_domains_missing.json")
    with pytest.raises(DataFormatError, match="clinc_domains_missing.json"):
        run_classify(
            ClassifyConfig("clinc", test=(clinc,), train=(clinc,), domains=missing, mode="rules", baselines=False)
        )


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"fmt": "xml", "test": ("a",)}, "unknown format"),
        ({"fmt": "jsonl", "test": "a.jsonl"}, "list of paths"),
        ({"fmt": "jsonl", "test": ("a",), "mode": "magic"}, "mode must be"),
        ({"fmt": "jsonl", "test": ("a",), "holdout": 0.2, "train": ("b",)}, "either test files or holdout"),
        ({"fmt": "jsonl", "holdout": 1.5, "train": ("b",)}, "holdout must be"),
        ({"fmt": "jsonl", "test": ("a",), "max_train": 0}, "max_train"),
        ({"fmt": "jsonl", "test": ("a",), "learning_rate": 3.0}, "learning_rate"),
        ({"fmt": "jsonl", "test": ("a",), "calibrate_folds": 1}, "calibrate_folds must be >= 2"),
        ({"fmt": "jsonl", "test": ("a",), "train": ("b",), "calibrate_folds": 5}, "recalibrates a trained model"),
    ],
)
def test_config_is_validated(kwargs: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        ClassifyConfig(**kwargs)


def test_missing_test_file_is_reported() -> None:
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        run_classify(
            ClassifyConfig("jsonl", test=("nope.jsonl",), train=(str(FIX / "labeled.jsonl"),), baselines=False)
        )


def _rules_only(train: Path, test: Path) -> list[str]:
    """``tokenflow eval classify`` arguments scoring the rules alone on the snips fixture."""
    return [
        "eval",
        "classify",
        "--format",
        "snips",
        "--train",
        str(train),
        "--test",
        str(test),
        "--mode",
        "rules",
        "--no-baselines",
    ]


def test_cli_json_has_top_level_metrics_and_writes_out(
    snips: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train, test = snips
    out = tmp_path / "result.json"
    code = main([*_rules_only(train, test), "--timing-queries", "2", "--json", "--out", str(out)])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["micro_f1"] == printed["modes"]["rules"]["micro_f1"]
    assert json.loads(out.read_text(encoding="utf-8"))["n_test"] == 3
    assert printed["modes"]["tfidf_logreg"]["skipped"].startswith("baselines turned off")


def test_cli_text_output_and_error_exit(snips: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    train, test = snips
    assert main([*_rules_only(train, test), "--timing-queries", "0"]) == 0
    text = capsys.readouterr().out
    assert "rules" in text and "micro-F1" in text and "skipped" in text
    assert (
        main(
            [
                "eval",
                "classify",
                "--format",
                "nlupp",
                "--test",
                str(BROKEN / "nlupp_truncated.json"),
                "--train",
                str(FIX / "nlupp_fold0.json"),
                "--mode",
                "rules",
                "--no-baselines",
            ]
        )
        == 2
    )
    assert "nlupp_truncated.json" in capsys.readouterr().err


@pytest.mark.slow
def test_neural_and_hybrid_train_on_a_tiny_backbone(snips: tuple[Path, Path], tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("peft")
    from tokenflow_rag.classifiers.backbone import make_tiny_backbone

    backbone = make_tiny_backbone(tmp_path / "bert", "bert")
    train, test = snips
    result = run_classify(
        ClassifyConfig(
            "snips",
            test=(str(test),),
            train=(str(train),),
            backbone=str(backbone),
            epochs=1,
            batch_size=8,
            max_train=40,
            baselines=False,
            timing_queries=2,
        )
    )
    assert result["mode"] == "hybrid"
    for mode in ("rules", "neural", "hybrid"):
        assert set(result["modes"][mode]) >= METRICS, mode
    assert result["modes"]["neural"]["seconds_train"] == result["modes"]["hybrid"]["seconds_train"] > 0
    assert (
        result["setup"]["neural_training"]["train_examples"] + result["setup"]["neural_training"]["dev_examples"] == 40
    )


def test_a_broken_model_directory_is_a_clear_error(tmp_path: Path) -> None:
    from tokenflow_rag.errors import ModelLoadError

    with pytest.raises(ModelLoadError, match="not_a_model"):
        run_classify(
            ClassifyConfig(
                "jsonl", test=(str(FIX / "prototype.jsonl"),), model=str(tmp_path / "not_a_model"), baselines=False
            )
        )


@pytest.mark.slow
def test_a_saved_model_is_scored_with_model(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("peft")
    from tokenflow_rag.classifiers.backbone import make_tiny_backbone
    from tokenflow_rag.classifiers.neural import NeuralConfig
    from tokenflow_rag.classifiers.trainer import IntentTrainer, TrainingArguments
    from tokenflow_rag.taxonomy import default_taxonomy

    rows = [
        LabeledText(text, labels)
        for text, labels in [
            ("refund my money back", ("refund",)),
            ("退款多久到账", ("refund",)),
            ("I want my money back", ("refund",)),
            ("how do I pay by card", ("payment",)),
            ("支付失败怎么办", ("payment",)),
            ("pay with paypal", ("payment",)),
            ("where is my order", ("order_management",)),
            ("取消订单", ("order_management",)),
            ("cancel my order", ("order_management",)),
            ("你好", ()),
            ("good morning", ()),
            ("thanks a lot", ()),
        ]
    ]
    backbone = make_tiny_backbone(tmp_path / "bert", "bert")
    trainer = IntentTrainer(
        default_taxonomy(),
        NeuralConfig(backbone=str(backbone), cjk_vocab=60),
        TrainingArguments(epochs=1, batch_size=4, dev_fraction=0.34, progress=False),
    )
    trainer.train(rows).save_pretrained(tmp_path / "model")
    result = run_classify(
        ClassifyConfig(
            "jsonl",
            test=(str(FIX / "prototype.jsonl"),),
            model=str(tmp_path / "model"),
            baselines=False,
            timing_queries=2,
        )
    )
    assert result["mode"] == "hybrid" and result["setup"]["model"] == str(tmp_path / "model")
    assert {"rules", "neural", "hybrid"} <= {m for m, v in result["modes"].items() if "skipped" not in v}
    gold = {i for ex in load_labeled("jsonl", [FIX / "prototype.jsonl"]) for i in ex.intents}
    assert set(result["modes"]["neural"]["per_intent"]) <= gold  # refund -> payment: the file's label set
    assert "hybrid_recalibrated" not in result["modes"]

    # Recalibrated on the other folds of the test file, each fold in turn; the loaded calibration is restored.
    config = ClassifyConfig(
        "jsonl",
        test=(str(FIX / "prototype.jsonl"),),
        model=str(tmp_path / "model"),
        baselines=False,
        timing_queries=0,
        calibrate_folds=3,
    )
    again = run_classify(config)
    recalibrated = again["modes"]["hybrid_recalibrated"]
    assert recalibrated["calibrate_folds"] == 3 and len(recalibrated["rule_weights_chosen"]) == 3
    assert recalibrated["n"] == result["modes"]["hybrid"]["n"]
    assert set(recalibrated["per_intent"]) <= gold
    assert again["modes"]["hybrid"] == {**result["modes"]["hybrid"], "ms_per_query_p50": None, "ms_per_query_p95": None}

    from tokenflow_rag.classifiers.hybrid import HybridClassifier
    from tokenflow_rag.classifiers.keyword_mining import LabelMap
    from tokenflow_rag.evaluation.classification import _LabelScope, _recalibrated_method

    hybrid = HybridClassifier.from_pretrained(tmp_path / "model", strict=True)
    before = (hybrid.config, hybrid.calibration, hybrid.neural.calibration)
    test = load_labeled("jsonl", [FIX / "prototype.jsonl"])
    labels = sorted({i for ex in test for i in ex.intents})
    method = _recalibrated_method(
        hybrid, test, LabelMap.from_labels(labels), _LabelScope(set(labels), hybrid.taxonomy), config
    )
    assert len(method.predict([ex.text for ex in test])) == len(test)
    assert (hybrid.config, hybrid.calibration, hybrid.neural.calibration) == before
    with pytest.raises(ConfigError, match="test rows it was set up with"):
        method.predict(["something else"])


def test_cli_calibrate_folds_is_checked_before_anything_loads(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["eval", "classify", "--format", "jsonl", "--test", str(FIX / "prototype.jsonl"), "--no-baselines"]
    assert main([*args, "--calibrate-folds", "1"]) == 2
    assert "--calibrate-folds must be >= 2" in capsys.readouterr().err
    assert main([*args, "--train", str(FIX / "labeled.jsonl"), "--calibrate-folds", "5"]) == 2
    assert "recalibrates a trained model" in capsys.readouterr().err


def test_holdout_never_puts_one_text_in_training_and_in_the_test_set(tmp_path: Path) -> None:
    import tempfile

    from tokenflow_rag.evaluation.classification import _load_splits

    rows = [{"text": f"question {i % 40}", "intents": ["refund"] if i % 2 else []} for i in range(200)]
    data = tmp_path / "dupes.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    config = ClassifyConfig(fmt="jsonl", train=(str(data),), holdout=0.3)
    with tempfile.TemporaryDirectory() as tmp:
        train, test = _load_splits(config, Path(tmp))
    assert train and test and not {r.text for r in train} & {r.text for r in test}
